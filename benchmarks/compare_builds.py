#!/usr/bin/env python
"""Two builds of skmlp's kernels head to head, on the benchmark's cases.

    python benchmarks/compare_builds.py --builds avx2,avx512 --cases 2,3 \\
        [--dtypes float32,float64] [--rounds 10] [--threads 1] [--quick] \\
        [--output FILE.json]

skmlp compiles its kernels for several instruction-set levels
(``skmlp._mlp_fast``: generic, avx2, avx512) and loads the newest the CPU
runs. This script measures what one build gains over another. Each case is
built exactly as ``benchmarks/run.py`` builds it and warmed up; then, in this
one process, every round times one skmlp run of the case on each build, the
estimators' kernels switched between the runs (the module
``skmlp._multilayer_perceptron`` calls), the order alternating between rounds.
One process and alternation cancel most of the drift of a shared machine
that separate runs suffer from.

Reported per case: the median time of each build, and the median and
interquartile range of the per-round ratios first build / second build
(> 1: the second is faster). The builds must train bitwise the same models
(tests/test_kernel_variants.py); the first round's results are compared here
too, and a difference stops the run.
"""

import argparse
import datetime
import gc
import importlib
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def add_common_options(parser):
    """--skmlp and --output, as this script and update_loops.py take them."""
    parser.add_argument("--skmlp", choices=("auto", "tree", "installed"),
                        default="auto", help="which skmlp to measure, as in run.py")
    parser.add_argument("--output", default=None,
                        help="also write the results as JSON to this file, and the "
                             "table as markdown next to it (.md)")


def build_pair(parser, text):
    """The two build names of ``--builds first,second``, or the parser's error."""
    names = [b.strip().lower() for b in text.split(",") if b.strip()]
    if len(names) != 2 or len(set(names)) != 2:
        parser.error(f"--builds: two different builds, like avx2,avx512; got {text!r}")
    return names


def dtype_list(parser, text):
    """The dtype names of ``--dtypes float32,float64``, or the parser's error."""
    names = [d.strip() for d in text.split(",") if d.strip()]
    if not names or any(d not in ("float32", "float64") for d in names):
        parser.error(f"--dtypes: float32 and/or float64, got {text!r}")
    return names


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    p.add_argument("--builds", default="avx2,avx512",
                   help="the two builds to compare, first,second (default avx2,avx512)")
    p.add_argument("--cases", default="2,3,6",
                   help="comma-separated case numbers of benchmarks/run.py (default 2,3,6)")
    p.add_argument("--dtypes", default="float32,float64")
    p.add_argument("--rounds", type=int, default=10,
                   help="timed rounds per case and dtype (default 10)")
    p.add_argument("--threads", type=int, default=1,
                   help="BLAS threads (default 1)")
    p.add_argument("--quick", action="store_true",
                   help="run.py's tiny configuration of each case (for the tests)")
    p.add_argument("--data-dir", default=None,
                   help="folder of the Fashion-MNIST IDX files (as in run.py)")
    add_common_options(p)
    args = p.parse_args(argv)
    args.build_names = build_pair(p, args.builds)
    try:
        args.case_ids = [int(c) for c in args.cases.split(",") if c.strip()]
    except ValueError:
        p.error(f"--cases: expected numbers like 2,3; got {args.cases!r}")
    if not args.case_ids or any(c not in range(1, 10) for c in args.case_ids):
        p.error(f"--cases: cases are 1..9, got {args.cases!r}")
    args.dtype_names = dtype_list(p, args.dtypes)
    if args.rounds < 1:
        p.error("--rounds must be >= 1")
    if args.output and args.output.endswith(".md"):
        p.error("--output: the JSON file (the markdown goes next to it, as .md)")
    if args.threads < 1:
        p.error("--threads must be >= 1")
    return args


def load_build(name):
    """The module of build ``name``, or exit with why it cannot run here."""
    from skmlp import _mlp_fast
    if name not in _mlp_fast.VARIANTS:
        sys.exit(f"--builds: {name!r} is not a build of skmlp's kernels "
                 f"({', '.join(_mlp_fast.VARIANTS)})")
    ok, why = _mlp_fast._available(name)
    if not ok:
        sys.exit(f"--builds: {name!r} cannot be loaded: {why}")
    return importlib.import_module(f"skmlp._mlp_fast_{name}")


def outcome(spec, result):
    """What must be bitwise the same on both builds: the fitted parameters (the
    best pipeline's, and every candidate's score, for the grid search), or the
    predictions."""
    import numpy as np
    if spec.kind == "gridsearch":
        return [result.cv_results_["mean_test_score"].tobytes(),
                result.best_estimator_[-1]._theta.tobytes()]
    if spec.kind == "predict":
        return [np.ascontiguousarray(result.predict_proba(spec.X_test)).tobytes()]
    return [result._theta.tobytes()]


def compare_case(bench, mlp_module, builds, spec, rounds):
    """Times (seconds per round, for each build) of ``rounds`` rounds."""
    import numpy as np
    names = list(builds)
    times = {name: [] for name in names}
    prepared = bench.prepare(spec, "skmlp")
    first = {}
    warm = bench.warmup_spec(spec)
    for name in names:
        mlp_module._mlp_fast = builds[name]
        bench.run_once(warm, "skmlp", bench.prepare(warm, "skmlp"))
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            mlp_module._mlp_fast = builds[name]
            gc.collect()          # (as run.py: no collector pause in a timing)
            seconds, result = bench.run_once(spec, "skmlp", prepared)
            times[name].append(seconds)
            if r == 0:
                first[name] = outcome(spec, result)
    if first[names[0]] != first[names[1]]:
        sys.exit(f"case {spec.id} {spec.X.dtype}: the builds {names[0]} and "
                 f"{names[1]} gave different results (they must be bitwise equal)")
    a, b = (np.array(times[n]) for n in names)
    q1, med, q3 = np.percentile(a / b, [25, 50, 75])
    return {"case": spec.id, "title": spec.title, "dtype": str(spec.X.dtype),
            "rounds": rounds, "seconds": {n: times[n] for n in names},
            "median": {n: float(np.median(times[n])) for n in names},
            "ratio_median": float(med), "ratio_q1": float(q1), "ratio_q3": float(q3)}


def main(argv=None):
    args = parse_args(argv)
    os.environ["SKMLP_BENCH_SELECT"] = args.skmlp
    sys.path.insert(0, HERE)
    import run as bench   # builds the cases exactly as the benchmark does
    import threadpoolctl
    import skmlp._multilayer_perceptron as mlp_module

    builds = {name: load_build(name) for name in args.build_names}
    threadpoolctl.threadpool_limits(limits=args.threads, user_api="blas")
    data_dir = args.data_dir or bench.FASHION_MNIST_DIR
    first, second = args.build_names
    default = mlp_module._mlp_fast
    results = []
    table = [f"| case | dtype | {first} s | {second} s | {first} / {second}: median "
             "(interquartile range) of the rounds | rounds |",
             "|---|---|---|---|---|---|"]
    print("\n".join(table))
    try:
        for cid in args.case_ids:
            for d in args.dtype_names:
                spec = bench.build_case(cid, d, args.quick, data_dir)
                if spec is None:
                    bench.log(f"case {cid} {d}: not applicable, skipped")
                    continue
                res = compare_case(bench, mlp_module, builds, spec, args.rounds)
                results.append(res)
                table.append(f"| {cid} {spec.title} | {d} | {res['median'][first]:.4g} | "
                             f"{res['median'][second]:.4g} | {res['ratio_median']:.3f} "
                             f"({res['ratio_q1']:.3f}-{res['ratio_q3']:.3f}) | "
                             f"{args.rounds} |")
                print(table[-1], flush=True)
    finally:
        mlp_module._mlp_fast = default
    if args.output:
        report = {"date_utc": datetime.datetime.now(datetime.timezone.utc)
                  .isoformat(timespec="seconds"),
                  "argv": " ".join(sys.argv[1:] if argv is None else argv),
                  "builds": args.build_names, "threads": args.threads,
                  "blas": threadpoolctl.threadpool_info(),
                  "skmlp_file": bench.skmlp.__file__, "results": results}
        with open(args.output, "w") as f:
            json.dump(report, f, indent=1)
        blas = ", ".join(f"{b.get('internal_api')} {b.get('version')} "
                         f"({b.get('architecture')}, {b.get('num_threads')} threads)"
                         for b in report["blas"])
        with open(os.path.splitext(args.output)[0] + ".md", "w") as f:
            f.write(f"# Builds of the kernels head to head\n\nRun {report['date_utc']} "
                    f"by `python benchmarks/compare_builds.py {report['argv']}` "
                    f"(method in the script's docstring); BLAS: {blas}.\n\n"
                    + "\n".join(table) + "\n")


if __name__ == "__main__":
    main()
