"""Smoke test of the benchmark harness (benchmarks/run.py).

Runs the tiny ``--quick`` configuration of one case, without PyTorch, into a
temporary directory and checks that the JSON and markdown reports are written
with the expected fields. Timings are never asserted: they depend on the
machine and its load.
"""

import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN = os.path.join(REPO, "benchmarks", "run.py")


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
    rows = [line for line in markdown.splitlines() if line.startswith("| 2 ")]
    assert len(rows) == 2  # the main table and the BLAS view
    assert "float64" in rows[0] and "off" in rows[0]  # torch disabled


def test_torch_initial_weights_match_sklearn():
    # The harness rebuilds scikit-learn's initial weights for PyTorch; check the
    # draw against scikit-learn's own initialisation (a private method: skip if
    # it changes).
    np = pytest.importorskip("numpy")
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_run", RUN)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
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

    env = dict(os.environ)
    parent = os.path.dirname(os.path.dirname(os.path.abspath(skmlp.__file__)))
    env["PYTHONPATH"] = os.pathsep.join([parent] + env.get("PYTHONPATH", "").split(os.pathsep))
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
