"""A sweep on a real Dask cluster: a scheduler and two workers in processes of their own, as
`dask scheduler` and `dask worker` start them by hand; one worker is killed (SIGKILL) in the
middle of the sweep. Every job still runs, and the table equals the in-process run's bit for
bit."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

distributed = pytest.importorskip("distributed")

import noisescale  # noqa: E402
from noisescale.sweep import ConfigError, run_sweep  # noqa: E402
from noisescale.sweep import executors  # noqa: E402
from noisescale.sweep.config import parse_config  # noqa: E402
from test_sweep import config, dataset, stable  # noqa: E402, F401  (dataset is a fixture)

START_TIMEOUT = 30.0  # seconds for a scheduler or worker process to come up


@dataclass
class Cluster:
    address: str
    scheduler_file: Path
    processes: list[subprocess.Popen]
    logs: Path

    def start(self, kind: str, *args: str) -> subprocess.Popen:
        """``dask scheduler`` or ``dask worker`` (the same interpreter, the same noisescale),
        in a process group of its own, its output in ``logs``."""
        env = {**os.environ, "OMP_NUM_THREADS": "1",
               "PYTHONPATH": os.pathsep.join(filter(None, [
                   str(Path(noisescale.__file__).resolve().parents[1]),
                   os.environ.get("PYTHONPATH")]))}
        with open(self.logs / f"{len(self.processes)}-{kind}.log", "w") as log:
            proc = subprocess.Popen([sys.executable, "-m", f"distributed.cli.dask_{kind}",
                                     *args], stdout=log, stderr=subprocess.STDOUT, env=env,
                                    start_new_session=True, cwd=self.logs)
        self.processes.append(proc)
        return proc

    def output(self) -> str:
        """The processes' logs, for failure messages."""
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}"
                         for p in sorted(self.logs.glob("*.log")))

    def stop(self) -> None:
        for proc in reversed(self.processes):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            proc.wait(timeout=30)


@pytest.fixture
def scheduler(tmp_path):
    """A `dask scheduler` on 127.0.0.1 (a free port) with no worker yet."""
    logs = tmp_path / "dask"
    logs.mkdir()
    cluster = Cluster("", logs / "scheduler.json", [], logs)
    try:
        proc = cluster.start("scheduler", "--host", "127.0.0.1", "--port", "0",
                             "--scheduler-file", str(cluster.scheduler_file), "--no-dashboard")
        deadline = time.monotonic() + START_TIMEOUT
        while not cluster.scheduler_file.exists():
            assert proc.poll() is None, cluster.output()
            assert time.monotonic() < deadline, cluster.output()
            time.sleep(0.05)
        while not cluster.address:
            try:
                cluster.address = json.loads(cluster.scheduler_file.read_text())["address"]
            except (ValueError, KeyError):  # being written
                assert time.monotonic() < deadline, cluster.output()
                time.sleep(0.05)
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def cluster(scheduler):
    """The scheduler with two single-threaded `dask worker` processes (no nanny: the process
    started is the worker, and SIGKILL kills it)."""
    for i in range(2):
        scheduler.start("worker", "--scheduler-file", str(scheduler.scheduler_file),
                        "--name", f"w{i}", "--nthreads", "1", "--nworkers", "1", "--no-nanny",
                        "--no-dashboard", "--memory-limit", "0", "--death-timeout", "60",
                        "--local-directory", str(scheduler.logs / f"w{i}"))
    with distributed.Client(scheduler.address, set_as_default=False) as client:
        try:
            client.wait_for_workers(2, timeout=START_TIMEOUT)
        except TimeoutError:
            pytest.fail(f"the workers did not start:\n{scheduler.output()}")
    return scheduler


def small(path: Path, out: Path, **run) -> dict:
    """12 jobs (2 models x 3 depths x 2 training sizes), 2 signals."""
    return config(path, out, sweep={"fractions": [1.0, 0.3, 0.1], "n_cells": [200, "all"],
                                    "seeds": [0]},
                  signals=[{"kind": "categorical", "column": "cell_type", "estimator": "ross"},
                           {"kind": "continuous", "key": "protein", "estimator": "ksg"}],
                  run={"output": str(out), **run})


@pytest.mark.filterwarnings("ignore::noisescale.mi.WithinNullWarning")
def test_sweep_survives_a_killed_worker_and_equals_the_inline_run(
        dataset, cluster, tmp_path):  # noqa: F811
    out = tmp_path / "dask"
    cfg = parse_config(small(dataset, out, executor="dask", scheduler=cluster.address),
                       base=tmp_path)
    workers = {p.pid: p for p in cluster.processes[1:]}
    killed, lost, shared = [], [], []

    with distributed.Client(cluster.address, set_as_default=False) as watcher:
        pids = watcher.run(os.getpid)  # worker address -> pid: the processes started here
        assert sorted(pids.values()) == sorted(workers), cluster.output()
        # the workers run this checkout's noisescale
        assert set(watcher.run(lambda: __import__("noisescale").__file__).values()) == {
            noisescale.__file__}

        def kill_a_busy_worker(job) -> None:
            """After the first finished job: SIGKILL a worker that holds jobs."""
            if killed:
                return
            shared.extend((out / "cache").glob("*.npz"))  # the matrices went through files
            busy = [a for a, keys in watcher.processing().items() if keys] or list(pids)
            lost.extend(watcher.processing()[busy[0]])
            os.kill(pids[busy[0]], signal.SIGKILL)
            killed.append(pids[busy[0]])

        t0 = time.monotonic()
        result = run_sweep(cfg, on_job=kill_a_busy_worker)
        seconds = time.monotonic() - t0
        deadline = time.monotonic() + 10
        while len(watcher.scheduler_info()["workers"]) > 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        alive = list(watcher.run(os.getpid).values())

    assert killed and workers[killed[0]].wait(timeout=10) == -signal.SIGKILL
    assert lost, "the killed worker held no job"  # they were run again on the other worker
    assert shared
    assert alive == [p for p in workers if p != killed[0]], cluster.output()
    assert result.n_jobs == 12 and result.n_ran == 12 and result.n_reused == 0
    table = result.results
    assert table["job"].nunique() == 12 and len(table) == 12 * 2
    assert table.groupby("job")["signal"].apply(set).eq({"cell_type", "protein"}).all()
    assert not (out / "cache").exists()

    inline = run_sweep(parse_config(small(dataset, tmp_path / "inline", workers=1),
                                    base=tmp_path))
    assert list(table["job"]) == list(inline.results["job"])
    pd.testing.assert_frame_equal(stable(table), stable(inline.results), check_exact=True)
    print(f"dask sweep of 12 jobs with a worker killed: {seconds:.1f} s")


def test_scheduler_without_workers_is_named(dataset, scheduler, tmp_path,  # noqa: F811
                                            monkeypatch):
    monkeypatch.setattr(executors, "SCHEDULER_TIMEOUT", 1.0)
    cfg = parse_config(small(dataset, tmp_path / "o", executor="dask",
                             scheduler=scheduler.address), base=tmp_path)
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match=f"scheduler at '{scheduler.address}' has no worker "
                                           r"after 1 s.*dask worker"):
        run_sweep(cfg)
    assert time.monotonic() - t0 < 20
    assert not (tmp_path / "o" / "cache").exists()


def test_unreachable_scheduler_fails_fast(dataset, tmp_path, monkeypatch):  # noqa: F811
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setattr(executors, "SCHEDULER_TIMEOUT", 2.0)
    cfg = parse_config(small(dataset, tmp_path / "o", executor="dask", scheduler=address),
                       base=tmp_path)
    t0 = time.monotonic()
    with pytest.raises(ConnectionError, match=f"cannot connect to the dask scheduler at "
                                              f"'{address}' within 2 s"):
        run_sweep(cfg)
    assert time.monotonic() - t0 < 20
    bad = parse_config(small(dataset, tmp_path / "o", executor="dask", scheduler="head-node"),
                       base=tmp_path)
    with pytest.raises(ConfigError, match="'head-node' is not a dask scheduler address"):
        run_sweep(bad)
