#!/usr/bin/env python
"""Representation-model benchmark for noisescale.

1. Fit and embedding time of every registered model (PCA, random projection, VAE,
   transformer) with its default settings, on the shared dataset with the most counts
   (../shared/data/, skipped when absent) and on a generated dataset of --cells cells
   (negative-binomial counts from cell types; 100,000 by default). Fits are capped at
   --max-seconds each (the epochs actually run are printed).
2. The VAE against scvi-tools' SCVI (if installed): same cells, the same 2,000 HVGs, 16
   latent dims, 128 hidden units, one layer, NB likelihood, batch 128, the same number of
   epochs, no early stopping; both evaluated on the same held-out 10 % of the cells.
   Reported: seconds per epoch and -ELBO per held-out cell (lower is better).

    python benchmarks/bench_models.py                  # ~15 min on 2 cores
    python benchmarks/bench_models.py --quick          # 5,000 generated cells, short fits
    pip install scvi-tools                             # optional peer
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from noisescale import models
from noisescale.models.preprocess import select_hvg

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def generated(n_cells: int, n_genes: int = 3000, n_types: int = 8, seed: int = 0,
              chunk: int = 10_000) -> sp.csr_matrix:
    """NB counts (dispersion 5) from cell types with distinct programs, ~2,000 UMIs per cell."""
    rng = np.random.default_rng(seed)
    base = rng.lognormal(-1.0, 1.5, size=n_genes)
    programs = base * rng.lognormal(0.0, 1.0, size=(n_types, n_genes))
    programs /= programs.sum(axis=1, keepdims=True)
    parts = []
    for start in range(0, n_cells, chunk):
        m = min(chunk, n_cells - start)
        types = rng.integers(0, n_types, size=m)
        depth = rng.lognormal(np.log(2000), 0.4, size=m)
        mean = depth[:, None] * programs[types]
        parts.append(sp.csr_matrix(rng.negative_binomial(5, 5 / (5 + mean)).astype(np.float32)))
    return sp.vstack(parts, format="csr")


def shared_dataset():
    import anndata as ad

    files = sorted(DATA.glob("*.h5ad")) if DATA.exists() else []
    best = None
    for f in files:
        a = ad.read_h5ad(f)
        if best is None or a.X.nnz > best[1].X.nnz:
            best = (f.name, a)
    return best


def time_models(label: str, X, max_seconds: float, quick: bool) -> None:
    print(f"\n{label}: {X.shape[0]:,} cells x {X.shape[1]:,} genes, "
          f"{X.nnz / X.shape[0]:.0f} stored counts per cell")
    print(f"{'model':<18} {'fit s':>8} {'embed s':>8} {'epochs':>7} {'dims':>5}")
    for name in models.available():
        params = {}
        if name in ("vae", "transformer"):
            params["max_seconds"] = max_seconds
            if quick:
                params["epochs"] = 3
        m = models.get(name, **params)
        t = time.perf_counter()
        m.fit(X, seed=0)
        fit_s = time.perf_counter() - t
        t = time.perf_counter()
        emb = m.embed(X)
        embed_s = time.perf_counter() - t
        epochs = m.history.get("epochs_run", "-")
        print(f"{name:<18} {fit_s:8.1f} {embed_s:8.2f} {epochs!s:>7} {emb.shape[1]:5d}")


def vae_vs_scvi(X, epochs: int) -> None:
    import anndata as ad

    print(f"\nVAE vs scvi-tools SCVI: {X.shape[0]:,} cells, {epochs} epochs, n_latent 16, "
          "n_hidden 128, NB, batch 128")
    hvg = select_hvg(X, 2000)
    counts = sp.csr_matrix(X[:, hvg])
    order = np.random.default_rng(0).permutation(counts.shape[0])
    n_test = counts.shape[0] // 10
    test, train = np.sort(order[:n_test]), np.sort(order[n_test:])
    print(f"{'method':<22} {'s/epoch':>8} {'-ELBO/cell (held out)':>22}")

    ours = models.get("vae", n_top_genes=2000, epochs=epochs, patience=epochs, kl_warmup=epochs // 4,
                      dropout=0.1)
    t = time.perf_counter()
    ours.fit(counts[train], seed=0)
    per_epoch = (time.perf_counter() - t) / ours.history["epochs_run"]
    print(f"{'noisescale VAE':<22} {per_epoch:8.2f} {ours.validation_elbo(counts[test]):22.1f}")

    try:
        import scvi
    except ImportError:
        print("  (scvi-tools not installed: pip install scvi-tools)")
        return
    scvi.settings.seed = 0
    adata = ad.AnnData(counts[train].copy())
    held = ad.AnnData(counts[test].copy())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scvi.model.SCVI.setup_anndata(adata)
        model = scvi.model.SCVI(adata, n_latent=16, n_hidden=128, n_layers=1,
                                gene_likelihood="nb", dropout_rate=0.1)
        t = time.perf_counter()
        model.train(max_epochs=epochs, batch_size=128, accelerator="cpu", early_stopping=False,
                    enable_progress_bar=False, train_size=0.9,
                    plan_kwargs={"n_epochs_kl_warmup": epochs // 4})
        per_epoch = (time.perf_counter() - t) / epochs
        scvi.model.SCVI.setup_anndata(held)
        elbo = float(model.get_elbo(held))
    # scvi-tools reports the ELBO as a loss (positive) in recent versions; show -ELBO either way
    print(f"{'scvi-tools SCVI':<22} {per_epoch:8.2f} {abs(elbo):22.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--cells", type=int, default=100_000, help="cells of the generated dataset")
    ap.add_argument("--max-seconds", type=float, default=300.0, help="wall cap per fit")
    ap.add_argument("--vae-epochs", type=int, default=100)
    args = ap.parse_args()
    cells = 5_000 if args.quick else args.cells
    shared = shared_dataset()
    if shared is not None:
        name, adata = shared
        time_models(f"shared dataset {name}", sp.csr_matrix(adata.X), args.max_seconds,
                    args.quick)
        vae_vs_scvi(sp.csr_matrix(adata.X), 10 if args.quick else args.vae_epochs)
    else:
        print(f"(no shared datasets in {DATA})")
    time_models("generated", generated(cells), args.max_seconds, args.quick)


if __name__ == "__main__":
    main()
