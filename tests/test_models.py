"""Representation models: shapes, determinism, save/load, real learning, likelihoods, errors."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from scipy import stats

import noisescale as ns
from noisescale import models
from noisescale.models.transformer import CLS, N_SPECIAL, PAD, rank_tokens
from noisescale.models.vae import log_nb, log_zinb

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
PAUL = DATA / "paul2015_tradeseq.h5ad"

# Small, fast settings: the tests check behaviour, not quality (except the paul2015 test).
FAST = {
    "pca": {"n_dims": 8, "n_top_genes": 300},
    "random_projection": {"n_dims": 8, "n_top_genes": 300},
    "vae": {"n_dims": 6, "n_top_genes": 300, "epochs": 8, "n_hidden": 32},
    "transformer": {"n_top_genes": 300, "max_len": 24, "width": 16, "n_heads": 2, "epochs": 2},
}


def synthetic_counts(n_cells=600, n_genes=400, n_types=4, seed=0):
    """Negative-binomial UMI counts from cell types with distinct expression programs."""
    rng = np.random.default_rng(seed)
    base = rng.lognormal(-1.0, 1.5, size=n_genes)
    programs = base * rng.lognormal(0.0, 1.0, size=(n_types, n_genes))
    types = rng.integers(0, n_types, size=n_cells)
    depth = rng.lognormal(np.log(1500), 0.3, size=n_cells)
    p = programs[types] / programs[types].sum(axis=1, keepdims=True)
    mean = depth[:, None] * p
    counts = rng.negative_binomial(5, 5 / (5 + mean))
    return sp.csr_matrix(counts.astype(np.float32)), types


@pytest.fixture(scope="module")
def data():
    return synthetic_counts()


@pytest.mark.parametrize("name", sorted(FAST))
def test_fit_embed_shapes_determinism_and_save_load(name, data, tmp_path):
    X, _ = data
    X0 = X.copy()
    train, test = X[:450], X[450:]
    m = models.get(name, **FAST[name]).fit(train, seed=3)
    emb = m.embed(test)
    assert emb.shape == (150, m.n_dims) and emb.dtype == np.float32
    assert np.isfinite(emb).all() and emb.std() > 0
    again = models.get(name, **FAST[name]).fit(train, seed=3).embed(test)
    assert np.array_equal(emb, again)  # same seed, same CPU: the same bits
    m.save(tmp_path / "model.pt")
    loaded = models.load(tmp_path / "model.pt")
    assert type(loaded) is type(m) and loaded.params() == m.params()
    assert np.array_equal(loaded.embed(test), emb)
    assert (X != X0).nnz == 0  # the input is untouched


def test_zero_inflated_vae(data):
    X, _ = data
    m = models.get("vae", **FAST["vae"], likelihood="zinb").fit(X[:400], seed=0)
    assert np.isfinite(m.embed(X[400:])).all()
    assert np.isfinite(m.validation_elbo(X[400:]))
    hist = m.history
    assert hist["val_loss"][hist["best_epoch"]] < hist["val_loss"][0]


def test_seed_changes_learned_models(data):
    X, _ = data
    a = models.get("vae", **FAST["vae"]).fit(X, seed=0).embed(X[:50])
    b = models.get("vae", **FAST["vae"]).fit(X, seed=1).embed(X[:50])
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("name", sorted(FAST))
def test_every_model_takes_any_64_bit_seed(name, data):
    """Seeds up to 2**64 - 1 are valid everywhere, also where scanpy/scikit-learn take only
    32-bit seeds; a large seed is not folded onto a small one."""
    X, _ = data
    big = models.get(name, **FAST[name]).fit(X[:200], seed=2**64 - 2).embed(X[:20])
    assert np.isfinite(big).all()
    if name != "pca":  # ARPACK's start vector does not change the components
        small = models.get(name, **FAST[name]).fit(X[:200], seed=int((2**64 - 2) % 2**32))
        assert not np.array_equal(big, small.embed(X[:20]))


def test_anndata_layer_and_gene_names(data):
    X, _ = data
    adata = ad.AnnData(sp.csr_matrix(X.shape, dtype=np.float32))
    adata.layers["counts"] = X
    adata.var_names = [f"g{i}" for i in range(X.shape[1])]
    m = models.get("pca", **FAST["pca"]).fit(adata, layer="counts")
    np.testing.assert_array_equal(m.embed(adata, layer="counts"), m.embed(X))
    swapped = adata[:, list(adata.var_names[1:]) + [adata.var_names[0]]].copy()
    with pytest.raises(ValueError, match="gene names differ .* first at 0: 'g1' instead of 'g0'"):
        m.embed(swapped, layer="counts")
    with pytest.raises(ValueError, match="fitted on 400 genes but these counts have 399"):
        m.embed(X[:, :399])
    with pytest.raises(KeyError, match="layer 'raw' not found"):
        m.embed(adata, layer="raw")


def test_registry():
    assert models.available() == ["pca", "random_projection", "transformer", "vae"]
    assert isinstance(models.get("vae", n_dims=10), models.VAE)
    with pytest.raises(ValueError, match="unknown model 'umap'; available: pca"):
        models.get("umap")
    with pytest.raises(TypeError, match="bad parameters for model 'pca'"):
        models.get("pca", depth=3)


def test_bad_counts(data):
    X, _ = data
    m = models.get("pca", **FAST["pca"])
    neg = X.copy()
    neg.data[neg.indptr[7]] = -1
    with pytest.raises(ValueError, match="non-negative .*cell 7"):
        m.fit(neg)
    frac = X.copy()
    frac.data[frac.indptr[5]] = 0.5
    with pytest.raises(ValueError, match="whole numbers .*cell 5"):
        m.fit(frac)
    with pytest.raises(ValueError, match="NaN"):
        m.fit(np.full((5, 5), np.nan))
    with pytest.raises(ValueError, match="PCA with 8 dims needs more than 8"):
        m.fit(X[:6])
    with pytest.raises(RuntimeError, match="not fitted"):
        models.get("vae").embed(X)
    with pytest.raises(ValueError, match="likelihood"):
        models.get("vae", likelihood="poisson")
    with pytest.raises(ValueError, match="seed"):
        m.fit(X, seed=-1)
    bad = Path("/nonexistent-dir") / "m.pt"
    with pytest.raises(RuntimeError, match="fitted"):
        models.get("pca").save(bad)


TINY = {
    "pca": {"n_dims": 4, "n_top_genes": 30},
    "random_projection": {"n_dims": 4, "n_top_genes": 30},
    "vae": {"n_dims": 3, "n_top_genes": 30, "epochs": 1, "n_hidden": 8},
    "transformer": {"n_top_genes": 30, "max_len": 8, "width": 8, "n_heads": 2, "epochs": 1},
}


def _only_validation_cells_expressed() -> np.ndarray:
    """50 x 40 counts in which only the 5 cells of the seed-0 validation split have UMIs."""
    from noisescale._internal.seeding import split

    X = np.random.default_rng(0).poisson(1.0, (50, 40)).astype(np.float32)
    keep, held = split(50, 0.1, 0, "validation")
    assert held.size == 5
    X[keep] = 0
    return X


def _stored_zeros() -> sp.csr_matrix:
    """A 50 x 40 CSR that stores 100 entries, all zero (they used to pass as expressed)."""
    i = np.arange(100)
    X = sp.csr_matrix((np.zeros(100, np.float32), (i % 50, i % 40)), shape=(50, 40))
    assert X.nnz == 100
    return X


ALL_ZERO = r"the counts are all zero \(50 cells x 40 genes without a single UMI\)"
SPLIT = ("{cls}: 4 cells are too few for a training and a validation split: "
         "validation_fraction=0.1 holds out 0 and leaves 4 for training; it needs at least 1 "
         "validation and {n} training cell")
NO_TRAINING_COUNTS = ("none of the 45 training cells (the 5 validation cells left out) has a "
                      "count in the 30 selected genes")
DEGENERATE = [
    *[(name, np.zeros((50, 40)), ALL_ZERO) for name in sorted(TINY)],
    *[(name, _stored_zeros(), ALL_ZERO) for name in sorted(TINY)],
    *[(name, np.ones((1, 40)), f"{cls} needs at least 2 cells to fit, got 1")
      for name, cls in [("pca", "PCA"), ("random_projection", "RandomProjection"),
                        ("vae", "VAE"), ("transformer", "Transformer")]],
    ("pca", np.ones((4, 40)), "PCA with 4 dims needs more than 4 training cells, got 4"),
    ("vae", np.ones((4, 40)), SPLIT.format(cls="VAE", n="2")),
    ("transformer", np.ones((4, 40)), SPLIT.format(cls="Transformer", n="1")),
    ("vae", _only_validation_cells_expressed(), NO_TRAINING_COUNTS),
    ("transformer", _only_validation_cells_expressed(), NO_TRAINING_COUNTS),
    ("pca", np.c_[np.arange(50) % 3, np.arange(50) % 2, np.zeros((50, 38))],
     "PCA with 4 dims needs more than 4 expressed genes, but only 2 of the 40 genes have a "
     "nonzero count in the 50 training cells"),
    # every gene constant: skmisc's loess used to crash the process (segmentation fault)
    ("random_projection", np.ones((10, 40)),
     "could not rank highly variable genes (seurat_v3) on 10 cells: only 0 of the 40 "
     "expressed genes vary between the cells; use more cells, or n_top_genes >= 40"),
]


@pytest.mark.parametrize("name, counts, message", DEGENERATE)
def test_degenerate_training_data_is_refused_before_training(name, counts, message,
                                                             monkeypatch):
    import re

    from noisescale.models import transformer, vae

    def no_training(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(vae, "train", no_training)
    monkeypatch.setattr(transformer, "train", no_training)
    model = models.get(name, **TINY[name])
    with pytest.raises(ValueError, match=message if message is ALL_ZERO else re.escape(message)):
        model.fit(counts, seed=0)
    assert model.n_genes_ is None  # a failed fit leaves the model unfitted
    with pytest.raises(RuntimeError, match="not fitted"):
        model.embed(counts)


def test_check_fit_shape_without_data():
    """The limits a sweep checks up front, from the training sizes and the gene count."""
    with pytest.raises(ValueError, match=r"PCA with 16 dims needs n_top_genes > 16 \(the "
                                         r"components span the selected genes\), got "
                                         r"n_top_genes=10"):
        models.get("pca", n_top_genes=10).check_fit_shape()
    with pytest.raises(ValueError, match="PCA with 16 dims needs more than 16 genes, got 12"):
        models.get("pca").check_fit_shape(1000, 12)
    with pytest.raises(ValueError, match="PCA with 16 dims needs more than 16 training cells, "
                                         "got 16"):
        models.get("pca").check_fit_shape(16, 2000)
    models.get("pca").check_fit_shape(17, 17)
    with pytest.raises(ValueError, match="VAE: 20 cells are too few .* holds out 0 and leaves "
                                         "20 for training"):
        models.get("vae", validation_fraction=0.02).check_fit_shape(20)
    with pytest.raises(ValueError, match="VAE: 3 cells .* holds out 2 and leaves 1 for "
                                         "training; it needs at least 1 validation and 2 "
                                         "training cells"):
        models.get("vae", validation_fraction=0.5).check_fit_shape(3)
    with pytest.raises(ValueError, match="VAE: 5 cells .* holds out 0"):  # round(0.5) == 0
        models.get("vae").check_fit_shape(5)
    models.get("vae").check_fit_shape(6)
    models.get("transformer", validation_fraction=0.5).check_fit_shape(2)
    models.get("random_projection", n_dims=64).check_fit_shape(2, 1)  # no limit but 2 cells
    with pytest.raises(ValueError, match="needs at least 1 gene to fit, got 0"):
        models.get("random_projection").check_fit_shape(10, 0)


def _not_a_model_files(tmp_path, data) -> dict[str, tuple[Path, str]]:
    """Files that models.load must refuse, with what the message says about each."""
    import pickle
    import zipfile

    X, _ = data
    text = tmp_path / "notes.txt"
    text.write_text("not a model\n")
    h5ad = tmp_path / "cells.h5ad"
    ad.AnnData(X[:20].toarray()).write_h5ad(h5ad)
    weights = tmp_path / "weights.pt"
    torch.save({"layer.weight": torch.ones(3, 2)}, weights)
    objects = tmp_path / "objects.pt"
    torch.save({"noisescale_model": "pca", "when": pd.Timestamp("2020-01-01")}, objects)
    pickled = tmp_path / "dict.pkl"
    pickled.write_bytes(pickle.dumps({"noisescale_model": "pca"}))
    other_zip = tmp_path / "archive.zip"
    with zipfile.ZipFile(other_zip, "w") as z:
        z.writestr("readme.txt", "hello")
    saved = tmp_path / "model.pt"
    models.get("pca", **FAST["pca"]).fit(X[:200]).save(saved)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(saved.read_bytes()[: saved.stat().st_size // 2])
    wrong_state = tmp_path / "wrong_state.pt"
    record = torch.load(saved, weights_only=True)
    record["state"] = {"hvg": record["state"]["hvg"]}
    torch.save(record, wrong_state)
    unknown = tmp_path / "unknown.pt"
    torch.save({**record, "noisescale_model": "umap"}, unknown)
    not_zip = "model.save() writes a torch zip archive and this file is not one"
    return {
        "text": (text, not_zip),
        "h5ad": (h5ad, not_zip),
        "pickle": (pickled, not_zip),
        "truncated": (truncated, not_zip),
        "zip": (other_zip, "torch could not read it as tensors and plain values"),
        "objects": (objects, "torch could not read it as tensors and plain values"),
        "weights": (weights, "a torch file without noisescale's model record"),
        "wrong_state": (wrong_state, "its 'pca' record does not rebuild the model (KeyError"),
        "unknown": (unknown, "it names the model 'umap'; known: pca"),
    }


def test_load_refuses_what_is_not_a_saved_model(tmp_path, data):
    import re

    for name, (path, reason) in _not_a_model_files(tmp_path, data).items():
        with pytest.raises(ValueError) as info:
            models.load(path)
        message = str(info.value)
        assert message.startswith(f"{str(path)!r} is not a saved noisescale model: "), name
        assert re.search(re.escape(reason), message), (name, message)
        # never a hint to unpickle unsafely, neither here nor in a chained exception
        assert "weights_only" not in message, name
        err = info.value
        assert err.__cause__ is None and (err.__context__ is None or err.__suppress_context__)
    with pytest.raises(FileNotFoundError):
        models.load(tmp_path / "missing.pt")


def test_saved_metadata_is_plain_and_loads_with_weights_only(tmp_path, data, monkeypatch):
    """numpy scalars among the parameters are saved as plain numbers, and load() asks torch
    for weights_only=True."""
    X, _ = data
    m = models.get("vae", **{**FAST["vae"], "epochs": 1}, max_seconds=np.float64(30.0),
                   dropout=np.float32(0.2)).fit(X[:200])
    m.save(tmp_path / "vae.pt")
    calls = []
    real = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    loaded = models.load(tmp_path / "vae.pt")
    assert calls == [True]
    assert loaded.max_seconds == 30.0 and type(loaded.max_seconds) is float
    np.testing.assert_array_equal(loaded.embed(X[:20]), m.embed(X[:20]))


def test_nb_and_zinb_log_likelihoods_are_exact():
    x = torch.tensor([0.0, 1.0, 3.0, 10.0, 57.0], dtype=torch.float64)
    mu = torch.tensor([0.3, 2.0, 3.0, 8.5, 40.0], dtype=torch.float64)
    theta = torch.tensor([0.5, 1.0, 4.0, 20.0, 2.0], dtype=torch.float64)
    p = (theta / (theta + mu)).numpy()
    ref = stats.nbinom.logpmf(x.numpy(), theta.numpy(), p)
    np.testing.assert_allclose(log_nb(x, mu, theta, eps=0.0).numpy(), ref, rtol=1e-12)
    logits = torch.tensor([-2.0, 0.0, 1.0, 3.0, -1.0], dtype=torch.float64)
    pi = torch.sigmoid(logits).numpy()
    zinb_ref = np.where(x.numpy() == 0, np.log(pi + (1 - pi) * np.exp(ref)),
                        np.log(1 - pi) + ref)
    np.testing.assert_allclose(log_zinb(x, mu, theta, logits, eps=0.0).numpy(), zinb_ref,
                               rtol=1e-12)


def test_rank_tokens():
    X = sp.csr_matrix(np.array([[0, 5, 1, 5], [0, 0, 0, 0], [2, 0, 0, 8]], dtype=np.float32))
    medians = np.array([1.0, 1.0, 0.5, 4.0])
    tok = rank_tokens(X, medians, max_len=4)
    g = N_SPECIAL
    # cell 0: values 5, 2 (1 / 0.5), 1.25 (5 / 4) -> genes 1, 2, 3
    assert tok[0].tolist() == [CLS, g + 1, g + 2, g + 3]
    assert tok[1].tolist() == [CLS, PAD, PAD, PAD]
    assert tok[2].tolist() == [CLS, g + 0, g + 3, PAD]  # 2 vs 8 / 4 = 2: tie -> lower gene


def test_epoch_budget_scales_inversely_with_cells():
    vae = models.get("vae")
    assert vae.epoch_budget(1_000) == 400 and vae.epoch_budget(100_000) == 80
    assert vae.epoch_budget(10_000_000) == 20
    assert models.get("vae", epochs=7).epoch_budget(10) == 7


def knn_accuracy(train_emb, train_labels, test_emb, test_labels, k=15):
    import faiss

    index = faiss.IndexFlatL2(train_emb.shape[1])
    index.add(np.ascontiguousarray(train_emb, dtype=np.float32))
    _, nn = index.search(np.ascontiguousarray(test_emb, dtype=np.float32), k)
    votes = train_labels[nn]
    pred = np.array([np.bincount(v).argmax() for v in votes])
    return float((pred == test_labels).mean())


@pytest.mark.skipif(not PAUL.exists(), reason="shared dataset paul2015 not present")
def test_learning_is_real_on_paul2015():
    """Held-out k-NN (k = 15) cell-type accuracy: PCA and the VAE beat random projection."""
    adata = ad.read_h5ad(PAUL)
    labels = np.unique(adata.obs["celltype"].to_numpy(), return_inverse=True)[1]
    order = np.random.default_rng(0).permutation(adata.n_obs)
    tr, te = np.sort(order[:1900]), np.sort(order[1900:])
    acc = {}
    for name, params in [("random_projection", {}), ("pca", {}), ("vae", {"epochs": 80})]:
        m = models.get(name, **params).fit(adata[tr], seed=0)
        acc[name] = knn_accuracy(m.embed(adata[tr]), labels[tr], m.embed(adata[te]), labels[te])
        if name == "vae":
            hist = m.history
            assert hist["val_loss"][hist["best_epoch"]] < 0.9 * hist["val_loss"][0]
    # measured: random projection 0.52, PCA 0.86, VAE 0.83 (760 held-out cells, 7 types)
    assert acc["pca"] > acc["random_projection"] + 0.2
    assert acc["vae"] > acc["random_projection"] + 0.2


def test_wall_time_cap_stops_mid_epoch(data):
    X, _ = data
    m = models.get("transformer", **{**FAST["transformer"], "epochs": 50, "batch_size": 8},
                   max_seconds=0.0).fit(X, seed=0)  # stops after the first batch
    assert m.history["stopped"] == "time" and m.history["epochs_run"] == 1
    assert np.isfinite(m.embed(X[:20])).all()


@pytest.mark.skipif(not PAUL.exists(), reason="shared dataset paul2015 not present")
@pytest.mark.parametrize("name", sorted(FAST))
def test_every_model_on_real_counts(name):
    """Each model fits and embeds real UMI counts (a slice of paul2015), deterministically."""
    adata = ad.read_h5ad(PAUL)[:700].copy()
    train, test = adata[:500], adata[500:]
    a = models.get(name, **FAST[name]).fit(train, seed=1).embed(test)
    b = models.get(name, **FAST[name]).fit(train, seed=1).embed(test)
    assert a.shape == (200, models.get(name, **FAST[name]).n_dims)
    assert np.isfinite(a).all() and np.array_equal(a, b)


@pytest.mark.skipif(not PAUL.exists(), reason="shared dataset paul2015 not present")
def test_hvg_survives_shallow_counts():
    """At 3 % of paul2015's depth (~50 UMIs per cell) on 500 cells, seurat_v3's loess with
    scanpy's span 0.3 is singular; the wider span fallback still ranks genes, and the
    selection at full depth is unchanged (span 0.3 works there)."""
    import anndata as ad

    from noisescale.models.preprocess import select_hvg

    X = sp.csr_matrix(ad.read_h5ad(PAUL).X)[:500]
    shallow = ns.thin(X, 0.03, seed=0)
    genes = select_hvg(shallow, 2000)
    assert genes.size == 2000 and np.all(np.diff(genes) > 0)
    assert np.all(shallow[:, genes].getnnz(axis=0) > 0)
    z = models.get("pca", n_dims=8).fit(shallow, seed=0).embed(shallow)
    assert np.isfinite(z).all()


# -- model parameters for the paper's sizes, explicit validation cells ----------------------------

@pytest.mark.parametrize("name, params, error, message", [
    ("transformer", {"ff_width": 0}, ValueError, "ff_width must be an integer >= 1, got 0"),
    ("transformer", {"ff_width": 1.5}, ValueError, "ff_width must be an integer >= 1"),
    ("transformer", {"activation": "tanh"}, ValueError,
     "activation must be 'relu' or 'gelu', got 'tanh'"),
    ("transformer", {"warmup_steps": -1}, ValueError,
     "warmup_steps must be an integer >= 0, got -1"),
    ("transformer", {"lr_schedule": "cosine"}, ValueError,
     "lr_schedule must be 'constant' or 'linear', got 'cosine'"),
    *[(name, {"cell_epochs": 0}, ValueError, "cell_epochs must be an integer >= 1, got 0")
      for name in ("vae", "transformer")],
    *[(name, {"max_epochs": True}, ValueError, "max_epochs must be an integer >= 1")
      for name in ("vae", "transformer")],
    ("vae", {"max_epochs": 5}, ValueError, r"max_epochs \(5\) must be >= min_epochs \(20\)"),
    *[(name, {"center": "no"}, TypeError, "center must be True or False, got 'no'")
      for name in ("pca", "random_projection")],
    *[(name, {"log_normalize": 1}, TypeError, "log_normalize must be True or False, got 1")
      for name in ("pca", "random_projection")],
])
def test_new_parameters_are_validated(name, params, error, message):
    with pytest.raises(error, match=message):
        models.get(name, **params)


def test_new_parameters_are_reported_with_defaults_of_before():
    t = models.get("transformer").params()
    assert {k: t[k] for k in ("ff_width", "activation", "warmup_steps", "lr_schedule",
                              "max_epochs", "cell_epochs", "max_len")} == {
        "ff_width": None, "activation": "relu", "warmup_steps": 0, "lr_schedule": "constant",
        "max_epochs": None, "cell_epochs": None, "max_len": 128}
    v = models.get("vae").params()
    assert v["max_epochs"] is None and v["cell_epochs"] is None
    for name in ("pca", "random_projection"):
        p = models.get(name).params()
        assert p["center"] is True and p["log_normalize"] is True
    # the default network is today's: feed-forward 2 x width, ReLU
    net = models.get("transformer", width=16, n_heads=2)._network(10)
    layer = net.encoder.layers[0]
    assert layer.linear1.out_features == 32 and layer.activation_relu_or_gelu == 1


def test_cell_epochs_budget():
    """epochs = round(cell_epochs / n) in [min_epochs, max_epochs]; None: the model's BUDGET."""
    vae = models.get("vae", cell_epochs=10**7, max_epochs=10**7)  # the authors' 10^7 / N
    assert [vae.epoch_budget(n) for n in (1_000, 10**6, 10**8)] == [10_000, 20, 20]
    assert models.get("vae", cell_epochs=10**7).epoch_budget(1_000) == 400  # BUDGET's cap
    assert models.get("vae", max_epochs=50).epoch_budget(1_000) == 50  # BUDGET's total
    tr = models.get("transformer", cell_epochs=1_000, max_epochs=7, min_epochs=1)
    assert [tr.epoch_budget(n) for n in (100, 250, 10**6)] == [7, 4, 1]
    assert models.get("transformer", epochs=3, cell_epochs=10**9).epoch_budget(10) == 3


def test_lr_factor_schedule():
    from noisescale.models.transformer import lr_factor

    assert [lr_factor(s, 4, 12, "constant") for s in (0, 1, 4, 11, 50)] == [0, 0.25, 1, 1, 1]
    assert [lr_factor(s, 4, 12, "linear") for s in (0, 2, 4, 8, 12, 20)] == [
        0, 0.5, 1, 0.5, 0, 0]
    assert [lr_factor(s, 0, 10, "linear") for s in (0, 5, 10)] == [1, 0.5, 0]


def test_transformer_sizes_schedule_and_save_load(data, tmp_path, monkeypatch):
    """ff_width and activation build that network; the optimizer's lr of every step follows
    the warm-up then linear decay over the planned steps; all survive save/load."""
    from noisescale.models import transformer
    from noisescale.models.transformer import lr_factor

    X, _ = data
    real_train, used = transformer.train, []

    def recording_train(module, optimizer, **kw):
        optimizer.register_step_pre_hook(
            lambda opt, args, kwargs: used.append(opt.param_groups[0]["lr"]))
        return real_train(module, optimizer, **kw)

    monkeypatch.setattr(transformer, "train", recording_train)
    params = {**TINY["transformer"], "ff_width": 24, "activation": "gelu", "warmup_steps": 5,
              "lr_schedule": "linear", "batch_size": 8, "epochs": 3, "lr": 1e-3,
              "patience": 10}
    m = models.get("transformer", **params).fit(X[:60], seed=0, validation=X[60:80])
    total = 3 * 8  # epochs x ceil(60 / 8) batches
    expected = [1e-3 * lr_factor(s, 5, total, "linear") for s in range(total)]
    np.testing.assert_allclose(used, expected, rtol=1e-12, atol=0)
    assert used[0] == 0 and max(used) == pytest.approx(1e-3)
    np.testing.assert_allclose(m.history["lr"], expected[7::8], rtol=1e-12)
    layer = m._net.encoder.layers[0]
    assert layer.linear1.out_features == 24 and layer.activation_relu_or_gelu == 2
    m.save(tmp_path / "t.pt")
    loaded = models.load(tmp_path / "t.pt")
    assert loaded.params() == m.params() and loaded.params()["ff_width"] == 24
    assert loaded._net.encoder.layers[0].linear1.out_features == 24
    np.testing.assert_array_equal(loaded.embed(X[80:100]), m.embed(X[80:100]))


def test_uncentered_pca_is_truncated_svd(data, tmp_path):
    from sklearn.decomposition import TruncatedSVD

    from noisescale.models.preprocess import log_normalize

    X, _ = data
    m = models.get("pca", **FAST["pca"], center=False).fit(X[:300], seed=0)
    assert not m.center_.any()
    L = log_normalize(X[:300], m.hvg_)
    svd = TruncatedSVD(8, algorithm="arpack", random_state=0).fit(L)
    ref = svd.transform(log_normalize(X[300:], m.hvg_))
    emb = m.embed(X[300:])
    signs = np.sign((emb * ref).sum(axis=0))
    np.testing.assert_allclose(emb, ref * signs, rtol=1e-3, atol=1e-3 * np.abs(ref).max())
    # the same as exact SVD of the dense matrix (U S = L V)
    _, _, vt = np.linalg.svd(L.toarray().astype(np.float64), full_matrices=False)
    exact = log_normalize(X[300:], m.hvg_).toarray() @ vt[:8].T
    np.testing.assert_allclose(np.abs(emb), np.abs(exact), rtol=1e-3,
                               atol=1e-3 * np.abs(exact).max())
    centered = models.get("pca", **FAST["pca"]).fit(X[:300], seed=0).embed(X[300:])
    assert not np.allclose(np.abs(centered), np.abs(emb), atol=1e-2)
    m.save(tmp_path / "p.pt")
    loaded = models.load(tmp_path / "p.pt")
    assert loaded.params()["center"] is False
    np.testing.assert_array_equal(loaded.embed(X[300:]), emb)


def test_random_projection_of_raw_counts(data, tmp_path):
    X, _ = data
    raw = {**FAST["random_projection"], "log_normalize": False, "center": False}
    m = models.get("random_projection", **raw).fit(X[:300], seed=4)
    emb = m.embed(X[300:])
    expected = X[300:][:, m.hvg_].toarray() @ m.components_.T  # counts, no centering
    np.testing.assert_allclose(emb, expected, rtol=0, atol=1e-6 * np.abs(expected).max())
    again = models.get("random_projection", **raw).fit(X[:300], seed=4).embed(X[300:])
    assert np.array_equal(emb, again)
    other = models.get("random_projection", **raw).fit(X[:300], seed=5).embed(X[300:])
    assert not np.allclose(emb, other)
    default = models.get("random_projection", **FAST["random_projection"]).fit(X[:300], seed=4)
    assert np.array_equal(default.components_, m.components_)  # same seed, same projection
    assert not np.allclose(default.embed(X[300:]), emb)
    m.save(tmp_path / "rp.pt")
    loaded = models.load(tmp_path / "rp.pt")
    assert loaded.params() == m.params()
    np.testing.assert_array_equal(loaded.embed(X[300:]), emb)


@pytest.mark.parametrize("name", ["vae", "transformer"])
def test_explicit_validation_cells(name, data):
    """With validation=, every training cell trains and the validation loss is the given
    cells' (the VAE's best validation loss is their -ELBO); training itself does not depend
    on which cells validate."""
    X, _ = data
    params = {**TINY[name], "epochs": 3, "patience": 10}
    a = models.get(name, **params).fit(X[:200], seed=0, validation=X[200:250])
    b = models.get(name, **params).fit(X[:200], seed=0, validation=X[250:300])
    split = models.get(name, **params).fit(X[:200], seed=0)
    assert a.history["training_cells"] == 200 and a.history["validation_cells"] == 50
    assert split.history["training_cells"] == 180 and split.history["validation_cells"] == 20
    assert a.history["train_loss"] == b.history["train_loss"]
    assert a.history["val_loss"] != b.history["val_loss"]
    if name == "vae":
        best = a.history["val_loss"][a.history["best_epoch"]]
        assert a.validation_elbo(X[200:250]) == pytest.approx(best, rel=1e-5)


def test_explicit_validation_is_checked_and_linear_models_ignore_it(data):
    X, _ = data
    names = [f"g{i}" for i in range(X.shape[1])]
    adata = ad.AnnData(X[:100], var=pd.DataFrame(index=names))
    val = ad.AnnData(sp.csr_matrix(X[100:120].shape, dtype=np.float32),
                     var=pd.DataFrame(index=names))
    val.layers["counts"] = X[100:120]
    vae = models.get("vae", **TINY["vae"])
    with pytest.raises(ValueError, match="validation has 399 genes but the training counts "
                                         "have 400"):
        vae.fit(X[:100], validation=X[100:120, :399])
    swapped = val[:, names[1:] + names[:1]].copy()
    with pytest.raises(ValueError, match="validation gene names differ from the training ones "
                                         "at 400 position"):
        vae.fit(adata, validation=swapped)
    with pytest.raises(ValueError, match="validation has no cells"):
        vae.fit(X[:100], validation=X[:0])
    with pytest.raises(ValueError, match="non-negative"):
        vae.fit(X[:100], validation=-X[100:120])
    with pytest.raises(ValueError, match="n_validation must be an integer >= 1"):
        vae.check_fit_shape(100, n_validation=0)
    assert vae.n_genes_ is None
    # an AnnData validation set reads the same layer; a 4-cell training set suffices with it
    vae.check_fit_shape(4, n_validation=1)
    with pytest.raises(ValueError, match="4 cells are too few"):
        vae.check_fit_shape(4)
    adata.layers["counts"] = adata.X
    vae.fit(adata, layer="counts", validation=val)
    assert vae.history["validation_cells"] == 20
    for name in ("pca", "random_projection"):
        plain = models.get(name, **FAST[name]).fit(X[:100], seed=1).embed(X[100:])
        m = models.get(name, **FAST[name]).fit(X[:100], seed=1, validation=X[100:120])
        assert np.array_equal(m.embed(X[100:]), plain)
        with pytest.raises(ValueError, match="validation has 399 genes"):
            m.fit(X[:100], validation=X[100:120, :399])
