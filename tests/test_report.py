"""The parameter table and the self-contained HTML report of a sweep
(noisescale.laws.fit_results, noisescale.report)."""

from __future__ import annotations

import base64
import os
import re

import numpy as np
import pandas as pd
import pytest

from noisescale import laws, report

MODELS = {"pca": (400.0, 1.5), "vae <&>": (150.0, 2.2)}     # u_bar, I_max at the largest N
SIGNALS = {"cell_type": 1.0, "protein": 0.6}               # scales I_max
SIZES = (500, 2000, 8000)
FRACTIONS = (0.005, 0.015, 0.05, 0.15, 0.5, 1.0)
FULL_DEPTH = 20000.0
CONFIG = '[sweep]\nname = "demo <run> & co"\nseeds = [0, 1, 2]\n'


def shown(v: float) -> str:
    """How the page prints a finite parameter: 3 significant digits, thousands as integers
    with separators, 10^6 and more in scientific notation."""
    v = float(v)
    if abs(v) >= 1e6:
        return f"{v:.3g}"
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}"


def truth(model: str, signal: str, n: int) -> tuple[float, float]:
    """Known u_bar and I_max: capacity grows with the training cells as a cell-number law."""
    u_bar, i_max = MODELS.get(model, MODELS["pca"])
    return u_bar, SIGNALS[signal] * (i_max + 0.4 - (n / 100) ** -0.5)


def results_table(models=tuple(MODELS), signals=tuple(SIGNALS), sizes=SIZES,
                  fractions=FRACTIONS, seeds=(0, 1, 2), noise=0.02, rng=0) -> pd.DataFrame:
    """A sweep's tidy table whose MI follows the noise law, plus noise; depths vary by seed."""
    rng = np.random.default_rng(rng)
    rows = []
    for signal in signals:
        for model in models:
            for n in sizes:
                u_bar, i_max = truth(model, signal, n)
                for q in fractions:
                    for seed in seeds:
                        u = FULL_DEPTH * q * (1 + rng.normal(0, 0.005))
                        rows.append(dict(
                            dataset="sim", signal=signal, model=model, estimator="lmi",
                            n_cells=n, fraction=q, seed=seed, umis_per_cell=u,
                            train_umis_per_cell=1.01 * u,
                            mi=float(laws.noise_law(u, u_bar, i_max) + rng.normal(0, noise)),
                            n_test=1000, fit_seconds=rng.uniform(1, 2), embed_seconds=0.1,
                            mi_seconds=0.3, job=f"{signal}-{model}-{n}-{q}-{seed}"))
    return pd.DataFrame(rows)


PROVENANCE = {"noisescale_version": "0.1.0", "config_hash": "c0ffee12", "config": CONFIG,
              "seeds": [0, 1, 2], "dataset": {"path": "/data/sim.h5ad", "shape": [3000, 2000]},
              "started": "2026-01-01T10:00:00", "finished": "2026-01-01T10:20:00",
              "executor": "local"}


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return results_table()


@pytest.fixture(scope="module")
def fits(table) -> pd.DataFrame:
    return laws.fit_results(table)


def assert_self_contained(text: str) -> None:
    assert "http://" not in text and "https://" not in text
    assert "<script" not in text.lower() and "<link" not in text.lower()
    assert "@import" not in text and "url(" not in text
    sources = re.findall(r'src="([^"]*)"', text)
    assert sources
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------------------- fit table


def test_fit_results_recovers_the_laws(table, fits):
    noise = fits[fits["law"] == "noise"]
    assert len(noise) == len(MODELS) * len(SIGNALS) * len(SIZES)
    assert list(fits.columns[:8]) == ["dataset", "signal", "model", "estimator", "law",
                                      "n_cells", "fraction", "umis_per_cell"]
    assert (noise["weights"] == "none").all() and (noise["n_seeds"] == 3).all()
    assert noise["reliable"].all() and noise["fraction"].isna().all()
    inside = {"u_bar": 0, "I_max": 0}
    for _, r in noise.iterrows():
        true = dict(zip(("u_bar", "I_max"), truth(r["model"], r["signal"], r["n_cells"])))
        for p, v in true.items():
            assert r[p] == pytest.approx(v, rel=0.15), (r["model"], r["signal"], p)
            inside[p] += r[f"{p}_lo"] <= v <= r[f"{p}_hi"]
    assert min(inside.values()) >= 0.8 * len(noise), inside  # 95 % intervals
    cells = fits[fits["law"] == "cells"]
    assert len(cells) == len(MODELS) * len(SIGNALS) * len(FRACTIONS)
    assert cells["n_cells"].isna().all() and cells["u_bar"].isna().all()
    deep = cells[cells["fraction"] == 1.0]
    assert (deep["umis_per_cell"] - FULL_DEPTH).abs().max() < 0.01 * FULL_DEPTH
    assert np.isfinite(deep[["N0", "s", "I_inf"]]).all().all()
    for _, r in deep.iterrows():  # the cell-number law follows the data across N
        for n in SIZES:
            true = laws.noise_law(FULL_DEPTH, *truth(r["model"], r["signal"], n))
            assert laws.cell_law(n, r["N0"], r["s"], r["I_inf"]) == pytest.approx(true, abs=0.03)


def test_fit_results_bootstrap_over_seeds_and_csv_round_trip(tmp_path, table):
    one = table[(table["model"] == "pca") & (table["signal"] == "cell_type")]
    fits = laws.fit_results(one, bootstrap=40, seed=1, weights="replicates")
    assert (fits["weights"] == "replicates").all()
    noise = fits[fits["law"] == "noise"]
    assert np.isfinite(noise[["u_bar_boot_lo", "u_bar_boot_hi", "I_max_boot_lo"]]).all().all()
    assert (noise["u_bar_boot_lo"] < noise["u_bar_boot_hi"]).all()
    again = laws.fit_results(one, bootstrap=40, seed=1, weights="replicates")
    pd.testing.assert_frame_equal(fits, again)
    # what `noisescale fit` saves, read back for `noisescale report`
    fits.to_csv(tmp_path / "fits.csv", index=False)
    out = report.write_report(one, tmp_path / "r.html", fits=pd.read_csv(tmp_path / "fits.csv"))
    text = out.read_text()
    assert "bootstrap [" in text and shown(noise["u_bar"].iloc[0]) in text
    assert f"{len(noise)} fits are weighted by the spread over seeds" in text
    with pytest.raises(ValueError, match="weights"):
        laws.fit_results(one, weights="inverse")


# ---------------------------------------------------------------------------- the page


def test_report_is_self_contained_escaped_and_complete(tmp_path, table, fits):
    path = report.write_report(table, tmp_path / "report.html", fits=fits, provenance=PROVENANCE,
                               title="Sweep <1> & friends")
    assert path == tmp_path / "report.html" and path.exists()
    text = path.read_text(encoding="utf-8")
    assert_self_contained(text)
    assert "vae &lt;&amp;&gt;" in text and "vae <&>" not in text
    assert "Sweep &lt;1&gt; &amp; friends" in text
    assert 'name = &quot;demo &lt;run&gt; &amp; co&quot;' in text and "c0ffee12" in text
    assert "/data/sim.h5ad" in text and "2026-01-01T10:20:00" in text
    for _, r in fits[fits["law"] == "noise"].iterrows():
        assert shown(r["u_bar"]) in text and shown(r["I_max"]) in text
    for heading in ("Noise law per group", "Scaling curves", "Collapse", "Cell-number law",
                    "Residuals", "Measurements", "Provenance", "Job time"):
        assert heading in text
    assert 'badge ok">reliable' in text and "Collapse RMS deviation" in text
    n_images = text.count("data:image/png;base64,")
    assert n_images >= len(SIGNALS) * (2 + len(SIZES) + len(MODELS))
    assert path.stat().st_size < 3e6
    assert list(tmp_path.iterdir()) == [path]


def test_report_handles_degenerate_tables(tmp_path):
    t = results_table(models=("pca",), signals=("cell_type",), sizes=(1000,))
    t.loc[t.index[:4], "mi"] = np.nan                        # some jobs lost their MI
    bad = results_table(models=("broken",), signals=("cell_type",), sizes=(1000,),
                        fractions=(0.1, 1.0), seeds=(0,))    # 2 points: cannot be fitted
    single = results_table(models=("flat",), signals=("cell_type",), sizes=(1000,),
                           fractions=(0.5,))                 # a single depth
    df = pd.concat([t, bad, single], ignore_index=True)
    fits = laws.fit_results(df)
    assert (fits["law"] == "noise").all()                   # one training size: no cell law
    by_model = fits.set_index("model")
    assert by_model.loc["pca", "reliable"] and "dropped_nan" in by_model.loc["pca", "flags"]
    assert by_model.loc["broken", "flags"] == "failed"
    assert "at least 3 points" in by_model.loc["broken", "error"]
    assert by_model.loc["broken", "weights"] == "none"
    assert not by_model.loc["flat", "reliable"]
    text = report.write_report(df, tmp_path / "r.html").read_text()
    assert_self_contained(text)
    assert 'badge bad">failed' in text and 'badge warn">unreliable' in text
    assert "at least 3 points" in text and "4 measurements without MI" in text
    assert "Cell-number law" not in text

    # nothing reliable at all: no collapse, still a page
    text = report.write_report(pd.concat([bad, single]), tmp_path / "r2.html").read_text()
    assert "nothing to collapse" in text and "No provenance" in text


def test_report_groups_by_other_columns(tmp_path, table):
    sub = table[(table["signal"] == "protein") & (table["n_cells"] == 8000)]
    sub = sub.drop(columns=["fit_seconds", "embed_seconds"])
    text = report.write_report(sub, tmp_path / "r.html", by=["model"]).read_text()
    assert_self_contained(text)
    assert "Job time" in text and "vae &lt;&amp;&gt;" in text


# ---------------------------------------------------------------------------- errors, atomicity


def test_errors_name_the_problem(tmp_path, table):
    with pytest.raises(ValueError, match="empty"):
        laws.fit_results(table.iloc[:0])
    with pytest.raises(ValueError, match=r"\['umis_per_cell', 'mi'\]"):
        laws.fit_results(table.drop(columns=["umis_per_cell", "mi"]))
    with pytest.raises(ValueError, match=r"\['signal'\]"):
        report.write_report(table.drop(columns="signal"), tmp_path / "r.html")
    with pytest.raises(ValueError, match="grouping"):
        laws.fit_results(table, by=())
    with pytest.raises(ValueError, match="bootstrap"):
        laws.fit_results(table, bootstrap=-1)
    with pytest.raises(ValueError, match="fitted over"):
        laws.fit_results(table, by=("model", "n_cells"))
    with pytest.raises(ValueError, match="fits table lacks"):
        report.write_report(table, tmp_path / "r.html", fits=pd.DataFrame({"x": [1]}))
    with pytest.raises(TypeError, match="DataFrame"):
        laws.fit_results(table.to_dict())
    assert list(tmp_path.iterdir()) == []


def test_write_is_atomic(tmp_path, monkeypatch, table):
    target = tmp_path / "report.html"
    target.write_text("old report")
    with pytest.raises(ValueError):
        report.write_report(table.drop(columns="mi"), target)
    assert target.read_text() == "old report"

    def fail(src, dst):
        raise OSError("disk full")

    small = table[(table["model"] == "pca") & (table["signal"] == "protein")
                  & (table["n_cells"] == 8000)]
    monkeypatch.setattr(os, "replace", fail)  # the rename into place fails
    with pytest.raises(OSError, match="disk full"):
        report.write_report(small, target)
    assert target.read_text() == "old report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]
    monkeypatch.undo()
    report.write_report(small, target)
    assert target.read_text().startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


def test_report_embeds_the_paper_figures(tmp_path, table, fits):
    from noisescale.report import figures

    made = figures(table, tmp_path / "figures", fits=fits, formats=("png",),
                   only=["noise_curves", "u90"], dpi=40)
    pngs = [p for p in made.paths if p.suffix == ".png"]
    assert len(pngs) == 1  # u90 is a table (csv, md, tex), not a figure
    path = report.write_report(table, tmp_path / "report.html", fits=fits, figures=pngs)
    text = path.read_text()
    assert 'id="figures"' in text and "noise_curves.png" in text
    assert base64.b64encode(pngs[0].read_bytes()).decode("ascii") in text
    with pytest.raises(ValueError, match="must be PNG"):
        report.write_report(table, tmp_path / "r2.html", fits=fits,
                            figures=[tmp_path / "figures" / "u90.md"])
    assert not (tmp_path / "r2.html").exists()
