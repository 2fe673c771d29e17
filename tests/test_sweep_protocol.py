"""The authors' protocol options of a sweep: per-gene thinning, independent training samples,
a validation set, log-spaced grids and the ``paper`` preset."""

from __future__ import annotations

import numpy as np
import pytest

from noisescale.sweep import ConfigError, load_config, run_sweep
from noisescale.sweep.config import parse_config
from noisescale.sweep.presets import EXAMPLES, PAPER_CONFIG
from noisescale.sweep.runner import load_dataset
from noisescale.sweep.thinned import training_rows
from test_sweep import config, dataset, stable  # noqa: F401  (dataset is a fixture)


def test_log_spaced_grids_and_their_errors(tmp_path):
    cfg = parse_config(config("x.h5ad", tmp_path, sweep={
        "umis_per_cell": {"min": 10, "max": 1000, "count": 3},
        "n_cells": {"min": 100, "max": 10000, "count": 5}}), base=tmp_path)
    np.testing.assert_allclose(cfg.sweep.umis_per_cell, [10, 100, 1000])
    assert cfg.sweep.n_cells == (100, 316, 1000, 3162, 10000)
    assert cfg.sweep.thinning == "binomial" and cfg.sweep.nested_cells is True
    for sweep, message in [
            ({"fractions": {"min": 0.1, "max": 1}}, "needs min, max and count"),
            ({"fractions": [1.0], "n_cells": {"min": 5, "max": 3, "count": 2}}, "0 < min < max"),
            ({"fractions": [1.0], "n_cells": {"min": 2, "max": 3, "count": 5}}, "repeat"),
            ({"fractions": [1.0], "thinning": "gene"}, "sweep.thinning must be one of"),
            ({"fractions": [1.0], "nested_cells": 0}, "nested_cells must be true or false")]:
        with pytest.raises(ConfigError, match=message):
            parse_config(config("x.h5ad", tmp_path, sweep=sweep), base=tmp_path)


def test_paper_preset_parses_and_says_what_the_paper_did(tmp_path):
    path = tmp_path / "paper.toml"
    path.write_text(PAPER_CONFIG)
    cfg = load_config(path)
    assert EXAMPLES["paper"] is PAPER_CONFIG
    assert cfg.split.n_test == 30000 and cfg.split.n_validation == 1000
    assert cfg.sweep.thinning == "per_gene" and cfg.sweep.nested_cells is False
    assert cfg.sweep.seeds == (42, 1404, 2701)
    assert cfg.sweep.umis_per_cell[0] == 10 and cfg.sweep.umis_per_cell[-1] == 8100
    assert len(cfg.sweep.umis_per_cell) == 10 and cfg.sweep.n_cells[-1] == 100_000
    models = {m.label: m.params for m in cfg.models}
    assert models["pca"]["center"] is False
    assert models["scvi"]["n_hidden"] == 512 and models["scvi"]["likelihood"] == "zinb"
    assert models["geneformer"]["ff_width"] == 512 and models["geneformer"]["max_len"] == 512
    assert cfg.estimator.options["lmi"]["test_fraction"] == 0.3
    # every line that sets something says what the paper did (a comment above or beside it)
    for table in ("[split]", "[sweep]"):
        block = PAPER_CONFIG.split(table)[1].split("\n\n")[0]
        for line in block.strip().splitlines():
            assert "#" in line or line.startswith(" "), line


def test_independent_training_samples_and_validation_cells(dataset, tmp_path):  # noqa: F811
    cfg = parse_config(config(dataset, tmp_path / "o", split={
        "test_fraction": 0.3, "seed": 1, "n_validation": 50}), base=tmp_path)
    data = load_dataset(cfg)
    assert data.validation.size == 50
    assert not set(data.validation) & set(data.pool) and not set(data.validation) & set(data.test)
    assert data.pool.size + data.validation.size + data.test.size == 600
    nested = [training_rows(0, 370, n, True) for n in (50, 200)]
    assert set(nested[0]) <= set(nested[1])
    free = [training_rows(0, 370, n, False) for n in (50, 200)]
    assert not set(free[0]) <= set(free[1])  # independent samples, not nested
    assert np.array_equal(free[1], training_rows(0, 370, 200, False))  # seeded
    assert len(set(free[1])) == 200 and np.all(np.diff(free[1]) > 0)
    with pytest.raises(ConfigError, match="n_validation"):
        load_dataset(parse_config(config(dataset, tmp_path / "o", split={
            "test_fraction": 0.3, "n_validation": 419}), base=tmp_path))


def test_sweep_with_the_authors_protocol_runs_and_resumes(dataset, tmp_path):  # noqa: F811
    raw = config(dataset, tmp_path / "o",
                 split={"test_fraction": 0.3, "seed": 1, "n_validation": 40},
                 sweep={"fractions": [1.0, 0.3, 0.1], "n_cells": [100, 300], "seeds": [0],
                        "thinning": "per_gene", "nested_cells": False},
                 models=[{"name": "pca", "n_dims": 4, "n_top_genes": 100, "center": False},
                         {"name": "vae", "n_dims": 4, "n_top_genes": 100, "epochs": 2,
                          "min_epochs": 1, "n_hidden": 16}],
                 signals=[{"kind": "categorical", "column": "cell_type", "estimator": "ross"}])
    cfg = parse_config(raw, base=tmp_path)
    first = run_sweep(cfg)
    assert first.n_ran == first.n_jobs == 12
    table = first.results
    assert set(table["model"]) == {"pca", "vae"} and table["mi"].notna().all()
    import json

    prov = json.loads((tmp_path / "o" / "provenance.json").read_text())
    assert prov["thinning"] == "per_gene" and prov["nested_cells"] is False
    assert prov["dataset"]["n_validation"] == 40
    again = run_sweep(cfg)
    assert again.n_ran == 0
    assert stable(again.results).equals(stable(table))
    # the binomial protocol is another sweep: other job ids, other numbers
    other = run_sweep(parse_config({**raw, "sweep": {**raw["sweep"], "thinning": "binomial"}},
                                   base=tmp_path))
    assert other.n_ran == 12


def test_a_validation_set_lifts_the_models_own_split_rule(tmp_path):
    # 5 training cells cannot give a VAE its own 10 % validation split, but with the sweep's
    # validation cells every training cell trains: the config is valid then.
    raw = config("x.h5ad", tmp_path, sweep={"fractions": [1.0], "n_cells": [5]},
                 models=[{"name": "vae", "epochs": 1}])
    with pytest.raises(ConfigError, match="validation_fraction"):
        parse_config(raw, base=tmp_path)
    cfg = parse_config({**raw, "split": {"n_test": 10, "n_validation": 50}}, base=tmp_path)
    assert cfg.split.n_validation == 50
