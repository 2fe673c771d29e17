"""InfoNCE and MINE (NWJ, DV): lower bounds near the truth on Gaussians, ≈ 0 when independent,
the InfoNCE cap, held-out re-evaluation (identity = estimate, shuffled ≈ 0), reproducible, clear
errors, inputs untouched, constant input exactly 0. Small networks, few epochs: seconds each."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from noisescale.mi import neural  # noqa: E402
from noisescale.mi.neural import fit_infonce, fit_mine, infonce, mine  # noqa: E402
from noisescale.mi.result import HeldOutFit  # noqa: E402

FAST = {"epochs": 50, "patience": 10, "lr": 3e-3}
FITS = {
    "infonce": lambda x, y, **kw: fit_infonce(x, y, **kw),
    "nwj": lambda x, y, **kw: fit_mine(x, y, bound="nwj", **kw),
    "dv": lambda x, y, **kw: fit_mine(x, y, bound="dv", **kw),
}


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def gaussian(n, rho, dim=1, seed=0):
    """x, y (n, dim) standard normal with corr(x_i, y_i) = rho; MI = -dim/2 log2(1 - rho²)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim))
    y = rho * x + math.sqrt(1 - rho**2) * rng.standard_normal((n, dim))
    return x, y, -0.5 * dim * math.log2(1 - rho**2)


@pytest.mark.parametrize("method", list(FITS))
def test_gaussian_known_mi(method):
    """Truth 1 bit (ρ² = 0.75), 1,000 held-out pairs; measured 0.92 (InfoNCE), 0.88 (NWJ),
    0.87 (DV). A lower bound: allowed truth − 0.4 .. truth + 0.15."""
    x, y, truth = gaussian(2000, math.sqrt(0.75))
    fit = FITS[method](x, y, seed=0, **FAST)
    assert isinstance(fit, HeldOutFit) and fit.n_eval == 1000
    assert truth - 0.4 <= fit.mi <= truth + 0.15
    d = fit.details
    assert fit.mi >= d["raw_bits"] and d["scale"] > 0  # calibrated: at least the raw bound
    hist = d["history"]
    assert hist["epochs_run"] == len(hist["val_loss"]) == len(hist["train_loss"])
    assert hist["val_loss"][hist["best_epoch"]] == min(hist["val_loss"])
    assert hist["val_loss"][hist["best_epoch"]] < hist["val_loss"][0]  # it learned
    assert d["test_index"].shape == (1000,) and d["seconds"] > 0
    if method == "infonce":
        assert d["cap_bits"] == math.log2(1000) and fit.mi <= d["cap_bits"]
    else:
        assert d["bound"] == method and d["marginal_pairs"] == 16 * 1000


@pytest.mark.parametrize("method", list(FITS))
def test_independent_near_zero(method):
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((2000, 3)), rng.standard_normal((2000, 2))
    fit = FITS[method](x, y, seed=0, **FAST)
    assert 0.0 <= fit.mi < 0.1
    assert abs(fit.details["raw_bits"]) < 0.1


@pytest.mark.parametrize("fn", [infonce, mine])
def test_monotonic_in_correlation(fn):
    values = [fn(*gaussian(2000, rho, seed=2)[:2], seed=0, **FAST) for rho in (0.3, 0.6, 0.9)]
    assert values[0] < values[1] < values[2], values


def test_infonce_never_above_its_cap():
    """MI 6.1 bits, 20 held-out pairs: the bound is capped at log2(20) = 4.32 bits."""
    x, y, truth = gaussian(1000, 0.9999, seed=3)
    fit = fit_infonce(x, y, seed=0, test_fraction=0.02, **FAST)
    assert fit.n_eval == 20 and fit.details["cap_bits"] == math.log2(20)
    assert fit.details["raw_bits"] <= fit.mi <= math.log2(20) + 1e-12
    rows = np.arange(8)
    assert fit.evaluate(rows, rows) <= 3.0 + 1e-12
    assert fit.mi > 2.0  # the critic did learn; only the cap holds it down


def test_evaluation_blocks_and_cap():
    """Held-out sets beyond 4096 pairs are dealt into equal strided blocks."""
    blocks = neural._blocks(10001)
    assert [b.size for b in blocks] == [3334, 3334, 3333]
    assert np.array_equal(np.sort(np.concatenate(blocks)), np.arange(10001))
    assert neural._cap_bits(4096) == 12.0
    assert neural._cap_bits(5000) == math.log2(2500)


@pytest.mark.parametrize("method", list(FITS))
def test_evaluate_identity_subset_and_null(method):
    x, y, _ = gaussian(2000, math.sqrt(0.75), seed=4)
    fit = FITS[method](x, y, seed=0, **FAST)
    rows = np.arange(fit.n_eval)
    assert fit.evaluate(rows, rows) == fit.mi  # bit for bit
    half = np.sort(np.random.default_rng(0).permutation(fit.n_eval)[:500])
    assert 0.5 < fit.evaluate(half, half) < 1.2
    for s in range(3):
        perm = np.random.default_rng(s).permutation(fit.n_eval)
        assert abs(fit.evaluate(rows, perm)) < 0.15
    with pytest.raises(ValueError, match="same length"):
        fit.evaluate(rows, rows[:-1])
    with pytest.raises(ValueError, match="outside"):
        fit.evaluate(rows + 1, rows)
    with pytest.raises(TypeError, match="integer"):
        fit.evaluate(rows.astype(float), rows)


def test_raw_bound_null_is_strongly_negative():
    """Why the held-out value is calibrated: a sharp critic's raw bound on a shuffled pairing
    is far below 0 (≈ −KL(q‖p), −3.3 bits here), useless as a null."""
    x, y, _ = gaussian(2000, math.sqrt(0.75), seed=4)
    fit = fit_infonce(x, y, seed=0, calibrate=False, **FAST)
    rows = np.arange(fit.n_eval)
    assert fit.mi == fit.details["raw_bits"] == fit.evaluate(rows, rows)
    assert fit.details["scale"] == 1.0
    assert fit.evaluate(rows, np.random.default_rng(0).permutation(fit.n_eval)) < -1.0


def test_rescaling_is_the_best_scale():
    """The Newton maximization over a >= 0 finds a dense grid's best, and is 0 at worst."""
    rng = np.random.default_rng(5)
    for shift in (2.0, 0.0, -2.0):  # positives above, like, below the negatives
        s = torch.from_numpy(rng.standard_normal((50, 50))) + shift * torch.eye(50)
        value, a = neural._maximize(lambda a, s=s: neural._infonce_terms([s], a))
        grid = max(neural._infonce_terms([s], g)[0] for g in np.linspace(0, 6, 1201))
        assert value >= 0.0 and a >= 0.0
        assert 0.0 <= value - max(grid, 0.0) < 1e-4  # Newton's optimum beats the grid's
        joint, marg = s.diagonal(), s[~torch.eye(50, dtype=torch.bool)]
        value, a = neural._maximize(lambda a, j=joint, q=marg: neural._dv_terms(j, q, a))
        grid = max(neural._dv_terms(joint, marg, g)[0] for g in np.linspace(0, 6, 1201))
        assert 0.0 <= value - max(grid, 0.0) < 1e-4  # Newton's optimum beats the grid's


def test_dv_training_loss_is_the_dv_bound():
    """MINE's moving average changes the DV gradient, not the value the loop records."""
    net = neural._critic("concat", 2, 1, 8, 16)
    g = torch.Generator().manual_seed(0)
    tx, ty = torch.randn(64, 2, generator=g), torch.randn(64, 1, generator=g)
    loss = neural._mine_loss(net, tx, ty, "dv")
    b = torch.arange(64)
    for _ in range(3):  # the moving average moves; the value stays the bound
        value = loss(b, 0)
        joint = neural._pair_scores(net, tx, ty)
        marg = neural._pair_scores(net, tx, ty.roll(1, dims=0))
        dv = joint.mean() - (torch.logsumexp(marg, 0) - math.log(64))
        assert float(value.detach()) == pytest.approx(-float(dv.detach()), rel=1e-6)


def test_other_critics_and_one_hot_labels():
    x, y, truth = gaussian(600, math.sqrt(0.75), seed=6)
    kw = {"epochs": 30, "patience": 10, "lr": 3e-3, "batch_size": 128, "hidden": 32}
    a = fit_infonce(x, y, critic="concat", seed=0, **kw)
    b = fit_mine(x, y, critic="separable", embed_dim=8, seed=0, **kw)
    for fit in (a, b):
        assert 0.3 < fit.mi < truth + 0.15
        rows = np.arange(fit.n_eval)
        assert fit.evaluate(rows, rows) == fit.mi
    labels = np.random.default_rng(7).integers(0, 2, 600)  # 1 bit of label, well separated
    xl = labels[:, None] * 4.0 + np.random.default_rng(8).standard_normal((600, 2))
    onehot = np.eye(2)[labels]
    assert 0.6 < mine(xl, onehot, seed=0, **kw) <= 1.0 + 0.15


@pytest.mark.parametrize("method", list(FITS))
def test_reproducible_for_a_seed(method):
    x, y, _ = gaussian(800, 0.8, dim=2, seed=9)
    kw = {"epochs": 15, "patience": 5}
    a, b = FITS[method](x, y, seed=3, **kw), FITS[method](x, y, seed=3, **kw)
    assert a.mi == b.mi
    assert a.details["history"]["val_loss"] == b.details["history"]["val_loss"]
    assert np.array_equal(a.details["test_index"], b.details["test_index"])
    perm = np.random.default_rng(0).permutation(a.n_eval)
    rows = np.arange(a.n_eval)
    assert a.evaluate(rows, perm) == b.evaluate(rows, perm)
    c = FITS[method](x, y, seed=4, **kw)
    assert c.mi != a.mi


def test_inputs_and_global_random_state_untouched():
    x, y, _ = gaussian(300, 0.8, dim=2, seed=10)
    x32 = x.astype(np.float32)
    x0, y0, x320 = x.copy(), y.copy(), x32.copy()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    np_state = np.random.get_state()[1].copy()
    fit_infonce(x32, y, seed=0, epochs=3)
    mine(x, y, seed=0, epochs=3, bound="dv")
    assert torch.equal(torch.rand(3), expected)
    assert np.array_equal(np.random.get_state()[1], np_state)
    assert np.array_equal(x, x0) and np.array_equal(y, y0) and np.array_equal(x32, x320)


def test_bad_input():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((100, 3))
    with pytest.raises(ValueError, match="same number of samples"):
        infonce(x, x[:90])
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        mine(x, bad)
    with pytest.raises(ValueError, match="too few"):
        infonce(x[:1], x[:1])
    with pytest.raises(ValueError, match="too few"):
        mine(x[:4], x[:4])
    with pytest.raises(ValueError, match="critic"):
        infonce(x, x, critic="bilinear")
    with pytest.raises(ValueError, match="bound"):
        mine(x, x, bound="js")
    for name, value in (("epochs", 0), ("patience", -1), ("batch_size", 0), ("embed_dim", 0),
                        ("hidden", 0), ("epochs", 2.5)):
        with pytest.raises(ValueError, match=name):
            infonce(x, x, **{name: value})
    with pytest.raises(ValueError, match="lr"):
        mine(x, x, lr=0.0)
    with pytest.raises(ValueError, match="test_fraction"):
        mine(x, x, test_fraction=1.0)
    with pytest.raises(TypeError, match="seed"):
        infonce(x, x, seed=1.5)
    with pytest.raises(ValueError, match="seed"):
        mine(x, x, seed=-1)
    with pytest.raises(ValueError, match="device"):
        infonce(x, x, device="tpu")
    with pytest.raises(TypeError, match="calibrate"):
        infonce(x, x, calibrate="yes")
    with pytest.raises(TypeError, match="numeric"):
        mine(np.array([["a"]] * 100), x)


@pytest.mark.parametrize("fit_fn", [fit_infonce, fit_mine])
def test_constant_input_is_exactly_zero(fit_fn):
    rng = np.random.default_rng(12)
    x = rng.standard_normal((200, 3))
    const = np.full((200, 2), 7.0)
    for a, b in ((x, const), (const, x)):
        fit = fit_fn(a, b, seed=0)
        assert fit.mi == 0.0 and fit.n_eval == 100
        rows = np.arange(100)
        assert fit.evaluate(rows, rows[::-1].copy()) == 0.0
        hist = fit.details["history"]
        assert hist["stopped"] == "constant" and hist["epochs_run"] == 0
    assert infonce(x, np.zeros(200)) == 0.0 and mine(np.ones(200), x) == 0.0
