"""Smoke test of the benchmark harness (benchmarks/run.py).

Runs the tiny ``--quick`` configuration of one case, without PyTorch, into a
temporary directory and checks that the JSON and markdown reports are written
with the expected fields. Timings are never asserted: they depend on the
machine and its load.
"""

import importlib
import importlib.util
import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest

from skmlp import _mlp_fast

from _helpers import DEFAULT_BUILD, child_env

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN = os.path.join(REPO, "benchmarks", "run.py")


def _load_script(path, name):
    """A benchmarks/ script as a module of its own name (not put in sys.modules)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    # --skmlp installed: the package the rest of the test-suite imports
    # (the source tree has no compiled kernels unless built in place).
    cmd = [sys.executable, RUN, "--quick", "--no-torch", "--cases", "2",
           "--dtypes", "float64", "--repeats", "2", "--threads", "1",
           "--skmlp", "installed", "--output", str(out)]
    proc = subprocess.run(cmd, cwd=str(out), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(out / "latest.json") as f:
        report = json.load(f)
    with open(out / "latest.md") as f:
        markdown = f.read()
    return report, markdown


def test_json_fields(quick_run):
    report, _ = quick_run
    env = report["environment"]
    for key in ("date_utc", "cpu_model", "versions", "blas", "env_vars",
                "skmlp_file", "threads"):
        assert key in env, key
    for pkg in ("numpy", "scipy", "scikit-learn", "skmlp"):
        assert env["versions"][pkg]
    # the build of the kernels that ran (the benchmark's child imports the
    # installed skmlp like this session, with the same environment)
    assert env["skmlp_kernels"] == _mlp_fast.variant
    blas = env["blas"]["scipy_blas_used_by_skmlp"]
    for key in ("internal_api", "architecture", "num_threads", "version", "filepath"):
        assert key in blas, key
    assert report["args"]["quick"] is True
    assert report["duration_s"] > 0
    assert report["gemm_headline"]["float64"]["gflops_median"] > 0

    (row,) = report["cases"]
    assert row["case"] == 2 and row["dtype"] == "float64"
    assert set(row["contenders"]) == {"skmlp", "sklearn"}
    for name, res in row["contenders"].items():
        assert len(res["times"]) == 2, name
        assert res["min"] <= res["median"]
        assert 0.0 <= res["score"] <= 1.0
        assert "peak_mb" in res and "memory" in res
        assert res["memory"].get("hwm_reset") in (True, False), res["memory"]
        assert res["gflops"] > 0 and res["blas_fraction"] > 0
    assert set(row["ratios"]) == {"sklearn"}
    assert row["flops"] > 0 and row["blas_reference"]["gflops_median"] > 0
    # the reference rate is timed with no Python between the products
    assert row["blas_reference"]["method"].startswith("compiled loop")
    assert report["gemm_headline"]["float64"]["method"].startswith("compiled loop")
    # case 2 steps with momentum: its update is a pass of its own, timed
    # alone, as is the gather of its shuffled rows; the floor bound (products,
    # update and gather) is below the products' alone
    upd, gat = row["update_only"], row["gather_only"]
    assert upd["seconds"] > 0 and upd["params"] == 64 * 100 + 100 + 100 * 10 + 10
    assert gat["seconds"] > 0 and gat["epochs_per_fit"] == row["params"]["max_iter"]
    assert row["floor_s"] == pytest.approx(
        row["gemm_ideal_s"] + upd["seconds"] + gat["seconds"])
    for c, b in row["ratio_bound_floor"].items():
        assert 0 < b < row["ratio_bound"][c]
    assert row["threads"]["skmlp_blas"] == 1
    assert set(row["targets"]) >= {"vs_sklearn", "memory"}
    for check in row["targets"].values():
        assert check["met"] in (True, False, None)


def test_same_model_as_sklearn(quick_run):
    # Same data, parameters and random_state: the same model, so the same score.
    report, _ = quick_run
    c = report["cases"][0]["contenders"]
    assert c["skmlp"]["score"] == pytest.approx(c["sklearn"]["score"], abs=0.01)


def test_markdown_table(quick_run):
    _, markdown = quick_run
    assert "| case | dtype | skmlp s | sklearn s | torch s |" in markdown
    assert "target met?" in markdown
    assert "% BLAS" in markdown
    assert f"kernels: {_mlp_fast.variant} build" in markdown
    rows = [line for line in markdown.splitlines() if line.startswith("| 2 ")]
    assert len(rows) == 2  # the main table and the BLAS view
    assert "float64" in rows[0] and "off" in rows[0]  # torch disabled


def test_torch_initial_weights_match_sklearn():
    # The harness rebuilds scikit-learn's initial weights for PyTorch; check the
    # draw against scikit-learn's own initialisation (a private method: skip if
    # it changes).
    np = pytest.importorskip("numpy")
    bench = _load_script(RUN, "bench_run")
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import LabelBinarizer
    from sklearn.utils import check_random_state

    units = [6, 5, 4, 3]
    est = MLPClassifier(hidden_layer_sizes=(5, 4), random_state=7)
    est._random_state = check_random_state(7)
    est._label_binarizer = LabelBinarizer().fit([0, 1, 2])
    try:
        est._initialize(np.zeros((3, 3)), units, np.float32)
    except (AttributeError, TypeError) as exc:
        pytest.skip(f"scikit-learn's private _initialize changed: {exc}")
    weights, _ = bench.sklearn_initial_weights(units, 7, "relu", np.float32)
    for (W, b), coef, intercept in zip(weights, est.coefs_, est.intercepts_):
        np.testing.assert_array_equal(W, coef)
        np.testing.assert_array_equal(b, intercept)


def test_scaling_only_run(tmp_path):
    # --cases scaling: only case 6's n_jobs measurement, into scaling.json/.md
    # (so that it never overwrites a full run's latest.*).
    # The skmlp this session tests (it has skmlp.parallel_config), first on the path.
    import skmlp

    env = child_env()
    cmd = [sys.executable, RUN, "--quick", "--cases", "scaling", "--dtypes", "float64",
           "--repeats", "2", "--threads", "1", "--skmlp", "installed",
           "--output", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=str(tmp_path), capture_output=True, text=True,
                          timeout=300, env=env)
    assert f"skmlp from {skmlp.__file__}" in proc.stderr + proc.stdout
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(os.listdir(tmp_path)) == ["scaling.json", "scaling.md"]
    with open(tmp_path / "scaling.json") as f:
        report = json.load(f)
    assert report["cases"] == [] and report["args"]["scaling_only"] is True
    (s,) = report["scaling"]
    assert s["case"] == 6 and s["dtype"] == "float64"
    names = ["n_jobs=1", "n_jobs=2 threading", "n_jobs=2 loky",
             "n_jobs=2 skmlp.parallel_config"]
    assert sorted(s["variants"]) == sorted(names)
    for name in names:
        v = s["variants"][name]
        assert len(v["times"]) == len(v["cpu_s"]) == len(v["refit_s"]) == 2
        assert len(v["others_cores"]) == 2 and len(v["speedup_per_repeat"]) == 2
        assert v["speedup_vs_n_jobs_1"] == pytest.approx(
            s["variants"]["n_jobs=1"]["median"] / v["median"])
        assert 0.0 <= v["score"] <= 1.0
    # the same search whatever the backend: the same best score
    assert len({s["variants"][n]["score"] for n in names}) == 1
    with open(tmp_path / "scaling.md") as f:
        markdown = f.read()
    assert "| dtype | n_jobs=1 s | n_jobs=2 threading s |" in markdown
    assert "quiet repeats" in markdown and "QUICK" in markdown


# ---------------------------------------------------------------------------
# benchmarks/compare_builds.py: two builds of the kernels head to head
# ---------------------------------------------------------------------------

COMPARE = os.path.join(REPO, "benchmarks", "compare_builds.py")


def _run_script(cmd, cwd):
    return subprocess.run(cmd, cwd=str(cwd), capture_output=True, text=True,
                          timeout=300, env=child_env())


def _run_report(cmd, cwd, out):
    """Run a head-to-head script that must succeed; its process and JSON report."""
    proc = _run_script(cmd, cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(out) as f:
        return proc, json.load(f)


def _assert_head_to_head(report, rounds):
    """Each result of compare_builds.py or update_loops.py: both builds timed
    every round, the ratio's median and quartiles from those times."""
    for r in report["results"]:
        a, b = (np.array(r["seconds"][n]) for n in report["builds"])
        assert len(a) == len(b) == rounds and np.all(a > 0) and np.all(b > 0)
        assert r["ratio_median"] == pytest.approx(np.median(a / b))
        assert r["ratio_q1"] <= r["ratio_median"] <= r["ratio_q3"]


@pytest.mark.skipif(DEFAULT_BUILD == "generic",
                    reason="only the generic build of the kernels runs here")
def test_compare_builds_quick_run(tmp_path):
    out = tmp_path / "builds.json"
    cmd = [sys.executable, COMPARE, "--quick", "--cases", "2,6", "--dtypes",
           "float64", "--rounds", "3", "--builds", f"generic,{DEFAULT_BUILD}",
           "--skmlp", "installed", "--output", str(out)]
    proc, report = _run_report(cmd, tmp_path, out)
    assert report["builds"] == ["generic", DEFAULT_BUILD]
    assert [(r["case"], r["dtype"]) for r in report["results"]] == [
        (2, "float64"), (6, "float64")]
    _assert_head_to_head(report, 3)
    for r in report["results"]:
        assert r["median"]["generic"] == pytest.approx(np.median(r["seconds"]["generic"]))
    assert f"| generic s | {DEFAULT_BUILD} s |" in proc.stdout
    assert proc.stdout.count("| float64 |") == 2
    with open(tmp_path / "builds.md") as f:
        markdown = f.read()
    assert "compare_builds.py --quick --cases 2,6" in markdown
    assert markdown.count("| float64 |") == 2


@pytest.mark.parametrize("builds, message", [
    ("avx2", "--builds: two different builds"),
    ("generic,generic", "--builds: two different builds"),
    ("generic,sse9", "'sse9' is not a build of skmlp's kernels"),
])
def test_compare_builds_rejects_bad_builds(tmp_path, builds, message):
    cmd = [sys.executable, COMPARE, "--quick", "--cases", "2", "--rounds", "1",
           "--builds", builds, "--skmlp", "installed"]
    proc = _run_script(cmd, tmp_path)
    assert proc.returncode != 0
    assert message in proc.stderr


def test_compare_builds_wants_a_json_output(tmp_path):
    # (the markdown is written next to it: an .md name would be overwritten)
    cmd = [sys.executable, COMPARE, "--quick", "--cases", "2", "--rounds", "1",
           "--builds", "generic,avx2", "--output", str(tmp_path / "x.md")]
    proc = _run_script(cmd, tmp_path)
    assert proc.returncode != 0
    assert "--output: the JSON file" in proc.stderr
    assert not (tmp_path / "x.md").exists()


def test_compare_builds_stops_when_the_builds_disagree(monkeypatch):
    # A "build" whose epochs train with another L2 penalty (the kernel's
    # second argument): the comparison must refuse to report a ratio between
    # different models.
    compare = _load_script(COMPARE, "skmlp_bench_compare_builds")
    monkeypatch.setenv("SKMLP_BENCH_SELECT", "installed")
    monkeypatch.setenv("SKMLP_BENCH_SOURCE", "")   # (run.py sets it)
    bench = _load_script(RUN, "skmlp_bench_run")
    import skmlp._multilayer_perceptron as mlp_module

    generic = importlib.import_module("skmlp._mlp_fast_generic")
    nudged = types.SimpleNamespace(**{k: v for k, v in vars(generic).items()
                                      if not k.startswith("__")})

    def train_epoch(spec, alpha, *rest):
        return generic._train_epoch(spec, 2 * alpha + 1e-3, *rest)

    nudged._train_epoch = train_epoch
    spec = bench.build_case(2, "float64", True, bench.FASHION_MNIST_DIR)
    default = mlp_module._mlp_fast
    try:
        with pytest.raises(SystemExit, match="gave different results"):
            compare.compare_case(bench, mlp_module,
                                 {"generic": generic, "nudged": nudged}, spec, 1)
        # and the same build twice passes
        res = compare.compare_case(bench, mlp_module,
                                   {"a": generic, "b": generic}, spec, 2)
        assert res["rounds"] == 2 and len(res["seconds"]["a"]) == 2
    finally:
        mlp_module._mlp_fast = default


# ---------------------------------------------------------------------------
# benchmarks/perf_profile.py: parsing and grouping of a perf report (the
# profiling itself needs the perf command and runs on demand only)
# ---------------------------------------------------------------------------

PERF_REPORT = """\
# Samples: 2K of event 'cpu-clock:ppp'
#
    40.00%  libscipy_openblas-6cdc3b4a.so        [.] sgemm_kernel_SKYLAKEX             -      -
    10.00%  libscipy_openblas-6cdc3b4a.so        [.] sgemm_itcopy_SKYLAKEX
     5.00%  libscipy_openblas-6cdc3b4a.so        [.] blas_thread_server
    20.00%  _mlp_fast.cpython-311-x86_64-linux-gnu.so  [.] __pyx_f_5skmlp_9_mlp_fast__forward
     5.00%  libm.so.6                            [.] __ieee754_exp_fma
     5.00%  libc.so.6                            [.] __memmove_avx512_unaligned_erms
     5.00%  libtorch_cpu.so                      [.] mkl_blas_avx512_sgemm_kernel_nocopy_NN_b0
     4.00%  libpython3.11.so.1.0                 [.] _PyEval_EvalFrameDefault
     3.00%  [kernel.kallsyms]                    [k] clear_page_erms
     3.00%  libfoo.so                            [.] something
"""


def _perf_profile_module():
    return _load_script(os.path.join(REPO, "benchmarks", "perf_profile.py"),
                        "skmlp_bench_perf_profile")


def test_perf_profile_groups_samples_by_component():
    prof = _perf_profile_module()
    rows = prof.parse_report(PERF_REPORT)
    assert len(rows) == 10
    assert rows[0] == (40.0, "libscipy_openblas-6cdc3b4a.so", "sgemm_kernel_SKYLAKEX")
    summary = prof.summarise(rows, top=3)
    shares = summary["components"]
    assert shares["BLAS matrix products"] == pytest.approx(55.0)  # incl. MKL in torch
    assert shares["BLAS other"] == pytest.approx(5.0)
    assert shares["skmlp kernels"] == pytest.approx(20.0)
    assert shares["math library"] == pytest.approx(5.0)
    assert shares["memory copies"] == pytest.approx(5.0)
    assert shares["Python interpreter"] == pytest.approx(4.0)
    assert shares["operating system"] == pytest.approx(3.0)
    assert shares["other"] == pytest.approx(3.0)
    assert sum(shares.values()) == pytest.approx(100.0)
    assert [s["symbol"] for s in summary["top_symbols"]] == [
        "sgemm_kernel_SKYLAKEX", "__pyx_f_5skmlp_9_mlp_fast__forward",
        "sgemm_itcopy_SKYLAKEX"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gather_epoch_hook_copies_the_rows_in_order(dtype):
    """_mlp_fast._py_gather_epoch (the benchmarks' gather-only time) runs
    training's gather: batch after batch, X_buf holds X[order[batch]]."""
    rs = np.random.RandomState(0)
    X = rs.standard_normal((23, 5)).astype(dtype)
    order = rs.permutation(23).astype(np.intp)
    buf = np.full((4, 5), np.nan, dtype=dtype)
    assert _mlp_fast._py_gather_epoch(X, order, buf) == 6
    # the last batch is order[20:23]: rows 0-2 of the buffer; row 3 is the
    # previous batch's last
    np.testing.assert_array_equal(buf[:3], X[order[20:]])
    np.testing.assert_array_equal(buf[3], X[order[19]])
    one = np.empty((1, 5), dtype=dtype)
    for stop in (1, 9, 23):
        _mlp_fast._py_gather_epoch(X, order[:stop], one)
        np.testing.assert_array_equal(one[0], X[order[stop - 1]])


def test_gather_epoch_hook_rejects_bad_input():
    X = np.zeros((5, 3))
    with pytest.raises(ValueError, match="outside X's rows"):
        _mlp_fast._py_gather_epoch(X, np.array([0, 5], dtype=np.intp), np.empty((2, 3)))
    with pytest.raises(ValueError, match="outside X's rows"):
        _mlp_fast._py_gather_epoch(X, np.array([-1], dtype=np.intp), np.empty((2, 3)))
    with pytest.raises(ValueError, match="X's columns"):
        _mlp_fast._py_gather_epoch(X, np.array([0], dtype=np.intp), np.empty((2, 4)))
    with pytest.raises(ValueError, match="at least one row"):
        _mlp_fast._py_gather_epoch(X, np.array([0], dtype=np.intp), np.empty((0, 3)))
    with pytest.raises(ValueError, match="at least one column"):
        _mlp_fast._py_gather_epoch(np.zeros((5, 0)), np.array([0], dtype=np.intp),
                                   np.empty((2, 0)))


# ---------------------------------------------------------------------------
# benchmarks/update_loops.py: the optimizers' update loops, two builds
# ---------------------------------------------------------------------------

UPDATE_LOOPS = os.path.join(REPO, "benchmarks", "update_loops.py")


@pytest.mark.skipif(DEFAULT_BUILD == "generic",
                    reason="only the generic build of the kernels runs here")
def test_update_loops_quick_run(tmp_path):
    out = tmp_path / "loops.json"
    cmd = [sys.executable, UPDATE_LOOPS, "--quick", "--solvers", "adam,rmsprop",
           "--dtypes", "float64", "--batches", "64,37", "--builds",
           f"generic,{DEFAULT_BUILD}",
           "--skmlp", "installed", "--output", str(out)]
    proc, report = _run_report(cmd, tmp_path, out)
    assert report["builds"] == ["generic", DEFAULT_BUILD]
    assert [(r["solver"], r["dtype"], r["batch"]) for r in report["results"]] == [
        ("adam", "float64", 64.0), ("adam", "float64", 37.0),
        ("rmsprop", "float64", 64.0), ("rmsprop", "float64", 37.0)]
    _assert_head_to_head(report, 3)
    for r in report["results"]:
        assert r["ns_per_param"]["generic"] == pytest.approx(
            np.median(r["seconds"]["generic"]) / r["steps"] / r["params"] * 1e9)
    with open(tmp_path / "loops.md") as f:
        markdown = f.read()
    assert "update_loops.py --quick" in markdown
    assert markdown.count("| float64 |") == 4


@pytest.mark.parametrize("args, message", [
    (["--builds", "generic"], "--builds: two different builds"),
    (["--builds", "generic,sse9"], "'sse9' is not a build of skmlp's kernels"),
    (["--solvers", "adam,lbfgs"], "--solvers:"),
    (["--batches", "0"], "--batches:"),
    (["--output", "x.md"], "--output: the JSON file"),
])
def test_update_loops_rejects_bad_arguments(tmp_path, args, message):
    cmd = [sys.executable, UPDATE_LOOPS, "--quick", "--skmlp", "installed"] + args
    proc = _run_script(cmd, tmp_path)
    assert proc.returncode != 0
    assert message in proc.stderr


def test_update_loops_stops_when_the_builds_disagree(monkeypatch):
    # A "build" whose steps use another learning rate: no ratio between
    # different steps.
    loops = _load_script(UPDATE_LOOPS, "skmlp_bench_update_loops")
    generic = importlib.import_module("skmlp._mlp_fast_generic")

    def update_steps(params, *rest):
        return generic._py_update_steps((params[0], 2 * params[1]) + params[2:], *rest)

    nudged = types.SimpleNamespace(_py_update_steps=update_steps)
    with pytest.raises(SystemExit, match="took different steps"):
        loops.compare_loop({"generic": generic, "nudged": nudged}, "adam",
                           "float64", 37.0, 100, 1, 2)


def test_predict_case_floor_includes_the_input_check(tmp_path):
    # case 5 (prediction): the floor bound adds the input check both
    # estimators run (check_array on the predicted rows) to the products
    cmd = [sys.executable, RUN, "--quick", "--no-torch", "--cases", "5",
           "--dtypes", "float32", "--repeats", "1", "--threads", "1",
           "--no-memory", "--skmlp", "installed", "--output", str(tmp_path)]
    proc, report = _run_report(cmd, tmp_path, tmp_path / "latest.json")
    (row,) = report["cases"]
    check = row["input_check_only"]
    assert check["seconds"] > 0 and check["bytes"] == 1000 * 784 * 4
    assert "update_only" not in row and "gather_only" not in row
    assert row["floor_s"] == pytest.approx(row["gemm_ideal_s"] + check["seconds"])
    assert 0 < row["ratio_bound_floor"]["sklearn"] < row["ratio_bound"]["sklearn"]
    assert row["targets"]["vs_sklearn"]["bound_floor"] == pytest.approx(
        row["ratio_bound_floor"]["sklearn"])
    with open(tmp_path / "latest.md") as f:
        markdown = f.read()
    assert "check-only s" in markdown


TWO_CORE_PROBE = os.path.join(REPO, "benchmarks", "two_core_probe.py")


def test_two_core_probe_quick_run(tmp_path):
    # builds the C probe against SciPy's OpenBLAS and runs each measurement
    # once, briefly (numbers unchecked: only that every one is reported)
    cmd = [sys.executable, TWO_CORE_PROBE, "--repeats", "2", "--steps", "200",
           "--output", str(tmp_path)]
    proc = _run_script(cmd, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(tmp_path / "two-core-probe.json") as f:
        report = json.load(f)
    assert sorted(report["medians"]) == sorted([
        "handoff_us", "transfer_us 320", "transfer_us 3200", "transfer_us 6400",
        "step_us one_thread", "step_us two_threads_blocked",
        "step_us two_threads_shared", "step_us two_threads_apart"])
    assert all(len(v) == 2 and all(x > 0 for x in v) for v in report["samples"].values())
    assert "scipy" in os.path.basename(os.path.dirname(report["blas"]["filepath"]))
    with open(tmp_path / "two-core-probe.md") as f:
        markdown = f.read()
    assert "--repeats 2 --steps 200" in markdown
    assert markdown.count("\n| ") == 9   # the header and eight rows
