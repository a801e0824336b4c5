#!/usr/bin/env python
"""Can the two cores share one small training step? Build and run
``two_core_probe.c`` against SciPy's OpenBLAS and write the medians to
``benchmarks/results/two-core-probe.md`` (and ``.json``).

    python benchmarks/two_core_probe.py [--repeats 7] [--steps 20000] [--output DIR]

Needs a C compiler (``cc``) and two CPUs. What the probe measures is in the
C file's opening comment; benchmarks/README.md says what it showed.
"""

import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

import threadpoolctl

HERE = os.path.dirname(os.path.abspath(__file__))


def scipy_openblas():
    """(path of SciPy's OpenBLAS, its threadpoolctl entry)."""
    import scipy.linalg  # noqa: F401  (loads the library)
    for entry in threadpoolctl.threadpool_info():
        path = entry.get("filepath", "")
        # (NumPy's OpenBLAS is also named libscipy_openblas*; SciPy's is the
        # one in SciPy's own directory of libraries)
        in_scipy = "scipy" in os.path.basename(os.path.dirname(path))
        if entry.get("internal_api") == "openblas" and in_scipy:
            return path, entry
    raise SystemExit("SciPy's OpenBLAS is not loaded (this probe needs it)")


def build(workdir, lib):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise SystemExit("no C compiler (cc) found")
    from skmlp import _mlp_fast
    march = ["-march=x86-64-v4"] if _mlp_fast.variant == "avx512" else []
    exe = os.path.join(workdir, "two_core_probe")
    libdir, name = os.path.split(lib)
    subprocess.run([cc, "-O2", *march, "-o", exe, os.path.join(HERE, "two_core_probe.c"),
                    f"-L{libdir}", f"-l:{name}", f"-Wl,-rpath,{libdir}", "-lpthread"],
                   check=True)
    return exe, " ".join(["-O2", *march])


def parse(text):
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        key = parts[0] if len(parts) == 2 else f"{parts[0]} {parts[1]}"
        out.setdefault(key, []).append(float(parts[-1]))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--steps", type=int, default=20000,
                    help="steps (and hand-offs) timed per measurement")
    ap.add_argument("--output", default=os.path.join(HERE, "results"))
    args = ap.parse_args(argv)
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("the probe needs two CPUs")
    import run as bench  # the benchmark's environment report and choice of skmlp
    lib, entry = scipy_openblas()
    start = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        exe, flags = build(tmp, lib)
        run = subprocess.run([exe, str(args.repeats), str(args.steps)], check=True,
                             capture_output=True, text=True)
    data = parse(run.stdout)
    med = {k: statistics.median(v) for k, v in data.items()}
    one = med["step_us one_thread"]
    report = {
        "time": start.isoformat(), "cpu": bench._cpu_model(), "cpus": os.cpu_count(),
        "loadavg_start": load_start, "loadavg_end": os.getloadavg()[0],
        "blas": {k: entry.get(k) for k in ("filepath", "version", "architecture",
                                           "num_threads")},
        "compiler_flags": flags, "repeats": args.repeats, "steps": args.steps,
        "samples": data, "medians": med,
    }
    rows = [
        ("hand-off round trip (a flag, no data)", med["handoff_us"], None),
        ("320 doubles (2.5 KB) written by one core, read by the other, round trip",
         med["transfer_us 320"], None),
        ("3,200 doubles (25 KB), round trip", med["transfer_us 3200"], None),
        ("6,400 doubles (50 KB), round trip", med["transfer_us 6400"], None),
        ("case 2 float64 step, one thread", one, 1.0),
        ("the step split over two threads by hidden unit, each half in matrices of "
         "its own", med["step_us two_threads_blocked"],
         one / med["step_us two_threads_blocked"]),
        ("the same split over shared row-major matrices (skmlp's layout)",
         med["step_us two_threads_shared"], one / med["step_us two_threads_shared"]),
        ("whole steps in both threads at once, each on data of its own (per step "
         "of one thread)", med["step_us two_threads_apart"],
         one / med["step_us two_threads_apart"]),
    ]
    lines = [
        "# Two cores, one small training step",
        "",
        f"Run {report['time']} on {report['cpu']} ({report['cpus']} CPUs) by "
        f"`python benchmarks/two_core_probe.py --repeats {args.repeats} --steps "
        f"{args.steps}`; "
        f"`two_core_probe.c` built with `cc {flags}`, linked to SciPy's OpenBLAS "
        f"{entry.get('version')} ({entry.get('architecture')}, 1 thread: "
        f"`{os.path.basename(lib)}`). Load average {load_start:.1f} at start, "
        f"{report['loadavg_end']:.1f} at end. Medians of {args.repeats} repeats, "
        "microseconds; speed-up = one thread's step / this step.",
        "",
        "| what | µs | speed-up |",
        "|---|---|---|",
    ]
    for what, us, ratio in rows:
        lines.append(f"| {what} | {us:.2f} | {'' if ratio is None else f'{ratio:.2f}'} |")
    os.makedirs(args.output, exist_ok=True)
    with open(os.path.join(args.output, "two-core-probe.json"), "w") as f:
        json.dump(report, f, indent=1)
    with open(os.path.join(args.output, "two-core-probe.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
