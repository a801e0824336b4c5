#!/usr/bin/env python
"""Where the time of a benchmark case goes: a Linux ``perf`` profile of one
timed run, grouped by component.

    python benchmarks/perf_profile.py --cases 1,3 --dtypes float32 \\
        [--contenders skmlp,sklearn,torch] [--threads 1] [--output DIR]

For each (case, dtype, contender) the case is built exactly as
``benchmarks/run.py`` builds it, warmed up on a tiny slice, and then
``perf record`` is attached to this process for the one timed run only (data
loading, imports and warm-up are outside). The samples are grouped into

* BLAS matrix products (``?gemm`` and its packing routines),
* other BLAS (level-1 calls, thread pool),
* skmlp's compiled kernels (element-wise passes, loss, optimizer updates),
* the math library (``exp``, ``log``, ``tanh``),
* memory copies (libc ``memmove``/``memset``: batch gathering),
* NumPy, the Python interpreter, PyTorch, the operating system, other,

and written as a table per run to ``<output>/profiles.md`` (and ``.json``),
with the most frequent symbols. Together with the GEMM-only time of
``run.py``'s BLAS view it shows what bounds a ratio: the matrix products
themselves, or the work around them.

Needs the ``perf`` command (Debian: ``apt-get install linux-perf``) and
permission to attach to the own process (root, or
``kernel.perf_event_paranoid <= 1``). Nothing here is run by the test-suite
except the parsing and grouping (tests/test_benchmarks.py).
"""

import argparse
import datetime
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# Ordered: the first matching rule names the component of a sample.
COMPONENTS = (
    ("BLAS matrix products",
     lambda dso, sym: (_is_blas(dso) and re.search(r"gemm|[io][nt]copy|_kernel", sym))
     or re.match(r"mkl_blas_.*gemm", sym)),
    ("BLAS other", lambda dso, sym: _is_blas(dso)),
    ("skmlp kernels", lambda dso, sym: dso.startswith(("_mlp_fast", "_blas."))),
    ("math library", lambda dso, sym: dso.startswith("libm")),
    ("memory copies", lambda dso, sym: dso.startswith("libc")
     and re.search(r"mem(move|cpy|set)", sym)),
    ("NumPy", lambda dso, sym: "multiarray" in dso or "umath" in dso),
    ("Python interpreter", lambda dso, sym: dso.startswith(("libpython", "python"))),
    ("PyTorch", lambda dso, sym: "torch" in dso or dso.startswith("libgomp")),
    ("operating system", lambda dso, sym: dso.startswith("[kernel")),
)
OTHER = "other"

_LINE = re.compile(r"^\s*([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.*?)\s*$")


def _is_blas(dso):
    return "blas" in dso or "mkl" in dso or "lapack" in dso


def component(dso, symbol):
    """The component a sample of ``symbol`` in library ``dso`` belongs to."""
    for name, rule in COMPONENTS:
        if rule(dso, symbol):
            return name
    return OTHER


def parse_report(text):
    """Rows (percent, dso, symbol) of ``perf report --sort dso,symbol --stdio``."""
    rows = []
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = _LINE.match(line)
        if m:
            symbol = re.split(r"\s{2,}", m.group(4))[0]
            rows.append((float(m.group(1)), m.group(2), symbol))
    return rows


def summarise(rows, top=8):
    """Shares per component (summing to 100 %) and the ``top`` symbols."""
    total = sum(r[0] for r in rows) or 1.0
    shares = {}
    for pct, dso, sym in rows:
        name = component(dso, sym)
        shares[name] = shares.get(name, 0.0) + 100.0 * pct / total
    order = [c for c, _ in COMPONENTS] + [OTHER]
    shares = {c: shares[c] for c in order if c in shares}
    symbols = [{"percent": 100.0 * pct / total, "dso": dso, "symbol": sym,
                "component": component(dso, sym)}
               for pct, dso, sym in sorted(rows, key=lambda r: -r[0])[:top]]
    return {"components": shares, "top_symbols": symbols}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", default="1,3,6", help="case numbers (default 1,3,6)")
    p.add_argument("--dtypes", default="float32,float64")
    p.add_argument("--contenders", default="skmlp",
                   help="comma-separated: skmlp, sklearn, torch (default skmlp)")
    p.add_argument("--threads", type=int, default=1,
                   help="BLAS threads of every contender (default 1, as the "
                        "committed benchmark run)")
    p.add_argument("--frequency", type=int, default=1999, help="perf -F (Hz)")
    p.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--output", default=os.path.join(HERE, "results"))
    p.add_argument("--skmlp", choices=("auto", "tree", "installed"), default="auto")
    args = p.parse_args(argv)
    args.case_ids = [int(c) for c in args.cases.split(",") if c.strip()]
    args.dtype_names = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    args.contender_names = [c.strip() for c in args.contenders.split(",") if c.strip()]
    return args


def profile_run(bench, spec, contender, frequency):
    """perf profile of one timed run (after a warm-up); returns the summary."""
    perf = shutil.which("perf")
    if perf is None:
        sys.exit("perf not found (Debian: apt-get install linux-perf)")
    prepared = bench.prepare(spec, contender)
    warmup = bench.warmup_spec(spec)
    bench.run_once(warmup, contender, bench.prepare(warmup, contender))
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "perf.data")
        rec = subprocess.Popen(
            [perf, "record", "-q", "-F", str(frequency), "-p", str(os.getpid()),
             "-o", data], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(1.0)      # attach before the run starts
        if rec.poll() is not None:
            sys.exit("perf record failed: " + rec.stderr.read().decode()[-2000:])
        cpu0 = time.process_time()
        seconds, model = bench.run_once(spec, contender, prepared)
        cpu = time.process_time() - cpu0
        rec.send_signal(signal.SIGINT)
        rec.wait(timeout=120)
        report = subprocess.run(
            [perf, "report", "-i", data, "--no-children", "--sort", "dso,symbol",
             "--stdio", "-q", "--percent-limit", "0.01"],
            capture_output=True, text=True, check=True)
    result = summarise(parse_report(report.stdout))
    result.update(seconds=seconds, cpu_seconds=cpu)
    return result


def write_markdown(path, report):
    lines = [
        "# Where the time goes",
        "",
        f"Run {report['date_utc']} by `python benchmarks/perf_profile.py "
        f"{report['argv']}` (method in the script's docstring). One timed run "
        "per row, Linux perf sampling at "
        f"{report['frequency']} Hz, {report['threads']} BLAS thread(s); shares "
        "of the samples, seconds = share x wall time of the run.",
        "",
    ]
    for run in report["runs"]:
        lines += [f"## Case {run['case']} {run['title']}, {run['dtype']}, "
                  f"{run['contender']}: {run['seconds']:.3f} s",
                  "", "| component | share | seconds |", "|---|---|---|"]
        for name, pct in run["components"].items():
            lines.append(f"| {name} | {pct:.1f} % | {pct / 100 * run['seconds']:.3f} |")
        lines += ["", "Most frequent symbols: " + "; ".join(
            f"`{s['symbol'][:60]}` ({s['dso'][:40]}) {s['percent']:.1f} %"
            for s in run["top_symbols"]), ""]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main(argv=None):
    args = parse_args(argv)
    os.environ["SKMLP_BENCH_SELECT"] = args.skmlp
    sys.path.insert(0, HERE)
    import run as bench   # builds the cases exactly as the benchmark does
    import threadpoolctl

    threadpoolctl.threadpool_limits(limits=args.threads, user_api="blas")
    if "torch" in args.contender_names and bench.get_torch() is not None:
        bench.get_torch().set_num_threads(args.threads)
    report = {"date_utc": datetime.datetime.now(datetime.timezone.utc)
              .isoformat(timespec="seconds"),
              "argv": " ".join(sys.argv[1:] if argv is None else argv),
              "frequency": args.frequency, "threads": args.threads,
              "skmlp_file": bench.skmlp.__file__, "runs": []}
    for cid in args.case_ids:
        for d in args.dtype_names:
            spec = bench.build_case(cid, d, False, args.data_dir)
            if spec is None:
                continue
            for contender in args.contender_names:
                if contender not in bench.contenders_for(spec, True):
                    continue
                bench.log(f"== profiling case {cid} {d} {contender}")
                run = profile_run(bench, spec, contender, args.frequency)
                run.update(case=cid, dtype=d, contender=contender, title=spec.title)
                report["runs"].append(run)
    os.makedirs(args.output, exist_ok=True)
    with open(os.path.join(args.output, "profiles.json"), "w") as f:
        json.dump(report, f, indent=1)
    write_markdown(os.path.join(args.output, "profiles.md"), report)
    bench.log(f"wrote {args.output}/profiles.md and profiles.json")


if __name__ == "__main__":
    main()
