"""Where a sweep's jobs run: in this process, a local process pool, or a Dask cluster.

An executor has three verbs: :meth:`put` shares a large object (a thinned matrix) once with all
the jobs that need it and returns a handle that jobs accept in its place, :meth:`submit` starts
``fn(*args)`` and returns a future (``done()``, ``result()``), and :meth:`close` stops
everything still running. Jobs turn handles back into objects with :func:`resolve`.

* ``InlineExecutor``: one job after the other in this process (``workers = 1``).
* ``LocalExecutor``: a pool of spawned processes.
* ``DaskExecutor``: ``dask.distributed`` (a scheduler address, or a LocalCluster).

Both pools share matrices the same way (:func:`cache_matrix`): each is written once to an
``.npz`` file in the sweep's cache directory and a job receives a small :class:`CachedMatrix`
handle to it. A job is small to ship and holds no state a worker must keep: a Dask worker that
dies loses only its running job, which the scheduler gives to another worker. For a cluster the
cache directory (``OUTPUT/cache``) must therefore be on a file system that every worker reads
under the same path.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import scipy.sparse as sp

from ..errors import ConfigError
from ..io.temporaries import temporary_path


@dataclass(frozen=True)
class CachedMatrix:
    """A handle to a sparse matrix in an ``.npz`` file (see :func:`cache_matrix`)."""

    path: str


def cache_matrix(obj: Any, cache: Path) -> Any:
    """Write a sparse matrix once to a new ``.npz`` file (CSR, uncompressed) under ``cache``
    and return its :class:`CachedMatrix` handle, with an absolute path (workers may run in
    another directory); other objects are returned as they are.

    The file is written to a temporary named after this host and process and renamed into
    place, so a reader never sees a partial file and ``noisescale clean`` finds an abandoned
    one.
    """
    if not sp.issparse(obj):
        return obj
    path = cache.resolve() / f"{uuid.uuid4().hex}.npz"
    tmp = temporary_path(path)
    try:
        with open(tmp, "wb") as fh:
            sp.save_npz(fh, sp.csr_matrix(obj), compressed=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return CachedMatrix(str(path))


def resolve(obj: Any) -> Any:
    """The object behind a handle from :meth:`put` (objects that are not handles pass)."""
    if isinstance(obj, CachedMatrix):
        return sp.load_npz(obj.path).tocsr()
    return obj


class _Done:
    """A finished future (for the inline executor)."""

    def __init__(self, fn: Callable, args: tuple):
        try:
            self._value, self._error = fn(*args), None
        except Exception as e:  # handed to the caller through result()
            self._value, self._error = None, e

    def done(self) -> bool:
        return True

    def result(self) -> Any:
        if self._error is not None:
            raise self._error
        return self._value


class InlineExecutor:
    """Runs each job when it is submitted, in this process."""

    name = "inline"
    workers = 1

    def put(self, obj: Any) -> Any:
        return obj

    def submit(self, fn: Callable, *args: Any) -> _Done:
        return _Done(fn, args)

    def close(self, cancel: bool = False) -> None:
        pass


class _PoolFuture:
    def __init__(self, result: multiprocessing.pool.AsyncResult):
        self._result = result

    def done(self) -> bool:
        return self._result.ready()

    def result(self) -> Any:
        return self._result.get()


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class LocalExecutor:
    """A pool of ``workers`` spawned processes; shared matrices through ``cache_dir``."""

    name = "local"

    def __init__(self, workers: int, cache_dir: str | os.PathLike):
        self.workers = workers
        self.cache = Path(cache_dir)
        self.cache.mkdir(parents=True, exist_ok=True)
        # spawn, not fork: torch and OpenMP runtimes do not survive a fork safely. Workers
        # ignore Ctrl-C (the terminal sends it to them too): the driver decides and stops them.
        self._pool = multiprocessing.get_context("spawn").Pool(workers, _ignore_sigint)

    def put(self, obj: Any) -> Any:
        return cache_matrix(obj, self.cache)

    def submit(self, fn: Callable, *args: Any) -> _PoolFuture:
        return _PoolFuture(self._pool.apply_async(fn, args))

    def close(self, cancel: bool = False) -> None:
        if cancel:
            self._pool.terminate()  # running jobs are abandoned; their results were not saved
        else:
            self._pool.close()
        self._pool.join()


#: Seconds a :class:`DaskExecutor` waits for the scheduler to answer, and then for a worker.
SCHEDULER_TIMEOUT = 30.0


class DaskExecutor:
    """Jobs on a ``dask.distributed`` cluster: at ``scheduler``, or a new LocalCluster of
    ``workers`` processes. Shared matrices go to ``.npz`` files in ``cache_dir``, which every
    worker must be able to read under the same path (a shared file system for a cluster).

    With a scheduler address the cluster must answer and have a worker within ``timeout``
    seconds (:data:`SCHEDULER_TIMEOUT`), else the constructor raises: ConfigError for a
    malformed address, ConnectionError when no scheduler answers, RuntimeError when it has no
    worker. Jobs are submitted as impure tasks with dask's defaults: a job whose worker dies is
    run again on another worker (up to ``distributed.scheduler.allowed-failures`` times).
    """

    name = "dask"

    def __init__(self, scheduler: str = "", workers: int = 0, threads_per_worker: int = 1, *,
                 cache_dir: str | os.PathLike, timeout: float | None = None):
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise ImportError("the dask executor needs dask.distributed: "
                              "pip install 'noisescale[dask]'") from None
        self.cache = Path(cache_dir)
        self.cache.mkdir(parents=True, exist_ok=True)
        self._cluster = None
        if scheduler:
            self._client = _connect(scheduler, SCHEDULER_TIMEOUT if timeout is None else timeout)
        else:
            self._cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1,
                                         threads_per_worker=threads_per_worker, processes=True,
                                         dashboard_address=None)
            self._client = Client(self._cluster)
        self.workers = len(self._client.scheduler_info().get("workers", {})) or workers
        self._futures: list = []

    def put(self, obj: Any) -> Any:
        return cache_matrix(obj, self.cache)

    def submit(self, fn: Callable, *args: Any):
        future = self._client.submit(fn, *args, pure=False)
        self._futures.append(future)
        return future

    def close(self, cancel: bool = False) -> None:
        if cancel:
            self._client.cancel(self._futures)
        self._futures = []
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()


def _connect(address: str, timeout: float):
    """A client of the scheduler at ``address`` that has at least one worker, or a clear
    error within about ``timeout`` seconds for each of the two waits."""
    from distributed import Client
    from distributed.comm import get_address_host_port

    try:
        # refused here rather than inside Client(), whose clean-up after such a failure waits
        # at exit for twice the timeout
        get_address_host_port(address)
    except ValueError as e:
        raise ConfigError(f"run.scheduler: {address!r} is not a dask scheduler address ({e}); "
                          "expected e.g. 'tcp://host:8786'") from None
    try:
        client = Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as e:
        raise ConnectionError(
            f"run.scheduler: cannot connect to the dask scheduler at {address!r} within "
            f"{timeout:g} s ({type(e).__name__}: {e}); is `dask scheduler` running there and "
            "reachable from this machine?") from None
    try:
        client.wait_for_workers(1, timeout=timeout)
    except (OSError, TimeoutError) as e:
        client.close()
        raise RuntimeError(
            f"run.scheduler: the dask scheduler at {address!r} has no worker after "
            f"{timeout:g} s ({type(e).__name__}); start some with `dask worker {address}` "
            "(or scale your dask-jobqueue cluster and wait for its jobs to start)") from None
    return client


def make_executor(kind: str, *, workers: int, threads_per_worker: int, scheduler: str,
                  cache_dir: str | os.PathLike):
    """The executor named by a sweep's ``[run]`` options (``workers = 0``: one per core)."""
    if kind == "dask":
        return DaskExecutor(scheduler, workers, threads_per_worker, cache_dir=cache_dir)
    if kind != "local":
        raise ValueError(f"executor must be 'local' or 'dask', got {kind!r}")
    n = workers or max(1, (os.cpu_count() or 1) // threads_per_worker)
    return InlineExecutor() if n == 1 else LocalExecutor(n, cache_dir)
