"""The sweep protocol: split, thin, subsample, fit, embed, estimate; one row per measurement.

For a dataset the cells are split once (seeded, optionally stratified, sister cells kept
together) into a training pool and a held-out test set (and, optionally, a validation set
taken from the pool for early stopping). For each replicate seed the whole count matrix is
thinned once to every depth and shared with every job of that (seed, depth): binomial thinning
makes a nested series (depths are coupled: each shallower matrix is a sub-sample of the deeper
one); per-gene thinning draws each depth independently. A job is one (seed, depth, training
size N, model): it fits the model on N training cells (nested subsets of the pool, or an
independent sample per N with ``nested_cells = false``), embeds the thinned test cells and
estimates the MI with each signal. Finished jobs are stored one file each (:mod:`.store`), so
a re-run of the same configuration skips them.

Seeds are derived from the replicate seed by hashing, so every job's randomness is fixed by
the configuration alone: results do not depend on the executor, the number of workers or the
order in which jobs finish.
"""

from __future__ import annotations

import json
import os
import platform
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._internal.seeding import derive_seed, generator, split_count
from ..errors import Cancelled, ConfigError
from ..io.atomic import write_atomic
from ..laws.results import result_row
from .config import (
    EstimatorSpec,
    ModelSpec,
    SweepConfig,
    check_model_shapes,
    load_config,
    stable_hash,
)
from .executors import make_executor
from .signals import PreparedSignal, Signal, estimate
from .store import ResultStore
from .thinned import (
    PASS_BYTES_PER_ENTRY,
    Part,
    cache_dir,
    cached,
    chunk_cells,
    load_parts,
    memory_budget,
    segments,
    thin_seed,
    training_input,
    training_segments,
)


_STOPPED = ("sweep stopped; the finished jobs are kept: run the same command again to go on "
            "from there")


@dataclass(frozen=True)
class Job:
    """One (seed, depth, training size, model) of a sweep."""

    id: str
    seed: int
    level: int          # index of the depth in the (decreasing) fraction series
    fraction: float
    n_cells: int
    model: ModelSpec


@dataclass
class SweepData:
    """A dataset opened, filtered and split for a sweep; its counts stay in the store."""

    adata: Any                       # obs (and the signals' obsm) of the cells, no counts
    path: Path
    layer: str | None
    cells: np.ndarray                # store row of each cell (after the filter)
    n_genes: int
    entries_per_cell: float          # stored counts per cell in the store
    test: np.ndarray                 # cell positions of the held-out cells
    pool: np.ndarray                 # cell positions of the training pool
    validation: np.ndarray           # cell positions of the validation cells (may be empty)
    fractions: tuple[float, ...]     # decreasing
    sizes: tuple[int, ...]
    test_umis_per_cell: float
    budget: int                      # run.memory_gb in bytes
    chunk: int                       # cells per thinning chunk
    signals: list[Signal] = field(default_factory=list)

    def reader(self):
        from ..io.stores import CountsReader

        return CountsReader(self.path, self.layer)


@dataclass
class SweepResult:
    """What :func:`run_sweep` did: the table, and how many jobs ran or were reused."""

    results: pd.DataFrame
    output: Path
    n_jobs: int
    n_ran: int
    n_reused: int
    seconds: float


# ---------------------------------------------------------------------------------------------
# Loading and checking


def load_dataset(cfg: SweepConfig) -> SweepData:
    """Open the dataset, apply the filter, check every signal and option against it, split.

    The counts stay in the store: only obs, the obsm elements the signals name and the
    held-out cells' counts (for their mean depth) are read. Everything that can be wrong with
    the configuration is found here, before any job runs.
    """
    import anndata as ad

    from ..io.stores import CountsReader, anndata_format

    path = Path(cfg.dataset.path)
    if not path.exists():
        raise ConfigError(f"dataset.path: {path} not found")
    try:
        anndata_format(path)  # names the file and what it is, as `noisescale thin` does
        reader = CountsReader(path, cfg.dataset.layer)
    except KeyError as e:
        message = e.args[0] if e.args else e
        if cfg.dataset.layer is None:
            raise ConfigError(f"dataset.path: {message}") from None
        raise ConfigError(f"dataset.layer: no layer {cfg.dataset.layer!r} ({message})") from None
    except (OSError, ValueError) as e:
        raise ConfigError(f"dataset.path: {e}") from None
    with reader:
        obs = reader.read("obs")
        wanted = {s.options.get(k) for s in cfg.signals for k in ("key", "clone_key")}
        obsm = {k: reader.read(f"obsm/{k}") for k in reader.keys("obsm") if k in wanted}
        adata = ad.AnnData(obs=obs, obsm=obsm)
        cells = np.arange(adata.n_obs, dtype=np.int64)
        for column, value in cfg.dataset.filter.items():
            if column not in adata.obs.columns:
                raise ConfigError(f"dataset.filter: obs has no column {column!r}")
            keep = np.asarray(adata.obs[column] == value)
            adata, cells = adata[keep].copy(), cells[keep]
        if adata.n_obs < 4:
            raise ConfigError(f"dataset has {adata.n_obs} cells after the filter: too few")
        signals = [Signal(s) for s in cfg.signals]
        for s in signals:
            s.validate(adata)
        test, pool = split_cells(adata, cfg, signals)
        pool, validation = split_validation(pool, cfg)
        sizes = []
        for n in cfg.sweep.n_cells:
            n = pool.size if n == "all" else n
            if n > pool.size:
                raise ConfigError(
                    f"sweep.n_cells: {n} training cells asked for, but the training pool has "
                    f"{pool.size} ({cells.size} cells, {test.size} held out"
                    f"{f', {validation.size} for validation' if validation.size else ''}; "
                    "hold out fewer cells or lower n_cells)")
            sizes.append(int(n))
        check_model_shapes(cfg.models, sizes, reader.shape[1], n_validation=validation.size)
        entries = reader.nnz / max(reader.shape[0], 1)
        held = sp.csr_matrix(reader.take(cells[test]))
        test_umis = float(held.sum()) / held.shape[0]
        del held
        fractions = _fractions(cfg, test_umis)
        budget = memory_budget(cfg.run.memory_gb)
        chunk = chunk_cells(budget, entries, len(fractions))
        return SweepData(adata=adata, path=path, layer=cfg.dataset.layer, cells=cells,
                         n_genes=reader.shape[1], entries_per_cell=entries, test=test,
                         pool=pool, validation=validation, fractions=fractions,
                         sizes=tuple(sizes), test_umis_per_cell=test_umis,
                         budget=budget, chunk=chunk, signals=signals)


def _fractions(cfg: SweepConfig, mean: float) -> tuple[float, ...]:
    """The thinning fractions, decreasing; target depths are fractions of the held-out cells'
    ``mean`` depth, so the measured depth u of each level is the target."""
    if cfg.sweep.fractions is not None:
        return tuple(sorted(cfg.sweep.fractions, reverse=True))
    too_deep = [u for u in cfg.sweep.umis_per_cell if u > mean]
    if too_deep:
        raise ConfigError(f"sweep.umis_per_cell: {too_deep} exceed the mean depth of the "
                          f"held-out cells, {mean:.1f} UMIs per cell (thinning only removes "
                          "UMIs)")
    return tuple(sorted((u / mean for u in cfg.sweep.umis_per_cell), reverse=True))


def split_cells(adata, cfg: SweepConfig, signals: list[Signal]) -> tuple[np.ndarray, np.ndarray]:
    """Held-out and training-pool row indices (sorted), from ``[split]``.

    Cells of one group (clone) land on the same side; ``stratify`` keeps the proportions of an
    obs column in both sets.
    """
    n = adata.n_obs
    spec = cfg.split
    n_test = spec.n_test if spec.n_test is not None else int(round(spec.test_fraction * n))
    if not 2 <= n_test <= n - 2:
        raise ConfigError(f"split: {n_test} held-out cells of {n} leaves no usable split")
    rng = generator(spec.seed, "split")
    groups = next((g for g in (s.groups(adata) for s in signals) if g is not None), None)
    if groups is not None:
        if spec.stratify is not None:
            raise ConfigError("split.stratify cannot be combined with a clone_pairs signal, "
                              "which splits by clone")
        ids, inverse = np.unique(groups, return_inverse=True)
        order = rng.permutation(ids.size)
        sizes = np.bincount(inverse)[order]
        take = order[: int(np.searchsorted(np.cumsum(sizes), n_test)) + 1]
        is_test = np.isin(inverse, take)
    elif spec.stratify is not None:
        if spec.stratify not in adata.obs.columns:
            raise ConfigError(f"split.stratify: obs has no column {spec.stratify!r}")
        labels = pd.Categorical(adata.obs[spec.stratify]).codes
        is_test = np.zeros(n, dtype=bool)
        for c in np.unique(labels):
            members = np.flatnonzero(labels == c)
            k = int(round(members.size * n_test / n))
            is_test[rng.permutation(members)[:k]] = True
    else:
        is_test = np.zeros(n, dtype=bool)
        is_test[rng.permutation(n)[:n_test]] = True
    return np.flatnonzero(is_test), np.flatnonzero(~is_test)


def split_validation(pool: np.ndarray, cfg: SweepConfig) -> tuple[np.ndarray, np.ndarray]:
    """(training pool, validation cells), sorted: ``split.n_validation`` cells drawn from the
    pool with the split's seed."""
    n = cfg.split.n_validation
    if n == 0:
        return pool, pool[:0]
    if n > pool.size - 2:
        raise ConfigError(f"split.n_validation: {n} validation cells asked for, but the "
                          f"training pool has {pool.size} (at least 2 must stay for training)")
    keep, held = split_count(pool.size, n, cfg.split.seed, "validation")
    return pool[keep], pool[held]


def plan_jobs(cfg: SweepConfig, data: SweepData) -> list[Job]:
    """Every job of the sweep, with ids that change whenever anything deciding it changes."""
    from .. import __version__

    base = {"version": __version__, "dataset": asdict(cfg.dataset), "split": asdict(cfg.split),
            "fractions": data.fractions, "signals": [asdict(s) for s in cfg.signals],
            "thinning": cfg.sweep.thinning, "nested_cells": cfg.sweep.nested_cells,
            "estimator": asdict(cfg.estimator)}
    jobs = []
    for seed in cfg.sweep.seeds:
        for level, q in enumerate(data.fractions):
            for n in data.sizes:
                for m in cfg.models:
                    key = {**base, "seed": seed, "fraction": q, "n_cells": n,
                           "model": asdict(m)}
                    jobs.append(Job(id=stable_hash(key), seed=seed, level=level, fraction=q,
                                    n_cells=n, model=m))
    return jobs


# ---------------------------------------------------------------------------------------------
# One job (runs in a worker)


def run_job(job: Job, dataset: str, train: list[Part], test: list[Part],
            signals: list[PreparedSignal], est: EstimatorSpec, threads: int,
            validation: list[Part] | None = None, budget: int = 1 << 62, mode: str = "auto",
            stage: str = "") -> dict[str, Any]:
    """Fit ``job.model`` on the training cells (the parts of its segments; early stopping on
    the ``validation`` cells when given), embed the test cells, estimate the MI with each
    signal. Returns ``rows`` (one result row per signal, with the method used as
    ``estimator`` and the estimate's uncertainty, null and flags) and ``fit`` (the fit's route,
    ``memory`` or ``stream``, and its method). ``stage``: a file to write the job's stage to."""
    from threadpoolctl import threadpool_limits

    from .. import models
    from ..models.training import epoch_listener, torch_threads

    _stage(stage, "reading cells")
    X = training_input(train, budget, mode)
    streamed = not sp.issparse(X)
    test_X = load_parts(test)
    held = None if not validation else load_parts(validation)
    if streamed:
        train_umis = sum(p.umis for p in train) / sum(p.n_rows for p in train)
    else:
        train_umis = float(X.sum()) / X.shape[0]
    with threadpool_limits(limits=threads), torch_threads(threads):
        model = models.get(job.model.name, **job.model.params)
        fitting = "fitting" + (" (streamed)" if streamed else "")
        _stage(stage, fitting)
        shown = [time.monotonic()]

        def epoch(done: int, total: int) -> None:
            if time.monotonic() - shown[0] > 1.0:
                _stage(stage, f"{fitting}: epoch {done}/{total}")
                shown[0] = time.monotonic()

        t0 = time.perf_counter()
        with epoch_listener(epoch):
            model.fit(X, seed=derive_seed(job.seed, "model", job.model.label),
                      validation=held)
        t1 = time.perf_counter()
        _stage(stage, "embedding")
        z = model.embed(test_X)
        t2 = time.perf_counter()
        out = []
        for p in signals:
            _stage(stage, f"MI with {p.name}")
            t3 = time.perf_counter()
            mi = estimate(p, z, est, seed=derive_seed(job.seed, "mi", p.name), threads=threads)
            out.append(result_row(
                dataset=dataset, signal=p.name, model=job.model.label,
                estimator=mi.method, n_cells=job.n_cells, fraction=job.fraction,
                seed=job.seed, umis_per_cell=float(test_X.sum()) / test_X.shape[0],
                train_umis_per_cell=train_umis, **mi.as_row(),
                n_test=p.n_samples, fit_seconds=t1 - t0, embed_seconds=t2 - t1,
                mi_seconds=time.perf_counter() - t3, job=job.id,
            ))
    fit = {"route": "stream" if streamed else "memory"}
    if "method" in model.history:
        fit["method"] = model.history["method"]
    return {"rows": out, "fit": fit}


def _show_stages(store: ResultStore, bar, stop: threading.Event) -> None:
    """Every second, the running jobs' stages on the progress bar (until ``stop``)."""
    while not stop.wait(1.0):
        text = store.stages()
        if text:
            bar.set_postfix_str(text, refresh=True)


def _stage(path: str, text: str) -> None:
    if path:
        try:
            write_atomic(Path(path), text)
        except OSError:  # progress is best effort
            pass


# ---------------------------------------------------------------------------------------------
# The driver


def run_sweep(config: SweepConfig | str | os.PathLike, *, progress: bool = False,
              cancel: threading.Event | None = None,
              on_job: Callable[[Job], None] | None = None) -> SweepResult:
    """Run (or resume) a sweep; returns the merged table, also written to
    ``output/results.csv`` with the run's provenance in ``output/provenance.json``.

    Jobs whose result files exist are reused. Setting ``cancel`` stops the sweep at the next
    job boundary: finished jobs stay stored, running ones are abandoned, and
    :class:`Cancelled` is raised.
    """
    from tqdm.auto import tqdm

    cfg = config if isinstance(config, SweepConfig) else load_config(config)
    t_start = time.perf_counter()
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    data = load_dataset(cfg)
    _check_signal_sizes(cfg, data)
    jobs = plan_jobs(cfg, data)
    out = Path(cfg.run.output)
    store = ResultStore(out)
    store.create()
    write_atomic(out / "config.toml", cfg.text or json.dumps(cfg.as_dict(), indent=2))
    done = store.finished()
    todo = [j for j in jobs if j.id not in done]
    run_id = uuid.uuid4().hex
    cancel = cancel or threading.Event()

    executor = None
    bar = tqdm(total=len(todo), desc="jobs", unit="job", disable=not progress,
               initial=0, dynamic_ncols=True)
    if progress and len(todo) < len(jobs):
        bar.write(f"reusing {len(jobs) - len(todo)} finished job(s) in {store.jobs}")
    watching = threading.Event()
    if progress:
        threading.Thread(target=_show_stages, args=(store, bar, watching), daemon=True).start()
    try:
        if todo:
            executor = make_executor(cfg.run.executor, workers=cfg.run.workers,
                                     threads_per_worker=cfg.run.threads_per_worker,
                                     scheduler=cfg.run.scheduler, cache_dir=out / "cache")
            pending = _submit(cfg, data, todo, executor, cancel, store, run_id, bar, on_job)
            _collect(pending, store, run_id, cancel, bar, on_job)
    except BaseException:
        if executor is not None:
            executor.close(cancel=True)
            executor = None
        _remove_cache(out / "cache", keep_thinned=True)  # a re-run resumes from these
        raise
    finally:
        watching.set()
        bar.close()
        if executor is not None:
            executor.close()
    if not cfg.run.keep_cache:
        _remove_cache(out / "cache")
    table = store.table(j.id for j in jobs)
    store.write_table(table)
    seconds = time.perf_counter() - t_start
    _write_provenance(cfg, data, jobs, todo, out, started, seconds, executor_name=cfg.run.executor)
    warn_flags(table)
    return SweepResult(results=table, output=out, n_jobs=len(jobs), n_ran=len(todo),
                       n_reused=len(jobs) - len(todo), seconds=seconds)


def warn_flags(table: pd.DataFrame) -> None:
    """Warn once for the estimates of a results table that are within their null
    (:class:`~noisescale.mi.WithinNullWarning`) and once for those whose samples were
    dominated by ties (:class:`~noisescale.mi.TiesWarning`), counted per signal and model from
    the ``mi_flags`` column (workers record the flags instead of warning)."""
    import warnings

    from ..mi import TiesWarning, WithinNullWarning

    if table.empty or "mi_flags" not in table:
        return
    flags = table["mi_flags"].fillna("").astype(str).str.split(";")
    for flag, category, what in (
            ("within_null", WithinNullWarning,
             "not above their null's 95 % upper edge (they cannot be told apart from "
             "independence with these held-out cells)"),
            ("ties", TiesWarning, "made on samples dominated by ties (discrete values)")):
        hit = flags.map(lambda f, flag=flag: flag in f)
        if not hit.any():
            continue
        counts = table.assign(_hit=hit).groupby(["signal", "model"], sort=True)["_hit"].agg(
            ["sum", "size"])
        parts = [f"{s!r}/{m!r}: {int(r['sum'])} of {int(r['size'])}"
                 for (s, m), r in counts.iterrows() if r["sum"]]
        warnings.warn(f"{int(hit.sum())} of {len(table)} MI estimates are {what} (mi_flags "
                      f"{flag!r}); per signal/model: {'; '.join(parts)}", category,
                      stacklevel=3)


def _check_signal_sizes(cfg: SweepConfig, data: SweepData) -> None:
    """Each signal must have enough held-out samples for its estimator (checked per seed)."""
    test = data.adata[data.test]
    for s in data.signals:
        for seed in cfg.sweep.seeds[:1]:
            n = s.prepare(test, derive_seed(seed, "signal", s.name)).n_samples
            k = cfg.estimator.k
            if n <= k + 1:
                raise ConfigError(f"signal {s.name!r}: only {n} usable samples among the "
                                  f"{data.test.size} held-out cells, too few for k = {k}; "
                                  "hold out more cells (split.test_fraction)")


def _out_of_core(cfg: SweepConfig, data: SweepData, n_rows: int) -> bool:
    """Whether a seed's thinned cells go to the on-disk cache: ``n_rows`` cells at every depth
    would not fit the memory budget (or ``run.out_of_core`` says so)."""
    if cfg.run.out_of_core != "auto":
        return cfg.run.out_of_core == "always"
    need = n_rows * data.entries_per_cell * PASS_BYTES_PER_ENTRY * len(data.fractions)
    return need > data.budget


def _seed_parts(cfg, data: SweepData, seed: int, segs, executor, progress, cancel) -> dict:
    """Every segment of one seed at every depth (see :mod:`.thinned`): from a complete cache
    entry, thinned into the cache, or thinned into memory and shared through the executor."""
    n_rows = np.unique(np.concatenate(list(segs.values()))).size
    directory = None
    if _out_of_core(cfg, data, n_rows):
        directory = cache_dir(Path(cfg.run.output), {
            "dataset": asdict(cfg.dataset), "split": asdict(cfg.split), "seed": seed,
            "fractions": data.fractions, "sizes": data.sizes, "thinning": cfg.sweep.thinning,
            "nested_cells": cfg.sweep.nested_cells})
        parts = cached(directory)
        if parts is not None:
            return parts
    with data.reader() as reader:
        parts = thin_seed(reader, data.cells, segs, data.fractions, seed, cfg.sweep.thinning,
                          chunk=data.chunk, directory=directory, progress=progress,
                          cancel=cancel)
    if directory is None:
        parts = {k: replace(p, matrix=executor.put(p.matrix)) for k, p in parts.items()}
    return parts


def _submit(cfg, data, todo, executor, cancel, store, run_id, bar, on_job) -> list:
    """Thin once per seed (all depths, only the cells the seed's jobs use), share each depth's
    cells with its jobs, submit the jobs; inline jobs finish here."""
    test_cells = data.adata[data.test]
    pending = []
    for seed in cfg.sweep.seeds:
        mine = [j for j in todo if j.seed == seed]
        if not mine:
            continue
        segs = segments(seed, data.test, data.validation, data.pool, data.sizes,
                        cfg.sweep.nested_cells)
        bar.set_postfix_str(f"thinning seed {seed}")
        parts = _seed_parts(cfg, data, seed, segs, executor, bar.disable is False, cancel)
        prepared = [s.prepare(test_cells, derive_seed(seed, "signal", s.name))
                    for s in data.signals]
        for level in sorted({j.level for j in mine}):
            test = [parts[(level, "test")]]
            validation = [parts[(level, "validation")]] if data.validation.size else None
            for job in (j for j in mine if j.level == level):
                if cancel.is_set():
                    raise Cancelled(_STOPPED)
                train = [parts[(level, name)] for name in
                         training_segments(job.n_cells, data.sizes, cfg.sweep.nested_cells)]
                future = executor.submit(run_job, job, cfg.dataset.name, train, test, prepared,
                                         cfg.estimator, cfg.run.threads_per_worker, validation,
                                         data.budget, cfg.run.out_of_core,
                                         str(store.stage_path(job.id)))
                pending.append((job, future))
                if executor.name == "inline":
                    _collect(pending, store, run_id, cancel, bar, on_job)
                    pending = []
        del parts
    return pending


def _collect(pending: list, store: ResultStore, run_id: str, cancel: threading.Event,
             bar, on_job) -> None:
    """Save each job's rows as it finishes; stop on a failed job or a cancel."""
    while pending:
        if cancel.is_set():
            raise Cancelled(_STOPPED)
        finished = [(j, f) for j, f in pending if f.done()]
        if not finished:
            time.sleep(0.05)
            continue
        for job, future in finished:
            try:
                out = future.result()
            except Exception as e:
                raise RuntimeError(f"job {job.id} (model {job.model.label!r}, seed {job.seed}, "
                                   f"fraction {job.fraction:g}, n_cells {job.n_cells}) failed: "
                                   f"{type(e).__name__}: {e}") from e
            store.save(job.id, out["rows"], run_id, fit=out["fit"])
            bar.update(1)
            if on_job is not None:
                on_job(job)
        gone = {id(f) for _, f in finished}
        pending[:] = [(j, f) for j, f in pending if id(f) not in gone]


def _remove_cache(cache: Path, keep_thinned: bool = False) -> None:
    """Delete the sweep's cache: the shared matrices of a run, and unless ``keep_thinned``
    the thinned cells' cache entries (:mod:`.thinned`)."""
    import shutil

    if not cache.is_dir():
        return
    for p in cache.iterdir():
        if keep_thinned and p.name.startswith("thinned-"):
            continue
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
    if not any(cache.iterdir()):
        cache.rmdir()


def _write_provenance(cfg, data, jobs, todo, out: Path, started: str, seconds: float,
                      executor_name: str) -> None:
    from .. import build_info

    info = build_info()
    prov = {
        "noisescale": info["version"],
        "config_hash": cfg.hash,
        "config": cfg.text,
        "dataset": {"path": cfg.dataset.path, "name": cfg.dataset.name,
                    "n_cells": int(data.cells.size), "n_genes": int(data.n_genes),
                    "test_mean_umis_per_cell": data.test_umis_per_cell,
                    "n_test": int(data.test.size), "n_pool": int(data.pool.size),
                    "n_validation": int(data.validation.size)},
        "thinning": cfg.sweep.thinning,
        "nested_cells": cfg.sweep.nested_cells,
        "fractions": list(data.fractions),
        "n_cells": list(data.sizes),
        "seeds": list(cfg.sweep.seeds),
        "models": [m.label for m in cfg.models],
        "signals": [s.name for s in cfg.signals],
        "n_jobs": len(jobs), "n_ran": len(todo),
        "executor": executor_name,
        "memory": {"memory_gb": data.budget / 2**30, "out_of_core": cfg.run.out_of_core,
                   "chunk_cells": data.chunk,
                   "fit_routes": ResultStore(out).fit_routes(j.id for j in jobs)},
        "started": started,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seconds": seconds,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "build": {k: info[k] for k in ("compiler", "openmp", "simd", "cuda_compiled")
                  if k in info},
        "device_auto": info["device_auto"],  # what device="auto" chose: thinning, torch, faiss
    }
    write_atomic(out / "provenance.json", json.dumps(prov, indent=2, default=str))
