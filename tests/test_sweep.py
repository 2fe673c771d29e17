"""The sweep end to end: config checks, resume after a kill, executors, real datasets."""

from __future__ import annotations

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

from conftest import shared_file
from noisescale.simulate import simulate
from noisescale.sweep import (
    CONFIG_REFERENCE,
    TIMING_COLUMNS,
    ConfigError,
    load_config,
    read_results,
    run_sweep,
)
from noisescale.sweep.config import parse_config
from noisescale.sweep.signals import Signal, spatial_pairs


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """A small simulated dataset with every kind of signal, clones included."""
    a = simulate(600, 400, n_types=4, n_programs=2, mean_umis=1500.0, n_proteins=6,
                 spatial=True, seed=3)
    order = np.random.default_rng(0).permutation(600)  # 150 clones of 2 + 2 cells
    a.obs["clone"] = pd.Categorical(np.repeat(np.arange(150), 4)[order])
    a.obs["day"] = np.tile([2, 2, 6, 6], 150)[order]
    path = tmp_path_factory.mktemp("data") / "sim.h5ad"
    a.write_h5ad(path)
    return path


def config(path: Path, out: Path, **changes) -> dict:
    cfg = {
        "dataset": {"path": str(path), "name": "sim"},
        "split": {"test_fraction": 0.3, "seed": 1},
        "sweep": {"fractions": [1.0, 0.3, 0.1, 0.03], "n_cells": [200, "all"], "seeds": [0, 1]},
        "models": [{"name": "pca", "n_dims": 6, "n_top_genes": 200},
                   {"name": "random_projection", "n_dims": 6, "n_top_genes": 200}],
        "signals": [{"kind": "categorical", "column": "cell_type", "estimator": "ross"},
                    {"kind": "continuous", "key": "protein", "estimator": "ksg"},
                    {"kind": "time", "column": "time", "estimator": "ksg"},
                    {"kind": "spatial_neighbor", "key": "spatial", "k": 5, "estimator": "ksg"}],
        "run": {"output": str(out), "workers": 1},
    }
    for key, value in changes.items():
        table, _, name = key.partition("__")
        if name:
            cfg[table] = {**cfg[table], name: value}
        else:
            cfg[table] = value
    return cfg


def stable(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=TIMING_COLUMNS).reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# Configuration errors are found before any work starts


@pytest.mark.parametrize("change, message", [
    ({"models": [{"name": "pcaa"}]}, "unknown model 'pcaa'"),
    ({"models": [{"name": "pca", "n_dimz": 3}]}, "bad parameters for model 'pca'"),
    ({"sweep__fractions": [1.0, 1.5]}, r"sweep.fractions must lie in \(0, 1\]"),
    ({"sweep__fractions": [0.5, 0.5]}, "repeated"),
    ({"sweep__fractons": [0.5]}, "unknown key"),
    ({"signals": [{"kind": "categorical"}]}, "needs column"),
    ({"signals": [{"kind": "colour", "column": "x"}]}, "kind must be one of"),
    ({"signals": [{"kind": "categorical", "column": "cell_type", "estimator": "ksg"}]},
     "estimator must be one of"),
    ({"split__test_fraction": 1.2}, "test_fraction"),
    ({"run__executor": "slurm"}, "executor"),
    # impossible model parameters, found with the configuration, not when the first job runs
    ({"models": [{"name": "pca", "n_dims": 6, "n_top_genes": 6}]},
     r"models\[0\]: PCA with 6 dims needs n_top_genes > 6 \(the components span the "
     r"selected genes\), got n_top_genes=6 \(training size n_cells = 200\)"),
    ({"models": [{"name": "pca", "n_dims": 250, "label": "wide"}]},
     r"models\[0\] \('wide'\): PCA with 250 dims needs more than 250 training cells, got "
     r"200 \(training size n_cells = 200\)"),
    ({"models": [{"name": "pca", "n_dims": 6}, {"name": "vae", "validation_fraction": 0.002}]},
     r"models\[1\]: VAE: 200 cells are too few for a training and a validation split: "
     r"validation_fraction=0.002 holds out 0 and leaves 200 for training"),
    ({"models": [{"name": "pca", "n_dims": 20, "n_top_genes": 10}], "sweep__n_cells": ["all"]},
     r"models\[0\]: PCA with 20 dims needs n_top_genes > 20"),
])
def test_bad_config_is_refused_when_read(dataset, tmp_path, change, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(config(dataset, tmp_path / "out", **change), base=tmp_path)


@pytest.mark.parametrize("change, message", [
    ({"signals": [{"kind": "categorical", "column": "celltype"}]}, "obs has no column 'celltype'"),
    ({"signals": [{"kind": "continuous", "key": "adt"}]}, "obsm has no key 'adt'"),
    ({"signals": [{"kind": "spatial_neighbor", "key": "xy"}]}, "obsm has no key 'xy'"),
    ({"signals": [{"kind": "clone_pairs", "clone_key": "lineage", "time_column": "day"}]},
     "no clone membership under 'lineage'"),
    ({"signals": [{"kind": "clone_pairs", "clone_key": "clone", "time_column": "day",
                   "early": 4}]}, "no cell has early time 4"),
    ({"sweep": {"umis_per_cell": [500, 90000]}}, "exceed the mean depth of the held-out cells"),
    ({"sweep__n_cells": [5000]}, "training pool has 420"),
    ({"dataset__layer": "counts"}, "no layer 'counts'"),
    ({"split__stratify": "batch"}, "obs has no column 'batch'"),
    ({"models": [{"name": "pca", "n_dims": 401}], "sweep__n_cells": ["all"]},
     r"models\[0\]: PCA with 401 dims needs more than 401 genes, got 400 \(training size "
     r"n_cells = 420, 400 genes in the dataset\)"),
    ({"models": [{"name": "pca", "n_dims": 6}, {"name": "vae", "validation_fraction": 0.001}],
      "sweep__n_cells": ["all"]}, r"models\[1\]: VAE: 420 cells are too few"),
])
def test_config_errors_against_the_data_come_before_any_job(dataset, tmp_path, change, message):
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match=message):
        run_sweep(parse_config(config(dataset, out, **change), base=tmp_path))
    assert not out.exists()  # nothing was started


def test_dataset_that_is_not_anndata_is_named(tmp_path):
    """Issue 16: a text or plain HDF5 dataset.path failed with HDF5's 'file signature not
    found'; the error names the key, the file and what it is."""
    import h5py

    text = tmp_path / "cells.h5ad"
    text.write_text("gene,cell1,cell2\nCD3E,1,0\n")
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f["data"] = np.arange(3)
    for path, message in [
        (text, r"dataset.path: .*cells.h5ad is not an AnnData file: it is neither HDF5 "
               r"\(.h5ad\) nor zarr \(it is text starting 'gene,cell1,cell2'\)"),
        (plain, r"dataset.path: .*plain.h5 is an HDF5 file but not an AnnData store: it has "
                r"no obs and var \(top-level keys: 'data'\)")]:
        out = tmp_path / "out"
        with pytest.raises(ConfigError, match=message):
            run_sweep(parse_config(config(path, out), base=tmp_path))
        assert not out.exists()


def test_model_shapes_against_the_data_are_config_errors(dataset, tmp_path):
    """What only the dataset tells (the "all" training size, the genes): the check the sweep
    runs after reading the data (check_model_shapes), before any job."""
    from noisescale.sweep.config import check_model_shapes

    cfg = parse_config(config(dataset, tmp_path / "out", sweep__n_cells=["all"],
                              models=[{"name": "pca", "n_dims": 6},
                                      {"name": "pca", "label": "wide", "n_dims": 401}]),
                       base=tmp_path)
    check_model_shapes(cfg.models[:1], [420], 400)
    with pytest.raises(ConfigError, match=r"models\[1\] \('wide'\): PCA with 401 dims needs "
                                          r"more than 401 genes, got 400 \(training size "
                                          r"n_cells = 420, 400 genes in the dataset\)"):
        check_model_shapes(cfg.models, [420], 400)
    with pytest.raises(ConfigError, match=r"models\[1\] \('wide'\): PCA with 401 dims needs "
                                          r"more than 401 training cells, got 300"):
        check_model_shapes(cfg.models, [420, 300], 1000)


def test_example_config_is_valid(tmp_path):
    path = tmp_path / "sweep.toml"
    path.write_text(CONFIG_REFERENCE)
    cfg = load_config(path)
    assert cfg.dataset.path == str(tmp_path / "cells.h5ad")
    assert [m.name for m in cfg.models] == ["pca"] and cfg.signals[0].estimator == "auto"
    assert Path(cfg.run.output) == tmp_path / "results"


def test_toml_syntax_error_names_the_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[dataset\npath = 1")
    with pytest.raises(ConfigError, match="bad.toml: not valid TOML"):
        load_config(path)


# ---------------------------------------------------------------------------------------------
# Signals


def test_clone_pairs_and_grouped_split(dataset, tmp_path):
    from noisescale.sweep.runner import load_dataset

    cfg = parse_config(config(dataset, tmp_path / "o", signals=[
        {"kind": "clone_pairs", "clone_key": "clone", "time_column": "day",
         "estimator": "ksg"}]), base=tmp_path)
    data = load_dataset(cfg)
    clones = data.adata.obs["clone"].to_numpy()
    assert not set(clones[data.test]) & set(clones[data.pool])  # sisters stay together
    test = data.adata[data.test]
    pairs = data.signals[0].prepare(test, seed=0).pairs
    tc, day = test.obs["clone"].to_numpy(), test.obs["day"].to_numpy()
    assert len(pairs) == len(set(tc))  # every held-out clone has both days: one pair each
    assert np.all(tc[pairs[:, 0]] == tc[pairs[:, 1]])
    assert np.all(day[pairs[:, 0]] == 2) and np.all(day[pairs[:, 1]] == 6)


def test_spatial_pairs_are_nearest_neighbours_and_seeded():
    rng = np.random.default_rng(0)
    xy = rng.random((300, 2))
    p = spatial_pairs(xy, 4, seed=7)
    assert np.array_equal(p, spatial_pairs(xy, 4, seed=7))
    assert not np.array_equal(p, spatial_pairs(xy, 4, seed=8))
    d = ((xy[:, None] - xy[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    fourth = np.sort(d, axis=1)[:, 3]
    assert np.all(p[:, 0] == np.arange(300)) and np.all(p[:, 1] != p[:, 0])
    assert np.all(d[p[:, 0], p[:, 1]] <= fourth)


def test_categorical_missing_labels_are_left_out(dataset):
    from noisescale.sweep.config import SignalSpec

    a = ad.read_h5ad(dataset)
    a.obs["label"] = pd.Categorical(np.where(np.arange(a.n_obs) % 3 == 0, None, "x"))
    s = Signal(SignalSpec("label", "categorical", "ross", {"column": "label"}))
    assert s.prepare(a, 0).n_samples == a.n_obs - (a.n_obs + 2) // 3


# ---------------------------------------------------------------------------------------------
# Running, resuming, executors


def test_sweep_table_resume_and_depth_trend(dataset, tmp_path):
    out = tmp_path / "out"
    cfg = parse_config(config(dataset, out), base=tmp_path)
    first = run_sweep(cfg)
    df = first.results
    assert first.n_jobs == 2 * 4 * 2 * 2 and first.n_ran == first.n_jobs
    assert len(df) == first.n_jobs * 4
    assert set(df["signal"]) == {"cell_type", "protein", "time", "spatial"}
    assert np.isfinite(df["mi"]).all()
    assert df.groupby("job").size().eq(4).all()
    # depth u is measured on the held-out cells; it falls with the fraction
    assert np.allclose(df["umis_per_cell"] / df["fraction"], df["umis_per_cell"].max(),
                       rtol=0.05)
    # information grows with depth (on average over signals, models and seeds)
    mean = df[df.model == "pca"].groupby("fraction")["mi"].mean()
    assert mean.is_monotonic_increasing, mean
    assert (out / "results.csv").exists() and (out / "provenance.json").exists()
    assert not (out / "cache").exists()
    assert stable(read_results(out)).equals(stable(df)) or np.allclose(
        read_results(out)["mi"], df["mi"])
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["config_hash"] == cfg.hash and prov["n_jobs"] == first.n_jobs
    again = run_sweep(cfg)
    assert again.n_ran == 0 and again.n_reused == first.n_jobs
    pd.testing.assert_frame_equal(again.results, df)
    # extending the grid reuses every finished job
    more = parse_config(config(dataset, out, sweep__seeds=[0, 1, 2]), base=tmp_path)
    extended = run_sweep(more)
    assert extended.n_reused == first.n_jobs and extended.n_ran == first.n_jobs // 2


def test_target_depths_become_fractions(dataset, tmp_path):
    cfg = parse_config(config(dataset, tmp_path / "out", sweep={
        "umis_per_cell": [1000, 300], "n_cells": ["all"], "seeds": [0]}, models=[
        {"name": "pca", "n_dims": 6, "n_top_genes": 200}]), base=tmp_path)
    df = run_sweep(cfg).results
    u = df.groupby("fraction")["umis_per_cell"].mean().sort_index(ascending=False)
    assert np.allclose(u.to_numpy(), [1000, 300], rtol=0.005)  # binomial noise only


def test_process_pool_equals_inline(dataset, tmp_path):
    inline = run_sweep(parse_config(config(dataset, tmp_path / "a", sweep__seeds=[0]),
                                    base=tmp_path))
    pooled = run_sweep(parse_config(config(dataset, tmp_path / "b", sweep__seeds=[0],
                                           run={"output": str(tmp_path / "b"), "workers": 2}),
                                    base=tmp_path))
    pd.testing.assert_frame_equal(stable(pooled.results), stable(inline.results))


def test_dask_local_cluster_equals_local(dataset, tmp_path):
    small = dict(sweep__seeds=[0], sweep__fractions=[1.0, 0.1], sweep__n_cells=["all"])
    local = run_sweep(parse_config(config(dataset, tmp_path / "a", **small), base=tmp_path))
    dask = run_sweep(parse_config(config(dataset, tmp_path / "b", **small, run={
        "output": str(tmp_path / "b"), "executor": "dask", "workers": 2}), base=tmp_path))
    pd.testing.assert_frame_equal(stable(dask.results), stable(local.results))


def _cli(*args: str, cwd: Path, **kw):
    return subprocess.run([sys.executable, "-m", "noisescale", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600, **kw)


@pytest.mark.parametrize("sig, workers", [(signal.SIGKILL, 1), (signal.SIGTERM, 1),
                                          (signal.SIGINT, 2)])
def test_killed_run_resumes_to_the_same_table(dataset, tmp_path, sig, workers):
    """Kill `noisescale run` mid-way (SIGINT: to the whole process group, as Ctrl-C in a
    terminal, with a process pool), run it again: the table equals an uninterrupted run's,
    and no finished job ran twice."""
    import tomli_w

    cfg = config(dataset, tmp_path / "killed", sweep__seeds=[0, 1, 2],
                 run={"output": str(tmp_path / "killed"), "workers": workers})
    (tmp_path / "sweep.toml").write_text(tomli_w.dumps(cfg))
    jobs = tmp_path / "killed" / "jobs"
    proc = subprocess.Popen([sys.executable, "-m", "noisescale", "run", "sweep.toml",
                             "--no-report", "--quiet"], cwd=tmp_path, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not (jobs.is_dir() and len(list(jobs.glob("*.json"))) >= 5):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    if sig == signal.SIGINT:
        os.killpg(proc.pid, sig)
    else:
        proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == (-9 if sig == signal.SIGKILL else 130), err
    if sig != signal.SIGKILL:
        assert "run the same command again" in err and "Traceback" not in err, err
    before = {p.stem: json.loads(p.read_text())["run"] for p in jobs.glob("*.json")}
    assert 5 <= len(before) < 48
    assert not list(jobs.glob(".*"))  # no half-written job file
    resumed = _cli("run", "sweep.toml", "--no-report", "--quiet", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    after = {p.stem: json.loads(p.read_text())["run"] for p in jobs.glob("*.json")}
    assert len(after) == 48
    assert all(after[j] == run for j, run in before.items())  # not run again
    assert len(set(after.values())) == 2
    whole = run_sweep(parse_config(config(dataset, tmp_path / "whole", sweep__seeds=[0, 1, 2]),
                                   base=tmp_path))
    pd.testing.assert_frame_equal(stable(read_results(tmp_path / "killed")),
                                  stable(whole.results), check_dtype=False)


def test_cli_run_fit_report(dataset, tmp_path):
    import tomli_w

    # "day" is drawn independently of the cells' states: its estimates sit within their null
    cfg = config(dataset, tmp_path / "out", sweep__seeds=[0], sweep__n_cells=["all"],
                 signals=[{"kind": "categorical", "column": "cell_type", "name": "type <b>",
                           "estimator": "ross"},
                          {"kind": "categorical", "column": "day", "estimator": "ross"}])
    (tmp_path / "sweep.toml").write_text(tomli_w.dumps(cfg))
    run = _cli("run", "sweep.toml", "--quiet", "--output", "elsewhere", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    out = tmp_path / "elsewhere"
    results = pd.read_csv(out / "results.csv")
    within = results["mi_flags"].fillna("").str.contains("within_null")
    assert within[results["signal"] == "day"].mean() > 0.5
    assert not within[results["signal"] != "day"].all()
    # the sweep's summary warning, one line, printed even with --quiet
    warned = [line for line in run.stderr.splitlines() if "WithinNullWarning" in line]
    assert len(warned) == 1 and warned[0].startswith("warning: WithinNullWarning: "), run.stderr
    assert f"{int(within.sum())} of {len(results)} MI estimates" in warned[0]
    for name in ("results.csv", "fits.csv", "report.html", "provenance.json", "config.toml"):
        assert (out / name).exists(), name
    html = (out / "report.html").read_text()
    assert "type &lt;b&gt;" in html and "type <b>" not in html
    fit = _cli("fit", str(out), "-o", "f.csv", cwd=tmp_path)
    assert fit.returncode == 0, fit.stderr
    fits = pd.read_csv(tmp_path / "f.csv")
    assert set(fits["model"]) == {"pca", "random_projection"} and "u_bar" in fits
    rep = _cli("report", str(out / "results.csv"), "-o", "r.html", "--quiet", cwd=tmp_path)
    assert rep.returncode == 0 and (tmp_path / "r.html").exists()
    bad = _cli("run", "missing.toml", cwd=tmp_path)
    assert bad.returncode == 1 and "config file not found" in bad.stderr
    example = _cli("run", "--example-config", cwd=tmp_path)
    assert example.returncode == 0 and "[[signals]]" in example.stdout


def test_demo_quick(tmp_path):
    demo = _cli("demo", "--quick", "--output", "d", "--quiet", cwd=tmp_path,
                env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert demo.returncode == 0, demo.stderr
    fits = pd.read_csv(tmp_path / "d" / "fits.csv")
    noise = fits[(fits.law == "noise") & (fits.model == "pca")]
    assert len(noise) == 9 and (noise["r2"] > 0.8).all()
    assert (noise["I_max"] > 0.2).all()
    assert (tmp_path / "d" / "report.html").stat().st_size > 10_000


# ---------------------------------------------------------------------------------------------
# The paper's signals on real data


def _real(tmp_path, name: str, signals, **changes):
    cfg = {
        "dataset": {"path": str(shared_file(name))},
        "split": {"test_fraction": 0.4, "seed": 0},
        "sweep": {"fractions": [1.0, 0.3, 0.1, 0.03], "n_cells": ["all"], "seeds": [0, 1]},
        "models": [{"name": "pca", "n_dims": 8}],
        "signals": signals,
        "run": {"output": str(tmp_path / "out"), "workers": 1},
    }
    for table, value in changes.items():
        cfg[table] = {**cfg[table], **value} if isinstance(value, dict) else value
    from noisescale.laws import fit_results

    df = run_sweep(parse_config(cfg, base=tmp_path)).results
    mean = df.groupby("fraction")["mi"].mean()
    assert mean.iloc[-1] > mean.iloc[0] + 0.05, mean  # deeper, more information
    fits = fit_results(df)
    noise = fits[fits.law == "noise"]
    assert np.isfinite(noise["u_bar"]).all() and (noise["r2"] > 0.5).all(), noise
    return df, noise


def test_paul2015_cell_type(tmp_path):
    _, fit = _real(tmp_path, "paul2015_tradeseq.h5ad",
                   [{"kind": "categorical", "column": "celltype", "estimator": "ross"}],
                   split={"stratify": "celltype"})
    assert 0.5 < fit["I_max"].iloc[0] < 2.81  # at most log2(7 types)


def test_osmfish_spatial_neighbours(tmp_path):
    df, _ = _real(tmp_path, "osmfish_codeluppi2018.h5ad",
                  [{"kind": "spatial_neighbor", "key": "spatial", "k": 5, "estimator": "ksg"}],
                  dataset={"filter": {"Valid": 1}},
                  models=[{"name": "pca", "n_dims": 8, "n_top_genes": 33}])
    assert df["n_test"].iloc[0] == round(0.4 * 4839)


def test_larry_clone_pairs(tmp_path):
    df, _ = _real(tmp_path, "larry_cospar_subset.h5ad",
                  [{"kind": "clone_pairs", "clone_key": "X_clone", "time_column": "time_info",
                    "early": 4, "late": 6, "estimator": "ksg"}],
                  split={"test_fraction": 0.5})
    assert (df["n_test"] > 20).all()
