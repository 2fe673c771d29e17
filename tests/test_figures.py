"""Every figure of the paper from a results table (noisescale.report.figures, `noisescale
figures`): files in both formats, the numbers behind them from noisescale.laws, skips."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from noisescale import laws
from noisescale.cli import main
from noisescale.laws.analysis import fraction_depth, ratio
from noisescale.report import FigureSet, figures
from noisescale.report.figures import NAMES

MODELS = {"pca": (400.0, 1.5), "scVI_2": (150.0, 2.2)}   # u_bar, I_max at the largest N
SIGNALS = {"cell_type": 1.0, "protein": 0.6}
SIZES = (500, 2000, 8000)
FRACTIONS = (0.005, 0.015, 0.05, 0.15, 0.5, 1.0)
BY = ["dataset", "signal", "model"]


def results_table(models=tuple(MODELS), signals=tuple(SIGNALS), sizes=SIZES,
                  seeds=(0, 1), noise=0.02, rng=0) -> pd.DataFrame:
    """MI that follows the noise law (I_max growing with N as a cell-number law), plus noise."""
    rng = np.random.default_rng(rng)
    rows = []
    for signal in signals:
        for model in models:
            u_bar, top = MODELS[model]
            for n in sizes:
                i_max = SIGNALS[signal] * (top + 0.4 - (n / 100) ** -0.5)
                for q in FRACTIONS:
                    for seed in seeds:
                        u = 20000.0 * q * (1 + rng.normal(0, 0.005))
                        rows.append(dict(
                            dataset="sim", signal=signal, model=model, n_cells=n, fraction=q,
                            seed=seed, umis_per_cell=u,
                            mi=float(laws.noise_law(u, u_bar, i_max) + rng.normal(0, noise))))
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return results_table()


@pytest.fixture(scope="module")
def fits(table) -> pd.DataFrame:
    return laws.fit_results(table)


@pytest.fixture(scope="module")
def made(table, fits, tmp_path_factory):
    before = table.copy(deep=True)
    out = tmp_path_factory.mktemp("figures")
    done = figures(table, out, fits=fits, dpi=60)
    pd.testing.assert_frame_equal(table, before)       # the input is not modified
    return done


def noise_row(fits: pd.DataFrame, r) -> pd.Series:
    t = fits[fits["law"] == "noise"]
    return t[(t["signal"] == r["signal"]) & (t["model"] == r["model"])
             & (t["n_cells"] == r["n_cells"])].iloc[0]


def test_every_figure_in_both_formats(made):
    assert isinstance(made, FigureSet) and not made.skipped
    assert list(made.written) == list(NAMES)
    for name in NAMES:
        suffixes = {p.suffix for p in made.written[name]}
        assert suffixes == ({".csv", ".md", ".tex"} if name == "u90"
                            else {".png", ".pdf", ".csv"})
        for p in made.written[name]:
            assert p.parent == made.out and p.exists() and p.stat().st_size > 0
    png, pdf = made.out / "noise_curves.png", made.out / "noise_curves.pdf"
    assert png.read_bytes()[:4] == b"\x89PNG" and pdf.read_bytes()[:5] == b"%PDF-"
    assert len(made.paths) == 3 * len(NAMES)
    assert sorted(p.name for p in made.out.iterdir()) == sorted(p.name for p in made.paths)
    assert made.lines()[0].startswith("wrote noise_curves: noise_curves.png")


def test_u90_table_is_the_laws_u90(made, fits):
    u90 = pd.read_csv(made.out / "u90.csv")
    assert len(u90) == 12
    for _, r in u90.iterrows():
        f = noise_row(fits, r)
        expected = float(laws.depth_for_fraction(0.9, f["u_bar"], f["I_max"]))
        assert r["u90"] == pytest.approx(expected, rel=1e-9)
        assert r["u90_lo"] < r["u90"] < r["u90_hi"]
        assert r["I_max"] == pytest.approx(f["I_max"], rel=1e-9)
    # the interval is the delta method of laws.analysis.fraction_depth on the same fit
    first = u90.iloc[0]
    e = fraction_depth(laws.fit_noise_law(*_curve(first)), 0.9)
    assert first["u90_err"] == pytest.approx(e.err, rel=1e-6)
    assert (first["u90_lo"], first["u90_hi"]) == pytest.approx((e.low, e.high), rel=1e-6)
    annotated = pd.read_csv(made.out / "annotated_curve.csv")   # pca, largest N, first panel
    assert set(annotated["model"]) == {"pca"} and set(annotated["n_cells"]) == {8000}
    assert annotated["u90"].iloc[0] == pytest.approx(
        u90.loc[(u90["model"] == "pca") & (u90["n_cells"] == 8000), "u90"].iloc[0])


def _curve(r):
    t = results_table()
    g = t[(t["signal"] == r["signal"]) & (t["model"] == r["model"])
          & (t["n_cells"] == r["n_cells"])]
    return g["umis_per_cell"].to_numpy(), g["mi"].to_numpy()


def test_markdown_and_latex_tables(made):
    md = (made.out / "u90.md").read_text().splitlines()
    rows = [line for line in md if line.startswith("|")]
    assert len(rows) == 2 + 12
    assert all(line.count("|") == rows[0].count("|") for line in rows)
    assert "pca" in md[2] and any("scVI_2" in line for line in rows)
    tex = (made.out / "u90.tex").read_text()
    assert "\\begin{tabular}" in tex and "\\end{tabular}" in tex
    assert "scVI\\_2" in tex and "scVI_2" not in tex and "pca" in tex
    body = tex.split("\\midrule")[1].split("\\bottomrule")[0].strip().splitlines()
    assert len(body) == 12 and all(line.endswith("\\\\") for line in body)
    assert all(line.count(" & ") == 7 for line in body)


def test_curve_tables_hold_the_fits(made, fits, table):
    curves = pd.read_csv(made.out / "noise_curves.csv")
    for _, r in curves.drop_duplicates(["signal", "model", "n_cells"]).iterrows():
        f = noise_row(fits, r)
        assert r["u_bar"] == pytest.approx(f["u_bar"], rel=1e-9)
        assert r["u90"] == pytest.approx(f["u90"], rel=1e-9)
    data = curves[curves["kind"] == "data"]
    assert len(data) == 2 * 2 * 3 * 6 and (data["n_seeds"] == 2).all()
    fit = curves[curves["kind"] == "fit"]
    assert (fit["mi_lo"] <= fit["mi"] + 1e-12).all() and (fit["mi"] <= fit["mi_hi"] + 1e-12).all()
    r2 = pd.read_csv(made.out / "r2.csv")
    for _, r in r2.iterrows():
        assert r["r2"] == pytest.approx(noise_row(fits, r)["r2"], rel=1e-9)
    params = pd.read_csv(made.out / "parameters.csv")
    assert (params["u_bar_1s_lo"] < params["u_bar"]).all()
    assert np.allclose(params["I_max_1s_hi"] - params["I_max"], params["I_max_err"])


def test_collapse_tables(made):
    c = pd.read_csv(made.out / "collapse.csv")
    a = 2.0 ** (-2 * c["I_max"])
    assert np.allclose(c["z"], (c["umis_per_cell"] / c["u_bar"] + a) / (1 - a))
    assert np.allclose(c["universal"], -0.5 * np.log2(1 + 1 / c["z"]))
    assert np.allclose(c["I_gap"], c["mi"] - c["I_max"])
    assert c["collapse_rms"].iloc[0] < 0.05
    cells = pd.read_csv(made.out / "cell_collapse.csv")
    assert np.allclose(cells["x_scaled"], (cells["n_cells"] / cells["N0"]) ** cells["s"])
    assert np.allclose(cells["I_gap"], cells["I_inf"] - cells["mi"])


def test_scale_up_from_the_joint_fit(made, table):
    t = pd.read_csv(made.out / "scale_up.csv")
    assert np.allclose(t["advantage"], t["gain_cells"] - t["gain_umis"])
    one = t[(t["signal"] == "cell_type") & (t["model"] == "pca")]
    g = table[(table["signal"] == "cell_type") & (table["model"] == "pca")]
    fit = laws.fit_joint_law(g["n_cells"], g["umis_per_cell"], g["mi"])
    assert one["u_bar"].iloc[0] == pytest.approx(fit.u_bar, rel=1e-6)
    r = one.iloc[0]
    assert r["gain_cells"] == pytest.approx(
        float(fit.predict(10 * r["n_cells"], r["umis_per_cell"]) - r["mi"]), rel=1e-6)


def test_ratios_propagate_both_fits(made, fits, table):
    t = pd.read_csv(made.out / "ratios.csv")
    assert set(t["model"]) == {"scVI_2"} and set(t["reference"]) == {"pca"}
    assert len(t) == 2 * 3 * 2
    assert np.allclose(t["ratio"], t["value"] / t["reference_value"])
    assert ((t["ratio_1s_lo"] < t["ratio"]) & (t["ratio"] < t["ratio_1s_hi"])).all()
    r = t[(t["param"] == "I_max")].iloc[0]
    rows = [dict(r, model=m) for m in ("pca", "scVI_2")]
    a, b = (laws.fit_noise_law(*_curve(x)) for x in rows)
    c = ratio(a, b, "I_max", level=0.6827)
    assert r["ratio_1s_hi"] == pytest.approx(c.high, rel=1e-6)
    rel = math.hypot(a.I_max_err / a.I_max, b.I_max_err / b.I_max)
    assert math.log(c.high / c.estimate) == pytest.approx(rel, rel=1e-3)


def test_figures_a_table_cannot_support_are_skipped(tmp_path):
    small = results_table(models=("pca",), signals=("cell_type",), sizes=(2000,))
    done = figures(small, tmp_path, formats=("png",), dpi=40)
    assert set(done.skipped) == {"cell_curves", "cell_collapse", "scale_up", "ratios"}
    assert "three or more training sizes" in done.skipped["cell_curves"]
    assert "only one model" in done.skipped["ratios"]
    assert not any((tmp_path / f"{n}.png").exists() for n in done.skipped)
    assert (tmp_path / "noise_curves.png").exists() and not (tmp_path / "r2.pdf").exists()
    assert any(line.startswith("skipped ratios: only one model") for line in done.lines())


def test_options(table, fits, tmp_path):
    done = figures(table, tmp_path, fits=fits, formats=("png",), dpi=40,
                   only=["annotated_curve"], annotate={"model": "scVI_2", "n_cells": 500})
    c = pd.read_csv(tmp_path / "annotated_curve.csv")
    assert list(done.written) == ["annotated_curve"]
    assert set(c["model"]) == {"scVI_2"} and set(c["n_cells"]) == {500}
    with pytest.raises(ValueError, match="formats"):
        figures(table, tmp_path, fits=fits, formats=("jpg",))
    with pytest.raises(ValueError, match="unknown figure"):
        figures(table, tmp_path, fits=fits, only=["nope"])
    with pytest.raises(ValueError, match="reference 'umap' is not a model"):
        figures(table, tmp_path, fits=fits, only=["ratios"], reference="umap")


def test_cli(table, fits, tmp_path, capsys):
    table.to_csv(tmp_path / "results.csv", index=False)
    fits.to_csv(tmp_path / "fits.csv", index=False)
    assert main(["figures", str(tmp_path / "results.csv"), "--out", str(tmp_path / "f"),
                 "--fits", str(tmp_path / "fits.csv"), "--format", "png", "--dpi", "40",
                 "--only", "u90", "ratios", "--reference", "scVI_2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["wrote u90: u90.csv, u90.md, u90.tex",
                   "wrote ratios: ratios.png, ratios.csv"]
    assert set(pd.read_csv(tmp_path / "f" / "ratios.csv")["model"]) == {"pca"}


@pytest.mark.parametrize("content, message", [
    (None, "results not found"),
    ("dataset,signal,model\nsim,a,pca\n", "not a results table"),
    ("dataset,signal,model,n_cells,seed,umis_per_cell,mi\nsim,a,pca,10,0,5,0.1\n",
     "lacks column(s) ['fraction']"),
    ("dataset,signal,model,n_cells,fraction,seed,umis_per_cell,mi\n", "table is empty"),
])
def test_cli_errors(tmp_path, capsys, content, message):
    path = tmp_path / "results.csv"
    if content is not None:
        path.write_text(content)
    assert main(["figures", str(path), "--out", str(tmp_path / "f")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("noisescale figures: error:") and message in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "f").exists()


def test_cli_missing_fits(table, tmp_path, capsys):
    table.head(5).to_csv(tmp_path / "results.csv", index=False)
    assert main(["figures", str(tmp_path / "results.csv"), "--fits",
                 str(tmp_path / "nofits.csv")]) == 1
    assert "fits table not found" in capsys.readouterr().err
