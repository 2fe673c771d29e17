"""Sweeps at atlas scale, on small files with a tiny memory budget: only the cells a sweep uses
are read and thinned (same bits as thinning the whole matrix), the thinned cells go to an
on-disk cache that a killed run resumes from, models train from a stream, and bad input fails
before any work."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import noisescale as ns
from noisescale.sweep import ConfigError, read_results, run_sweep
from noisescale.sweep.config import parse_config
from noisescale._internal.seeding import derive_seed
from noisescale.sweep.runner import load_dataset
from noisescale.sweep.thinned import (
    cached,
    load_parts,
    segments,
    thin_seed,
    training_segments,
)
from test_sweep import config, dataset, stable  # noqa: F401  (dataset is a fixture)

#: run options that force the out-of-core route on the 600-cell test dataset.
OUT_OF_CORE = {"workers": 1, "out_of_core": "always", "memory_gb": 0.05}


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        h.update(f.read_bytes())
    return h.hexdigest()


def _small(path, tmp_path, **run) -> dict:
    return config(path, tmp_path / "o", sweep={"fractions": [1.0, 0.3, 0.1],
                                                  "n_cells": [60, 150, 300], "seeds": [0]},
                  models=[{"name": "pca", "n_dims": 4, "n_top_genes": 100}],
                  signals=[{"kind": "categorical", "column": "cell_type",
                            "estimator": "ross"}],
                  run={"output": str(tmp_path / "o"), **run})


@pytest.mark.parametrize("thinning", ["binomial", "per_gene"])
def test_selected_rows_thin_to_the_whole_matrix_bits(dataset, tmp_path,  # noqa: F811
                                                     thinning):
    cfg = parse_config(_small(dataset, tmp_path), base=tmp_path)
    data = load_dataset(cfg)
    X = sp.csr_matrix(ad.read_h5ad(dataset).X)
    if thinning == "binomial":  # one nested series per seed
        whole = ns.thin_series(X, list(data.fractions), seed=derive_seed(0, "thin"))
    else:  # an independent per-gene draw per depth, over all cells
        whole = [ns.thin(X, q, seed=derive_seed(0, "thin", "per_gene", level),
                         method="per_gene") for level, q in enumerate(data.fractions)]
    segs = segments(0, data.test, data.validation, data.pool, data.sizes, True)
    union = np.unique(np.concatenate(list(segs.values())))
    assert union.size < X.shape[0]  # the pool cells no job trains on are not read
    with data.reader() as reader:
        memory = thin_seed(reader, data.cells, segs, data.fractions, 0, thinning, chunk=37,
                           directory=None)
        stored = thin_seed(reader, data.cells, segs, data.fractions, 0, thinning, chunk=50,
                           directory=tmp_path / "cache")
    for (level, name), part in memory.items():
        ref = whole[level][segs[name]]
        for got in (load_parts([part]), load_parts([stored[(level, name)]])):
            assert got.shape == ref.shape and (got != ref).nnz == 0
        assert stored[(level, name)].nnz == ref.nnz
        assert stored[(level, name)].umis == pytest.approx(ref.sum())
    # a job's training cells are its segments, in increasing position: pool[rows] of the
    # in-memory route
    from noisescale.sweep.thinned import training_rows

    for n in data.sizes:
        names = training_segments(n, data.sizes, True)
        got = load_parts([stored[(1, s)] for s in names])
        ref = whole[1][data.pool[training_rows(0, data.pool.size, n, True)]]
        assert (got != ref).nnz == 0
    # a cache entry counts only once its manifest is written, and only with all its stores
    assert cached(tmp_path / "cache") is not None
    next((tmp_path / "cache").glob("L2-*.h5ad")).unlink()
    assert cached(tmp_path / "cache") is None
    (tmp_path / "cache" / "manifest.json").unlink()
    assert cached(tmp_path / "cache") is None


def test_out_of_core_sweep_streams_and_matches_the_in_memory_one(dataset, tmp_path):  # noqa: F811
    before = _digest(dataset)
    memory = run_sweep(parse_config(_small(dataset, tmp_path / "m", workers=1), base=tmp_path))
    cfg = parse_config(_small(dataset, tmp_path / "d", **OUT_OF_CORE, keep_cache=True),
                       base=tmp_path)
    streamed = run_sweep(cfg)
    assert _digest(dataset) == before  # nothing is written into the input store
    a, b = stable(memory.results), stable(streamed.results)
    # the same thinned cells: identical depths of the held-out and the training cells
    pd.testing.assert_series_equal(a["umis_per_cell"], b["umis_per_cell"])
    np.testing.assert_allclose(a["train_umis_per_cell"], b["train_umis_per_cell"], rtol=1e-12)
    # exact PCA from streamed covariances vs ARPACK: the same embedding up to rounding
    np.testing.assert_allclose(a["mi"], b["mi"], atol=0.02)
    out = tmp_path / "d" / "o"
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["memory"]["out_of_core"] == "always"
    routes = prov["memory"]["fit_routes"]
    assert sum(routes.values()) == streamed.n_jobs and all(k.startswith("stream") for k in routes)
    entries = list((out / "cache").glob("thinned-*/manifest.json"))
    assert len(entries) == 1
    # a re-run reuses the jobs, and a new job (another model) reuses the committed cache
    more = _small(dataset, tmp_path / "d", **OUT_OF_CORE, keep_cache=True)
    more["models"] = more["models"] + [{"name": "random_projection", "n_dims": 4,
                                       "n_top_genes": 100}]
    mtime = entries[0].stat().st_mtime_ns
    again = run_sweep(parse_config(more, base=tmp_path))
    assert again.n_reused == streamed.n_jobs and again.n_ran == streamed.n_jobs
    assert entries[0].stat().st_mtime_ns == mtime


def test_budget_between_the_pass_and_the_fit_keeps_the_in_memory_results(dataset, tmp_path):  # noqa: F811
    """Thinned cells in the cache, but each job's training cells fit: the jobs read them back
    and fit in memory, so the table is the in-memory route's, bit for bit."""
    X = ad.read_h5ad(dataset).X
    per_cell = X.nnz / X.shape[0]
    # the pass holds 180 held-out + 300 training cells at 3 depths (16 B an entry); the largest
    # job's fit 300 cells (48 B an entry): a budget between the two
    budget = 18_000 * per_cell / 2**30
    memory = run_sweep(parse_config(_small(dataset, tmp_path / "m"), base=tmp_path))
    cached_run = run_sweep(parse_config(_small(dataset, tmp_path / "c", workers=1,
                                               out_of_core="auto", memory_gb=budget),
                                        base=tmp_path))
    prov = json.loads((tmp_path / "c" / "o" / "provenance.json").read_text())
    assert prov["memory"]["fit_routes"] == {"memory": cached_run.n_jobs}
    pd.testing.assert_frame_equal(stable(memory.results), stable(cached_run.results))


def test_clear_errors_before_any_work(dataset, tmp_path):  # noqa: F811
    with pytest.raises(ConfigError, match="too small for one chunk"):
        load_dataset(parse_config(_small(dataset, tmp_path, memory_gb=1e-6), base=tmp_path))
    with pytest.raises(ConfigError, match=r"sweep.n_cells: 900 .*\(600 cells, 180 held out"):
        load_dataset(parse_config(config(dataset, tmp_path / "o", sweep__n_cells=[900]),
                                  base=tmp_path))
    with pytest.raises(ConfigError, match="run.memory_gb must be a positive"):
        parse_config(_small(dataset, tmp_path, memory_gb=0), base=tmp_path)
    with pytest.raises(ConfigError, match="run.out_of_core must be one of"):
        parse_config(_small(dataset, tmp_path, out_of_core="sometimes"), base=tmp_path)
    csc = ad.read_h5ad(dataset)
    csc.X = sp.csc_matrix(csc.X)
    csc.write_h5ad(tmp_path / "csc.h5ad")
    with pytest.raises(ConfigError, match="CSC"):
        load_dataset(parse_config(config(tmp_path / "csc.h5ad", tmp_path / "o"), base=tmp_path))
    assert not (tmp_path / "o").exists()


def test_zarr_store_and_a_filter_read_only_their_cells(dataset, tmp_path):  # noqa: F811
    a = ad.read_h5ad(dataset)
    a.obs["batch"] = np.where(np.arange(a.n_obs) % 3 == 0, "x", "y")
    a.write_zarr(tmp_path / "sim.zarr")
    a.write_h5ad(tmp_path / "sim.h5ad")
    tables = []
    for name in ("sim.zarr", "sim.h5ad"):
        raw = _small(tmp_path / name, tmp_path / f"run-{name}", **OUT_OF_CORE)
        raw["dataset"]["filter"] = {"batch": "y"}
        raw["split"] = {"test_fraction": 0.25, "seed": 1}
        raw["sweep"]["n_cells"] = [60, 150]
        tables.append(stable(run_sweep(parse_config(raw, base=tmp_path)).results))
    pd.testing.assert_frame_equal(tables[0].drop(columns="job"), tables[1].drop(columns="job"))
    assert (tables[0]["n_test"] == 100).all()


def test_killed_out_of_core_run_resumes_from_its_cache(dataset, tmp_path):  # noqa: F811
    """SIGKILL `noisescale run` once the thinned cache is committed and a job is done; the
    re-run reuses both and its table equals an uninterrupted run's."""
    import tomli_w

    raw = _small(dataset, tmp_path, **OUT_OF_CORE, keep_cache=True)
    raw["models"] = [{"name": "pca", "n_dims": 4, "n_top_genes": 100},
                     {"name": "vae", "n_dims": 4, "n_top_genes": 100, "epochs": 3,
                      "n_hidden": 16, "min_epochs": 1}]
    (tmp_path / "sweep.toml").write_text(tomli_w.dumps(raw))
    out = tmp_path / "o"
    proc = subprocess.Popen([sys.executable, "-m", "noisescale", "run", "sweep.toml",
                             "--no-report", "--quiet"], cwd=tmp_path, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not (len(list((out / "jobs").glob("*.json"))) >= 2
               and list((out / "cache").glob("thinned-*/manifest.json"))):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    manifest = next((out / "cache").glob("thinned-*/manifest.json"))
    mtime = manifest.stat().st_mtime_ns
    done = {p.stem for p in (out / "jobs").glob("*.json")}
    resumed = subprocess.run([sys.executable, "-m", "noisescale", "run", "sweep.toml",
                              "--no-report", "--quiet"], cwd=tmp_path, capture_output=True,
                             text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert manifest.stat().st_mtime_ns == mtime  # the committed cache entry was reused
    assert len(list((out / "jobs").glob("*.json"))) == 18 > len(done)
    whole = run_sweep(parse_config({**raw, "run": {**raw["run"],
                                                   "output": str(tmp_path / "whole"),
                                                   "keep_cache": True}}, base=tmp_path))
    pd.testing.assert_frame_equal(stable(read_results(out)), stable(whole.results),
                                  check_dtype=False)
