"""docs/scaling.md runs as written.

The page's Python blocks run top to bottom in one child interpreter, against a
scheduler and workers started with Dask's own commands (``dask scheduler``,
``dask worker``, as the page shows them) on the loopback interface; the child
finds the scheduler through ``DASK_SCHEDULER_ADDRESS``, as the page says. The
blocks hold their own checks (the searches on all cores and on the cluster
equal the serial one; Incremental equals partial_fit by hand). Every process
started here is stopped at the end, and checked to be gone.

Like tests/test_dask.py: skipped without the distributed extra, an error
instead when ``SKMLP_REQUIRE_DISTRIBUTED=1`` (CI).
"""

import importlib
import json
import os
import re
import subprocess
import sys
import time

import pytest

import skmlp

from _helpers import child_env


def _require(name):
    if os.environ.get("SKMLP_REQUIRE_DISTRIBUTED") == "1":
        return importlib.import_module(name)
    return pytest.importorskip(name)


distributed = _require("distributed")
psutil = _require("psutil")  # a dependency of distributed
_require("dask_ml")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(REPO, "docs", "scaling.md")
_TIMEOUT_S = 240


def _python_blocks(text):
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_python_blocks_are_found():
    with open(DOC) as f:
        text = f.read()
    blocks = _python_blocks(text)
    assert len(blocks) >= 5, len(blocks)
    assert "dask scheduler" in text and "dask worker" in text


def _env():
    env = child_env()
    env.pop("DASK_SCHEDULER_ADDRESS", None)
    return env


def _stop(procs):
    """Stop the processes started here (and their children), by handle."""
    family = []
    for p in procs:
        try:
            family += [c.pid for c in psutil.Process(p.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            pass
    for p in reversed(procs):  # workers first, then the scheduler
        if p.poll() is None:
            p.terminate()
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)
    deadline = time.monotonic() + 30
    alive = family
    while alive and time.monotonic() < deadline:
        alive = [pid for pid in alive if psutil.pid_exists(pid)
                 and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
        if alive:
            time.sleep(0.2)
    return alive


def test_scaling_doc_runs_on_a_dask_cluster(tmp_path):
    with open(DOC) as f:
        code = "\n".join(_python_blocks(f.read()))
    env = _env()
    sched_file = tmp_path / "scheduler.json"
    procs = []
    try:
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1",
             "--port", "0", "--no-dashboard", "--scheduler-file", str(sched_file)],
            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 60
        while not sched_file.exists() and time.monotonic() < deadline:
            assert procs[0].poll() is None, "dask scheduler exited"
            time.sleep(0.2)
        address = json.loads(sched_file.read_text())["address"]
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "dask", "worker", address, "--nworkers", "2",
             "--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard"],
            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        with distributed.Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=60)
            files = client.run(lambda: importlib.import_module("skmlp").__file__)
            assert set(files.values()) == {skmlp.__file__}, files
            workers_before = set(client.scheduler_info()["workers"])

        run_env = dict(env, DASK_SCHEDULER_ADDRESS=address, MPLBACKEND="Agg")
        proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=run_env,
                              capture_output=True, text=True, timeout=_TIMEOUT_S)
        assert proc.returncode == 0, proc.stderr[-4000:]
        assert "accuracy:" in proc.stdout
        # the page's Client() used this cluster (no local one of its own)
        with distributed.Client(address, timeout="60s") as client:
            assert set(client.scheduler_info()["workers"]) == workers_before
    finally:
        left = _stop(procs)
    assert not left, f"processes still running after stop: {left}"
