#!/usr/bin/env python
"""The optimizers' update loops alone, two builds of the kernels head to head.

    python benchmarks/update_loops.py --builds avx2,avx512 \\
        [--solvers adam,adagrad,rmsprop,adamw] [--dtypes float64,float32] \\
        [--params 25000] [--batches 64,37] [--rounds 15] [--quick] \\
        [--output FILE.json]

A training step ends with the optimizer's loop over the parameter vector
(``_mlp_fast._update``: the gradient finished from its raw sum, the L2 term
and the batch weight, then the rule). Adam, AdaGrad, RMSProp and AdamW take a
square root and a division per parameter; the AVX-512 build does their
float64 division without the divider (``src_cython/skmlp/_steps_avx512.h``).
This script times those loops alone through ``_mlp_fast._py_update_steps``
(the loop a training step runs, under its flush-to-zero mode): a vector of
``--params`` parameters (uniform in [-0.1, 0.1]), a raw gradient sum of
normal values times 0.01, alpha 1e-4, a batch weight of 64 (a power of two:
the gradient is multiplied by 1/64) or 37 (divided through its reciprocal),
warmed up by 50 steps. Every round runs 100 steps on each build, the order
alternating between rounds; reported are the median nanoseconds per
parameter and step of each build and the median and interquartile range of
the per-round ratios first / second (> 1: the second is faster). The builds
must leave bitwise the same parameters and optimizer state after the
warm-up, or the run stops.
"""

import argparse
import datetime
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from compare_builds import (add_common_options, build_pair, dtype_list,  # noqa: E402
                            load_build)

SOLVERS = ("adam", "adagrad", "rmsprop", "adamw")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    p.add_argument("--builds", default="avx2,avx512",
                   help="the two builds to compare, first,second (default avx2,avx512)")
    p.add_argument("--solvers", default=",".join(SOLVERS))
    p.add_argument("--dtypes", default="float64,float32")
    p.add_argument("--params", type=int, default=25000,
                   help="parameters in the vector (default 25000, about case 3's)")
    p.add_argument("--batches", default="64,37",
                   help="batch weights (default 64,37)")
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--quick", action="store_true",
                   help="1,000 parameters, 3 rounds of 5 steps (for the tests)")
    add_common_options(p)
    args = p.parse_args(argv)
    args.build_names = build_pair(p, args.builds)
    args.solver_names = [s.strip() for s in args.solvers.split(",") if s.strip()]
    if not args.solver_names or any(s not in SOLVERS for s in args.solver_names):
        p.error(f"--solvers: some of {','.join(SOLVERS)}; got {args.solvers!r}")
    args.dtype_names = dtype_list(p, args.dtypes)
    try:
        args.batch_values = [float(b) for b in args.batches.split(",") if b.strip()]
    except ValueError:
        p.error(f"--batches: numbers like 64,37; got {args.batches!r}")
    if not args.batch_values or any(not 1 <= b <= 1e6 for b in args.batch_values):
        p.error(f"--batches: batch weights from 1 to 1e6, got {args.batches!r}")
    if args.params < 1 or args.rounds < 1:
        p.error("--params and --rounds must be >= 1")
    if args.output and args.output.endswith(".md"):
        p.error("--output: the JSON file (the markdown goes next to it, as .md)")
    if args.quick:
        args.params, args.rounds = 1000, 3
    args.steps = 5 if args.quick else 100
    return args


def compare_loop(builds, solver, dtype, batch, n, rounds, steps):
    """Seconds per round of each build, and the per-round ratios."""
    import numpy as np
    from skmlp._multilayer_perceptron import _SOLVER_CODES
    params = (_SOLVER_CODES[solver], 1e-3, 0.9, False, 0.9, 0.999, 1e-8, 0.99,
              0.01 if solver == "adamw" else 0.0)
    two = solver in ("adam", "adamw")
    rs = np.random.RandomState(0)
    theta0 = rs.uniform(-0.1, 0.1, n).astype(dtype)
    grad = (0.01 * rs.standard_normal(n)).astype(dtype)
    names = list(builds)
    state, after_warmup = {}, {}
    for name in names:
        st = [theta0.copy(), np.zeros(n, dtype), np.zeros(n if two else 0, dtype)]
        builds[name]._py_update_steps(params, st[0], grad, st[1], st[2], 1e-4,
                                      batch, 0, 50)
        state[name] = st
        after_warmup[name] = b"".join(a.tobytes() for a in st)
    if after_warmup[names[0]] != after_warmup[names[1]]:
        sys.exit(f"{solver} {np.dtype(dtype).name} batch {batch:g}: the builds "
                 f"{names[0]} and {names[1]} took different steps (they must be "
                 "bitwise equal)")
    times = {name: [] for name in names}
    t = {name: 50 for name in names}
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            st = state[name]
            start = time.perf_counter()
            t[name] = builds[name]._py_update_steps(params, st[0], grad, st[1], st[2],
                                                    1e-4, batch, t[name], steps)
            times[name].append(time.perf_counter() - start)
    a, b = (np.array(times[n_]) for n_ in names)
    q1, med, q3 = np.percentile(a / b, [25, 50, 75])
    per = {name: float(np.median(times[name])) / steps / n * 1e9 for name in names}
    return {"solver": solver, "dtype": np.dtype(dtype).name, "batch": batch,
            "params": n, "steps": steps, "rounds": rounds,
            "seconds": times, "ns_per_param": per, "ratio_median": float(med),
            "ratio_q1": float(q1), "ratio_q3": float(q3)}


def main(argv=None):
    args = parse_args(argv)
    os.environ["SKMLP_BENCH_SELECT"] = args.skmlp
    import run  # noqa: F401  (puts the chosen skmlp first, as the benchmark does)
    builds = {name: load_build(name) for name in args.build_names}
    first, second = args.build_names
    table = [f"| rule | dtype | batch weight | {first} ns | {second} ns | {first} / "
             f"{second}: median (interquartile range) of the rounds | rounds |",
             "|---|---|---|---|---|---|---|"]
    print("\n".join(table))
    results = []
    for solver in args.solver_names:
        for d in args.dtype_names:
            for batch in args.batch_values:
                res = compare_loop(builds, solver, d, batch, args.params,
                                   args.rounds, args.steps)
                results.append(res)
                table.append(f"| {solver} | {d} | {batch:g} | "
                             f"{res['ns_per_param'][first]:.3f} | "
                             f"{res['ns_per_param'][second]:.3f} | "
                             f"{res['ratio_median']:.3f} ({res['ratio_q1']:.3f}-"
                             f"{res['ratio_q3']:.3f}) | {args.rounds} |")
                print(table[-1], flush=True)
    if args.output:
        import skmlp
        report = {"date_utc": datetime.datetime.now(datetime.timezone.utc)
                  .isoformat(timespec="seconds"),
                  "argv": " ".join(sys.argv[1:] if argv is None else argv),
                  "builds": args.build_names, "params": args.params,
                  "skmlp_file": skmlp.__file__, "results": results}
        with open(args.output, "w") as f:
            json.dump(report, f, indent=1)
        with open(os.path.splitext(args.output)[0] + ".md", "w") as f:
            f.write(f"# The optimizers' update loops, two builds head to head\n\n"
                    f"Run {report['date_utc']} by `python benchmarks/update_loops.py "
                    f"{report['argv']}` (method in the script's docstring); "
                    f"{args.params} parameters, nanoseconds per parameter and "
                    "step.\n\n" + "\n".join(table) + "\n")


if __name__ == "__main__":
    main()
