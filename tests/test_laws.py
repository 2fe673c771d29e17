"""Scaling laws: exact forms, fits with honest uncertainty, flags, analysis and plans."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from noisescale import laws, report

U = np.geomspace(50, 20000, 8)


# ---------------------------------------------------------------------------- forms


def test_parametrizations_agree_and_convert_both_ways():
    rng = np.random.default_rng(0)
    for _ in range(50):
        u_bar, I_max = 10 ** rng.uniform(0, 5), rng.uniform(0.001, 12)
        u = np.geomspace(0.1, 1e7, 30)
        direct = I_max - 0.5 * np.log2((1 + u / u_bar) / (u / u_bar + 2 ** (-2 * I_max)))
        np.testing.assert_allclose(laws.noise_law(u, u_bar, I_max), direct, rtol=1e-9,
                                   atol=1e-12)
        A, B = laws.to_ab(u_bar, I_max)
        np.testing.assert_allclose(laws.noise_law_ab(u, A, B), direct, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(laws.from_ab(A, B), (u_bar, I_max), rtol=1e-12)
    with pytest.raises(ValueError, match="A > 0 and B >= A"):
        laws.from_ab(1.0, 0.5)


def test_law_limits_and_extremes():
    assert laws.noise_law(0.0, 300, 2.0) == 0.0
    assert laws.noise_law(1e15, 300, 2.0) == pytest.approx(2.0, abs=1e-9)
    # at u = u_bar the information is I_max - 1/2 log2(2 / (1 + 2^-2I))
    assert laws.noise_law(300, 300, 2.0) == pytest.approx(2.0 - 0.5 * np.log2(2 / (1 + 2**-4)))
    big = laws.noise_law(U, 300, 40.0)
    assert np.all(np.isfinite(big)) and np.all(np.diff(big) > 0) and big.max() < 40
    small = laws.noise_law(U, 300, 1e-3)
    assert np.all(small > 0) and small.max() < 1e-3


def test_targets_invert_the_laws_exactly():
    for u_bar, I_max in [(300, 2.0), (1000, 0.05), (200, 6.0)]:
        bits = np.array([0.1, 0.5, 0.9, 0.99]) * I_max
        u = laws.depth_for_bits(bits, u_bar, I_max)
        np.testing.assert_allclose(laws.noise_law(u, u_bar, I_max), bits, rtol=1e-10)
        u90 = laws.depth_for_fraction(0.9, u_bar, I_max)
        assert laws.noise_law(u90, u_bar, I_max) == pytest.approx(0.9 * I_max, rel=1e-10)
    assert laws.depth_for_bits(2.0, 300, 2.0) == np.inf
    assert laws.depth_for_bits(0.0, 300, 2.0) == 0.0
    n = laws.cells_for_bits(np.array([0.5, 1.0, 1.9]), 50.0, 0.6, 2.0)
    np.testing.assert_allclose(laws.cell_law(n, 50.0, 0.6, 2.0), [0.5, 1.0, 1.9], rtol=1e-10)
    assert laws.cells_for_fraction(0.9, 50.0, 0.6, 2.0) == pytest.approx(
        laws.cells_for_bits(1.8, 50.0, 0.6, 2.0))
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        laws.depth_for_fraction(1.0, 300, 2.0)


def test_collapse_coordinate_is_exactly_universal():
    for u_bar, I_max in [(30, 0.1), (300, 2.0), (5000, 7.0)]:
        x = np.geomspace(1e-3, 1e3, 25)
        v = laws.collapse_value(laws.noise_law(x * u_bar, u_bar, I_max), I_max)
        np.testing.assert_allclose(v, x / (1 + x), rtol=1e-9)


# ---------------------------------------------------------------------------- fits


@pytest.mark.parametrize("u_bar, I_max, u", [
    (300, 2.0, U),                                 # saturating grid
    (1000, 0.05, U),                               # tiny capacity
    (200, 6.0, np.geomspace(20, 20000, 8)),        # large capacity
    (5000, 3.0, np.geomspace(50, 5000, 8)),        # grid that stops at u_bar
])
def test_intervals_cover_true_parameters(u_bar, I_max, u):
    """95 % intervals hold the truth in ~95 % of 200 seeded noisy replicates."""
    hits_u = hits_i = 0
    reps = 200
    for r in range(reps):
        rng = np.random.default_rng(r)
        y = laws.noise_law(u, u_bar, I_max) + rng.normal(0, 0.03 * I_max, u.size)
        fit = laws.fit_noise_law(u, y)
        hits_u += fit.u_bar_ci[0] <= u_bar <= fit.u_bar_ci[1]
        hits_i += fit.I_max_ci[0] <= I_max <= fit.I_max_ci[1]
    # binomial sd at 95 % over 200 draws is 1.5 %: accept 88-99.5 %
    assert 0.88 <= hits_u / reps <= 0.995
    assert 0.88 <= hits_i / reps <= 0.995


def test_noise_free_fit_is_exact_and_result_fields():
    y = laws.noise_law(U, 700.0, 2.5)
    fit = laws.fit_noise_law(U, y)
    assert fit.u_bar == pytest.approx(700.0, rel=1e-6)
    assert fit.I_max == pytest.approx(2.5, rel=1e-6)
    assert fit.r2 == pytest.approx(1.0) and fit.reliable and fit.flags == []
    assert fit.u_bar_err >= 0 and fit.I_max_err >= 0 and fit.dof == 6
    assert fit.depth_for_fraction(0.9) == pytest.approx(laws.depth_for_fraction(0.9, 700, 2.5),
                                                         rel=1e-5)
    row = fit.as_dict()
    for key in ("u_bar", "u_bar_lo", "u_bar_hi", "I_max_err", "u90", "r2", "aic", "flags"):
        assert key in row
    np.testing.assert_allclose(fit.predict(U), y, atol=1e-9)


def test_start_independence_far_from_the_data():
    """Curves whose u_bar lies far below or above the sampled depths are still found."""
    for u_bar in (2.0, 3e5):
        y = laws.noise_law(U, u_bar, 1.5) + np.random.default_rng(1).normal(0, 1e-4, U.size)
        fit = laws.fit_noise_law(U, y)
        assert fit.u_bar == pytest.approx(u_bar, rel=0.05)


def test_flags_for_unreliable_fits():
    unsat = laws.fit_noise_law(np.geomspace(10, 500, 6),
                               laws.noise_law(np.geomspace(10, 500, 6), 5e4, 3.0) * 1.01)
    assert "not_saturating" in unsat.flags and not unsat.reliable
    flat = laws.fit_noise_law(U, np.full(U.size, 0.7))
    assert "flat" in flat.flags and not flat.reliable
    few = laws.fit_noise_law(U[:3], laws.noise_law(U[:3], 300, 2.0))
    assert "few_points" in few.flags


def test_fits_that_cannot_identify_the_law_are_unreliable():
    """Issue 16: six replicates at one depth gave a tight u_bar and reliable=True."""
    rng = np.random.default_rng(1)
    u = np.full(6, 200.0)
    single = laws.fit_noise_law(u, laws.noise_law(u, 300, 2.0) + rng.normal(0, 0.02, 6))
    assert {"few_levels", "unbracketed"} <= set(single.flags) and not single.reliable
    # replicate depths of one fraction differ slightly (test sets): still one level
    jitter = 1000 * (1 + rng.normal(0, 0.01, 6))
    one = laws.fit_noise_law(jitter, laws.noise_law(jitter, 300, 2.0) + rng.normal(0, 0.02, 6))
    assert "few_levels" in one.flags and not one.reliable
    two = np.repeat([100.0, 5000.0], 4)
    pair = laws.fit_noise_law(two, laws.noise_law(two, 300, 2.0) + rng.normal(0, 0.02, 8))
    assert "few_levels" in pair.flags and not pair.reliable
    three = np.repeat([100.0, 1000.0, 10000.0], 3)
    ok = laws.fit_noise_law(three, laws.noise_law(three, 300, 2.0) + rng.normal(0, 0.02, 9))
    assert ok.flags == [] and ok.reliable
    cells = np.repeat([500.0, 5000.0], 4)
    cell_pair = laws.fit_cell_law(cells, laws.cell_law(cells, 40, 0.5, 2.0)
                                  + rng.normal(0, 0.01, 8))
    assert "few_levels" in cell_pair.flags and not cell_pair.reliable
    assert laws.fit.n_levels(np.array([100.0, 105.0, 109.0, 111.0, 1000.0])) == 3


def test_u_bar_must_be_bracketed_by_the_depths():
    below = np.geomspace(10, 500, 8)          # every depth below u_bar
    fit = laws.fit_noise_law(below, laws.noise_law(below, 2000, 1.0))
    assert fit.u_bar == pytest.approx(2000, rel=1e-4)
    assert "unbracketed" in fit.flags and not fit.reliable
    above = laws.fit_noise_law(U, laws.noise_law(U, 2.0, 1.5))   # every depth above it
    assert "unbracketed" in above.flags and not above.reliable


def test_flat_curve_has_nan_r2():
    """Issue 16: equal MI values gave R^2 = -2e22 (a rounding-sized total variance)."""
    u = np.geomspace(100, 5000, 6)
    flat = laws.fit_noise_law(u, np.full(6, 0.7))
    assert np.isnan(flat.r2) and "flat" in flat.flags and not flat.reliable
    assert np.isnan(flat.as_dict()["r2"])


def test_poor_fit_is_unreliable():
    """Issue 16: the demo report called a fit with R^2 0.19 reliable."""
    u = np.repeat(U, 4)
    y = laws.noise_law(u, 300, 0.3) + np.random.default_rng(1).normal(0, 0.15, u.size)
    fit = laws.fit_noise_law(u, y)
    assert fit.r2 == pytest.approx(0.19, abs=0.01) and fit.r2 < laws.fit.R2_FLOOR
    assert "poor_fit" in fit.flags and not fit.reliable
    assert set(fit.flags) - {"poor_fit"} <= {"negative_mi"}   # nothing else would catch it


def test_negative_values_nan_rows_and_bad_depths():
    y = laws.noise_law(U, 300, 0.05) + np.array([-0.01, 0, 0, 0, 0, 0, 0, 0])
    fit = laws.fit_noise_law(U, y)
    assert "negative_mi" in fit.flags and fit.n == 8
    y2 = laws.noise_law(U, 300, 2.0)
    y2[[1, 4]] = np.nan
    fit2 = laws.fit_noise_law(U, y2)
    assert fit2.n == 6 and fit2.n_dropped == 2 and "dropped_nan" in fit2.flags
    assert fit2.u_bar == pytest.approx(300, rel=1e-5)
    with pytest.raises(ValueError, match="u must be finite and > 0"):
        laws.fit_noise_law(np.r_[0.0, U[1:]], laws.noise_law(U, 300, 2.0))
    with pytest.raises(ValueError, match="at least 3 points"):
        laws.fit_noise_law(U[:2], [0.1, 0.2])
    with pytest.raises(ValueError, match="at least 3 points"):
        laws.fit_noise_law(U[:4], [np.nan, np.nan, 0.1, 0.2])
    with pytest.raises(ValueError, match="u has 8 values but mi has 3"):
        laws.fit_noise_law(U, [0.1, 0.2, 0.3])
    all_negative = laws.fit_noise_law(U, np.full(U.size, -0.01) + np.linspace(0, 1e-3, 8))
    assert all_negative.I_max == pytest.approx(0.0, abs=1e-6) and not all_negative.reliable


def test_replicate_weights_and_bootstrap():
    rng = np.random.default_rng(3)
    u = np.repeat(U, 4)
    rep = np.tile(np.arange(4), U.size)
    noise_sd = np.where(u < 500, 0.02, 0.2)
    y = laws.noise_law(u, 400, 2.0) + rng.normal(0, 1, u.size) * noise_sd
    weighted = laws.fit_noise_law(u, y, sigma="replicates", bootstrap=150, replicate=rep,
                                  seed=1)
    plain = laws.fit_noise_law(u, y)
    assert weighted.sigma is not None and weighted.sigma.min() < weighted.sigma.max()
    lo, hi = weighted.bootstrap_intervals["u_bar"]
    assert lo < weighted.u_bar < hi
    assert weighted.I_max_ci[0] < 2.0 < weighted.I_max_ci[1]
    assert plain.u_bar_ci[0] < 400 < plain.u_bar_ci[1]
    with pytest.raises(ValueError, match="two MI values at some x"):
        laws.fit_noise_law(U, laws.noise_law(U, 300, 2), sigma="replicates")


def test_cell_law_fit_recovers_parameters():
    n = np.geomspace(100, 1e5, 9)
    y = laws.cell_law(n, 40.0, 0.5, 2.2) + np.random.default_rng(0).normal(0, 0.005, n.size)
    fit = laws.fit_cell_law(n, y)
    assert fit.N0_ci[0] < 40 < fit.N0_ci[1]
    assert fit.s_ci[0] < 0.5 < fit.s_ci[1]
    assert fit.I_inf_ci[0] < 2.2 < fit.I_inf_ci[1]
    with pytest.raises(ValueError, match="at least 4 points"):
        laws.fit_cell_law(n[:3], y[:3])


# ---------------------------------------------------------------------------- analysis


def results_table(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    truth = {"pca": (300.0, 1.5), "vae": (120.0, 2.2), "rp": (900.0, 0.8)}
    rows = []
    for model, (u_bar, I_max) in truth.items():
        for s in range(3):
            for u in U:
                rows.append({"model": model, "seed": s, "umis_per_cell": u,
                             "mi": laws.noise_law(u, u_bar, I_max) + rng.normal(0, 0.02)})
    rows.append({"model": "broken", "seed": 0, "umis_per_cell": 100.0, "mi": 0.2})
    return pd.DataFrame(rows)


def test_fit_table_groups_and_failures():
    df = results_table()
    fits = laws.fit_table(df, by=["model"], sigma="replicates", replicate="seed")
    assert list(fits["model"]) == ["broken", "pca", "rp", "vae"]
    broken = fits.set_index("model").loc["broken"]
    assert broken["flags"] == "failed" and "at least 3 points" in broken["error"]
    assert np.isnan(broken["u_bar"])
    good = fits.set_index("model").loc[["pca", "rp", "vae"]]
    assert good["reliable"].all()
    for model, u_bar in [("pca", 300), ("vae", 120), ("rp", 900)]:
        assert good.loc[model, "u_bar_lo"] < u_bar < good.loc[model, "u_bar_hi"]
    with pytest.raises(KeyError, match="not in the table"):
        laws.fit_table(df, by=["dataset"])
    with pytest.raises(ValueError, match="law must be"):
        laws.fit_table(df, law="joint")


def test_collapse_quality_and_columns():
    df = results_table()
    df = df[df["model"] != "broken"]
    fits = laws.fit_table(df, by="model")
    collapsed, quality = laws.collapse(df, fits, by="model")
    assert {"x_scaled", "I_scaled", "snr_scaled"} <= set(collapsed.columns)
    assert quality < 0.05
    exact = df.assign(mi=[laws.noise_law(u, *{"pca": (300, 1.5), "vae": (120, 2.2),
                                              "rp": (900, 0.8)}[m])
                          for u, m in zip(df["umis_per_cell"], df["model"])])
    _, q_exact = laws.collapse(exact, laws.fit_table(exact, by="model"), by="model")
    assert q_exact < 1e-6


def test_compare_parameters():
    rng = np.random.default_rng(5)
    fits = [laws.fit_noise_law(U, laws.noise_law(U, ub, 2.0) + rng.normal(0, 0.02, U.size))
            for ub in (300, 300, 1200)]
    same = laws.compare(fits[0], fits[1], "u_bar")
    diff = laws.compare(fits[0], fits[2], "u_bar")
    assert same.kind == "ratio" and same.p_value > 0.01 and same.low < 1 < same.high
    assert diff.p_value < 1e-3 and diff.low < 4 < diff.high
    imax = laws.compare(fits[0], fits[2], "I_max")
    assert imax.kind == "difference" and imax.low < 0 < imax.high
    with pytest.raises(ValueError, match="not a parameter"):
        laws.compare(fits[0], fits[1], "N0")


def test_joint_law_fit_and_budget_plan():
    rng = np.random.default_rng(2)
    n, u = np.meshgrid(np.geomspace(200, 50000, 6), np.geomspace(100, 20000, 6))
    n, u = n.ravel(), u.ravel()
    truth = dict(u_bar=500.0, I_max=2.0, N0=30.0, s=0.6)
    y = laws.joint_law(n, u, **truth) + rng.normal(0, 0.01, n.size)
    fit = laws.fit_joint_law(n, u, y)
    for k, v in truth.items():
        lo, hi = fit.intervals[k]
        assert lo < v < hi, k
    budget = 2e8  # reads
    plan = laws.optimize_budget(fit, budget, cost_per_read=1.0, reads_per_umi=4.0, draws=100)
    assert plan.cost == pytest.approx(budget, rel=1e-9)
    # brute force over the same frontier
    grid = np.geomspace(100, 1e8, 20000)
    depth = budget / grid / 4.0
    ok = (depth >= 1) & (depth <= 1e6)
    mi = fit.predict(grid[ok], depth[ok])
    assert plan.predicted_mi >= mi.max() - 1e-6
    assert plan.n_cells_ci[0] <= plan.n_cells <= plan.n_cells_ci[1]
    assert plan.predicted_mi_ci[0] <= plan.predicted_mi <= plan.predicted_mi_ci[1]
    assert {"n_cells", "umis_per_cell", "predicted_mi", "mi_lo", "mi_hi"} <= set(plan.frontier)
    # a fixed cost per cell pushes the plan to fewer, deeper cells
    pricey = laws.optimize_budget(fit, budget, cost_per_cell=2e4, reads_per_umi=4.0, draws=20)
    assert pricey.n_cells < plan.n_cells and pricey.umis_per_cell > plan.umis_per_cell
    with pytest.raises(ValueError, match="joint-law fit"):
        laws.optimize_budget(laws.fit_noise_law(U, laws.noise_law(U, 300, 2)), budget)
    with pytest.raises(ValueError, match="budget must be a positive number"):
        laws.optimize_budget(fit, -1.0)
    with pytest.raises(ValueError, match="no design fits"):
        laws.optimize_budget(fit, 10.0, cost_per_cell=1.0)


# ---------------------------------------------------------------------------- plots


def png_bytes(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=60)
    return buf.getvalue()


def test_plots_render_to_png():
    df = results_table()
    df = df[df["model"] != "broken"]
    fits = laws.fit_table(df, by="model")
    collapsed, quality = laws.collapse(df, fits, by="model")
    cells = pd.DataFrame({"n_cells": np.repeat(np.geomspace(100, 1e5, 7), 2)})
    cells["mi"] = laws.cell_law(cells["n_cells"], 40, 0.5, 2.0) + 0.01 * np.tile([1, -1], 7)
    fit_objs = {m: laws.fit_noise_law(g["umis_per_cell"], g["mi"]) for m, g in df.groupby("model")}
    figures = [
        report.scaling_curves(df, by="model", fits=fit_objs, title="demo"),
        report.collapse_plot(collapsed, by="model", quality=quality),
        report.parameter_comparison(fits, label="model"),
        report.cell_curves(cells),
        report.residuals(fit_objs),
    ]
    for fig in figures:
        data = png_bytes(fig)
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000


def _noisy_results(with_se=True):
    from noisescale.laws import forms

    rng = np.random.default_rng(0)
    u = np.geomspace(30, 30_000, 9)
    rows = []
    for seed in range(3):
        for q, ui in enumerate(u):
            se = 0.02 + 0.2 / np.sqrt(ui / 30)  # shallow depths are noisier
            mi = float(forms.noise_law(ui, 300.0, 3.0)) + rng.normal(0, se)
            rows.append(dict(dataset="d", signal="s", model="m", estimator="ksg", n_cells=100,
                             fraction=1.0 / (q + 1), seed=seed, umis_per_cell=ui, mi=mi,
                             **({"mi_se": se} if with_se else {})))
    return pd.DataFrame(rows)


def test_fits_weighted_by_the_estimators_standard_errors():
    from noisescale.laws import fit_results

    fits = fit_results(_noisy_results(), weights="estimate")
    row = fits[fits["law"] == "noise"].iloc[0]
    assert row["weights"] == "estimate"
    assert row["u_bar_lo"] <= 300 <= row["u_bar_hi"] or abs(row["u_bar"] / 300 - 1) < 0.3
    assert abs(row["I_max"] - 3.0) < 0.2
    with pytest.raises(ValueError, match="mi_se"):
        fit_results(_noisy_results(with_se=False), weights="estimate")
    with pytest.raises(ValueError, match="weights must be one of"):
        fit_results(_noisy_results(), weights="se")


def test_estimate_weights_floor_a_zero_se_within_its_own_curve():
    # A zero se (e.g. an exact 0 of a constant embedding) is floored per group of `by`: adding
    # a signal measured 100x less precisely must not change another signal's fit.
    from noisescale.laws import fit_results

    precise = _noisy_results()
    precise.loc[precise.index[0], "mi_se"] = 0.0
    coarse = _noisy_results().assign(signal="coarse")
    coarse["mi_se"] *= 100.0
    alone = fit_results(precise, by=("signal",), weights="estimate")
    both = fit_results(pd.concat([precise, coarse], ignore_index=True), by=("signal",),
                       weights="estimate")
    a = alone[alone["law"] == "noise"].iloc[0]
    b = both[(both["law"] == "noise") & (both["signal"] == "s")].iloc[0]
    assert a["u_bar"] == pytest.approx(b["u_bar"], rel=1e-9)
    assert a["I_max"] == pytest.approx(b["I_max"], rel=1e-9)
    assert a["u_bar_err"] == pytest.approx(b["u_bar_err"], rel=1e-9)
