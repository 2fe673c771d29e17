"""Simulated single-cell UMI counts with a known latent state, at any size.

The generative model, per cell *c* of type *t* with continuous programs *z* (a vector):

* **state**: cell types are clusters with uneven frequencies; programs are ``z = shift[t] + e``
  with ``e ~ N(0, I)``. With ``spatial=True`` cells lie in a square, types fill patches (the
  Voronoi domains of random centres, each owned by one type; a fraction ``SPATIAL_MIXING`` of
  cells is of a random type) and programs vary smoothly in space (random Fourier features).
* **expression**: gene proportions ``p_cg ∝ m_g · exp(B[t, g] + W[g] · z)`` with log-normal
  gene means ``m_g`` (most genes low, a heavy tail), sparse marker effects ``B`` and sparse
  program modules ``W``; library sizes ``L_c`` are log-normal around ``mean_umis`` (with a
  per-type size factor); counts are ``Poisson(L_c p_cg)`` or negative binomial with mean
  ``L_c p_cg`` and gene-wise dispersion ``phi_g`` (variance ``mu + phi_g mu^2``).
* **auxiliary signals**: ``obs['cell_type']``; ``obsm['protein']``, Poisson counts whose
  log-means are linear in the type and programs plus Gaussian noise of sd ``protein_noise``;
  ``obs['time'] = Phi(z_0) + time_noise · N(0, 1)``; optional ``obsm['spatial']`` (µm).
  ``obsm['state']`` holds the true state: the one-hot type followed by the programs.

Counts cost time in proportion to the UMIs, not to cells x genes: module genes get one Poisson
draw per cell and gene; every other gene's proportion depends on the type only, so the
molecules of a type's cells are drawn as one multinomial over genes and dealt to the cells at
random. Negative-binomial counts are exact: those Poisson molecules are thinned with
probability ``log(1 + x) / x`` (``x = mu phi``) into a Poisson number of clusters whose sizes
are logarithmic (a compound Poisson, which is the NB law).

Randomness is counter-based (:func:`noisescale._internal.seeding.generator`): global parameters
come from the stream ``(seed, "simulate", "globals")``, and each block of ``BLOCK`` cells from
``(seed, "simulate", "cells")`` with the block number in its counter. A cell therefore depends
only on the seed, its index and the model, never on how the cells are chunked: ``simulate(n,
cells=slice(a, b))`` equals rows ``a:b`` of ``simulate(n)``, and :func:`simulate_file` writes
the same data for any ``chunk_cells``. Without spatial coordinates the first cells do not depend
on ``n_cells`` either.
"""

from __future__ import annotations

import inspect
import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.special import ndtr

from .._internal.checks import check_bool, check_int, check_number, check_seed
from .._internal.seeding import generator
from ..io.chunked import run_chunks
from ..io.stores import check_destination, store_format

#: Cells per random-number block: the unit of generation (never changes the result).
BLOCK = 1024
#: Fixed model constants, recorded in ``uns['simulation']``.
GENE_SIGMA = 2.75         # sd of the natural log of the gene means (pbmc4k-like sparsity)
DISPERSION_SPREAD = 0.5   # sd of log(phi_g) around log(dispersion)
MARKER_FRACTION = 0.05    # genes with a type effect, per type
TYPE_EFFECT = 1.0         # sd of the marker log-fold changes
TYPE_SIZE_SIGMA = 0.25    # sd of the per-type log library-size factor
PROGRAM_GENES = 200       # genes per program module
PROGRAM_EFFECT = 0.5      # sd of a module gene's log-fold change per unit of program
PROGRAM_TYPE_SHIFT = 1.0  # sd of the per-type program means
PROTEIN_LOG_MEAN = math.log(30.0)
SPATIAL_MIXING = 0.1      # fraction of cells whose type ignores their domain
SPATIAL_SMOOTH = 0.7      # share of program variance that is a smooth function of space
CELL_SPACING_UM = 10.0    # the square's side is sqrt(n_cells) * this
_FOURIER = 16


@dataclass(frozen=True)
class _Options:
    n_cells: int
    n_genes: int
    n_types: int
    n_programs: int
    mean_umis: float
    library_sigma: float
    likelihood: str
    dispersion: float
    n_proteins: int
    protein_noise: float
    time_noise: float
    spatial: bool
    seed: int


class _Model:
    """Global parameters drawn once from the seed's global stream."""

    def __init__(self, o: _Options):
        self.o = o
        T, G, K, P = o.n_types, o.n_genes, o.n_programs, o.n_proteins
        rng = generator(o.seed, "simulate", "globals")
        self.freq = 0.8 * rng.dirichlet(np.full(T, 2.0)) + 0.2 / T
        size = np.exp(rng.normal(0.0, TYPE_SIZE_SIGMA, T))
        self.type_size = size / np.dot(self.freq, size)
        m = np.exp(rng.normal(0.0, GENE_SIGMA, G))
        self.gene_mean = m / m.sum()
        self.phi = o.dispersion * np.exp(rng.normal(0.0, DISPERSION_SPREAD, G))
        marker = rng.random((T, G)) < MARKER_FRACTION
        lfc = rng.normal(0.0, TYPE_EFFECT, (T, G)) * marker
        modules = [rng.choice(G, min(PROGRAM_GENES, G), replace=False) for _ in range(K)]
        loadings = [rng.normal(0.0, PROGRAM_EFFECT, len(g)) for g in modules]
        self.shift = rng.normal(0.0, PROGRAM_TYPE_SHIFT, (T, K))
        self.protein_base = rng.normal(PROTEIN_LOG_MEAN, 1.0, P)
        self.protein_type = rng.normal(0.0, 1.0, (T, P))
        self.protein_program = rng.normal(0.0, 0.5, (P, K))
        n_domains = 3 * T
        self.centres = rng.random((n_domains, 2))
        self.domain_type = np.concatenate([rng.permutation(T), rng.choice(T, n_domains - T,
                                                                          p=self.freq)])
        self.omega = rng.normal(0.0, 2 * math.pi * 1.5, (K, _FOURIER, 2))
        self.phase = rng.random((K, _FOURIER)) * 2 * math.pi

        base = self.gene_mean * np.exp(lfc)
        self.base = base / base.sum(axis=1, keepdims=True)           # (T, G)
        W = np.zeros((G, K))
        for k, (genes, w) in enumerate(zip(modules, loadings)):
            W[genes, k] = w
        self.marker = marker.any(axis=0)
        self.P = np.flatnonzero(np.any(W != 0, axis=1))              # module genes
        self.W_P = W[self.P]                                         # (|P|, K)
        self.p_index = np.full(G, -1, np.int64)
        self.p_index[self.P] = np.arange(self.P.size)
        self.rest = np.flatnonzero(self.p_index < 0)                 # all other genes
        self.base_rest = self.base[:, self.rest]                       # (T, G - |P|)
        self.base_P = self.base[:, self.P]                             # (T, |P|)
        self.R = self.base_rest.sum(axis=1)                            # rest mass per type
        self.q_rest = self.base_rest / np.maximum(self.R, 1e-300)[:, None]

    # ------------------------------------------------------------------------------------

    def block(self, b: int) -> dict[str, Any]:
        """All cells of block ``b`` (``BLOCK`` cells, whatever n_cells is)."""
        o, B = self.o, BLOCK
        rng = generator(o.seed, "simulate", "cells", block=b)
        xy = rng.random((B, 2))
        mixed = rng.random(B) < SPATIAL_MIXING
        types = rng.choice(o.n_types, B, p=self.freq)
        e = rng.standard_normal((B, o.n_programs))
        if o.spatial:
            d2 = ((xy[:, None, :] - self.centres[None]) ** 2).sum(-1)
            types = np.where(mixed, types, self.domain_type[np.argmin(d2, axis=1)])
            e = math.sqrt(SPATIAL_SMOOTH) * self._field(xy) + math.sqrt(1 - SPATIAL_SMOOTH) * e
        z = self.shift[types] + e
        library = (o.mean_umis * self.type_size[types]
                   * np.exp(o.library_sigma * rng.standard_normal(B) - o.library_sigma**2 / 2))
        time_noise = rng.standard_normal(B)
        time = ndtr(z[:, 0]) + o.time_noise * time_noise if o.n_programs else None
        log_protein = (self.protein_base + self.protein_type[types]
                       + z @ self.protein_program.T
                       + o.protein_noise * rng.standard_normal((B, o.n_proteins)))
        protein = rng.poisson(np.exp(log_protein)).astype(np.float32)
        indptr, genes, counts = self._counts(rng, types, z, library)
        return dict(indptr=indptr, indices=genes, data=counts, types=types, z=z,
                    library=library, time=time, protein=protein,
                    spatial=xy * (CELL_SPACING_UM * math.sqrt(o.n_cells)))

    def _field(self, xy: np.ndarray) -> np.ndarray:
        """Smooth unit-variance random fields over the unit square, one per program."""
        arg = np.einsum("kfd,nd->nkf", self.omega, xy) + self.phase
        return np.cos(arg).sum(-1) * math.sqrt(2.0 / _FOURIER)

    def _counts(self, rng, types, z, library):
        """UMIs of a block as CSR arrays; see the module docstring for the scheme."""
        o, B, G = self.o, BLOCK, self.o.n_genes
        w = self.base_P[types] * np.exp(z @ self.W_P.T)               # (B, |P|)
        scale = library / (self.R[types] + w.sum(axis=1))             # mu_cg = scale_c w_cg
        # Module genes: one Poisson draw per cell and gene.
        n_P = rng.poisson(scale[:, None] * w)
        cell_P, j = np.nonzero(n_P)
        keys = [np.repeat(cell_P * G + self.P[j], n_P[cell_P, j])]
        # Other genes: their proportions depend on the type only, so the UMIs of all cells of
        # a type are drawn as one multinomial over genes and dealt to the cells' slots in a
        # random order (exchangeability: the same law as independent draws per cell).
        n_rest = rng.poisson(scale * self.R[types])
        for t in range(o.n_types):
            mine = np.flatnonzero(types == t)
            slots = np.repeat(mine, n_rest[mine])
            if slots.size:
                genes = np.repeat(self.rest, rng.multinomial(slots.size, self.q_rest[t]))
                keys.append(rng.permutation(slots) * G + genes)
        key = np.concatenate(keys)
        key.sort()
        first = np.flatnonzero(np.diff(key, prepend=-1))
        count = np.diff(np.r_[first, key.size])
        key = key[first]
        cell, gene = key // G, key % G
        if o.likelihood == "nb" and o.dispersion > 0:
            prop = self.base[types[cell], gene]
            pi = self.p_index[gene]
            module = np.flatnonzero(pi >= 0)
            prop[module] = w[cell[module], pi[module]]
            x = scale[cell] * prop * self.phi[gene]
            accept = np.where(x > 1e-12, np.log1p(x) / np.maximum(x, 1e-300), 1.0)
            k = rng.binomial(count, np.minimum(accept, 1.0))
            sizes = rng.logseries(np.minimum(np.repeat(x / (1 + x), k), 1 - 1e-12))
            total = np.r_[0, np.cumsum(sizes)]
            end = np.cumsum(k)
            count = total[end] - total[end - k]
            keep = k > 0
            cell, gene, count = cell[keep], gene[keep], count[keep]
        indptr = np.r_[0, np.cumsum(np.bincount(cell, minlength=B))]
        return indptr, gene.astype(np.int32), count.astype(np.float32)


# ----------------------------------------------------------------------------------------


def _options(n_cells, n_genes, n_types, n_programs, mean_umis, library_sigma, likelihood,
             dispersion, n_proteins, protein_noise, time_noise, spatial, seed) -> _Options:
    if likelihood not in ("nb", "poisson"):
        raise ValueError(f"likelihood must be 'nb' or 'poisson', got {likelihood!r}")
    check_bool("spatial", spatial)
    o = _Options(
        n_cells=check_int("n_cells", n_cells), n_genes=check_int("n_genes", n_genes),
        n_types=check_int("n_types", n_types), n_programs=check_int("n_programs", n_programs, 0),
        mean_umis=check_number("mean_umis", mean_umis, positive=True),
        library_sigma=check_number("library_sigma", library_sigma, minimum=0),
        likelihood=likelihood,
        dispersion=check_number("dispersion", dispersion, minimum=0),
        n_proteins=check_int("n_proteins", n_proteins, 0),
        protein_noise=check_number("protein_noise", protein_noise, minimum=0),
        time_noise=check_number("time_noise", time_noise, minimum=0), spatial=bool(spatial),
        seed=check_seed(seed))
    if o.mean_umis > 1e7:
        raise ValueError(f"mean_umis must be at most 1e7 per cell, got {o.mean_umis:g}")
    if o.library_sigma > 3:
        raise ValueError(f"library_sigma must be at most 3, got {o.library_sigma:g}")
    return o


def _cell_range(cells: slice | None, n_cells: int) -> tuple[int, int]:
    if cells is None:
        return 0, n_cells
    if not isinstance(cells, slice):
        raise TypeError(f"cells must be a slice or None, got {type(cells).__name__}")
    start, stop, step = cells.indices(n_cells)
    if step != 1:
        raise ValueError(f"cells must be a contiguous slice (step 1), got step {cells.step}")
    return start, max(start, stop)


def _generate(model: _Model, start: int, stop: int) -> dict[str, Any]:
    """Cells [start, stop): their blocks generated whole, then sliced and joined."""
    parts: dict[str, list] = {}
    indptrs, nnz = [], 0
    for b in range(start // BLOCK, -(-stop // BLOCK)):
        blk = model.block(b)
        lo, hi = max(start - b * BLOCK, 0), min(stop - b * BLOCK, BLOCK)
        a, z = blk["indptr"][lo], blk["indptr"][hi]
        indptrs.append(blk["indptr"][lo + 1:hi + 1] - a + nnz)
        nnz += z - a
        parts.setdefault("indices", []).append(blk["indices"][a:z])
        parts.setdefault("data", []).append(blk["data"][a:z])
        for name in ("types", "z", "library", "time", "protein", "spatial"):
            if blk[name] is not None:
                parts.setdefault(name, []).append(blk[name][lo:hi])
    out = {k: np.concatenate(v) for k, v in parts.items()}
    indptr = np.concatenate([[0], *indptrs]).astype(np.int64)
    index_dtype = np.int32 if nnz < 2**31 else np.int64
    out["X"] = sp.csr_matrix((out.pop("data"), out.pop("indices").astype(index_dtype),
                              indptr.astype(index_dtype)),
                             shape=(stop - start, model.o.n_genes))
    return out


def _obs(model: _Model, start: int, types, time, library) -> pd.DataFrame:
    o = model.o
    width = len(str(o.n_cells - 1))
    names = [f"cell_{i:0{width}d}" for i in range(start, start + len(types))]
    obs = pd.DataFrame(index=pd.Index(names, dtype=object))
    obs["cell_type"] = pd.Categorical.from_codes(types, _type_names(o))
    if time is not None:
        obs["time"] = time
    obs["library_size"] = library
    return obs


def _type_names(o: _Options) -> list[str]:
    return [f"type_{t}" for t in range(o.n_types)]


def _var(model: _Model) -> pd.DataFrame:
    o = model.o
    width = len(str(o.n_genes - 1))
    var = pd.DataFrame(index=pd.Index([f"gene_{g:0{width}d}" for g in range(o.n_genes)],
                                      dtype=object))
    var["mean_proportion"] = model.gene_mean
    var["dispersion"] = model.phi if o.likelihood == "nb" else np.zeros(o.n_genes)
    var["marker"] = model.marker
    var["program_gene"] = model.p_index >= 0
    return var


def _state(model: _Model, types, z) -> np.ndarray:
    onehot = np.eye(model.o.n_types, dtype=np.float32)[types]
    return np.hstack([onehot, z.astype(np.float32)])


def _uns(o: _Options, start: int, stop: int) -> dict[str, Any]:
    from .. import __version__

    rec: dict[str, Any] = {k: (v if not isinstance(v, bool) else bool(v))
                           for k, v in o.__dict__.items()}
    rec.update(
        version=__version__, cells=[start, stop], block_cells=BLOCK,
        type_names=_type_names(o),
        protein_names=[f"protein_{p}" for p in range(o.n_proteins)],
        state_columns=_type_names(o) + [f"program_{k}" for k in range(o.n_programs)],
        gene_sigma=GENE_SIGMA, dispersion_spread=DISPERSION_SPREAD,
        marker_fraction=MARKER_FRACTION, type_effect=TYPE_EFFECT,
        type_size_sigma=TYPE_SIZE_SIGMA, program_genes=PROGRAM_GENES,
        program_effect=PROGRAM_EFFECT, program_type_shift=PROGRAM_TYPE_SHIFT,
        protein_log_mean=PROTEIN_LOG_MEAN, spatial_mixing=SPATIAL_MIXING,
        spatial_smooth=SPATIAL_SMOOTH, cell_spacing_um=CELL_SPACING_UM)
    return rec


def _obsm(model: _Model, part: dict[str, Any]) -> dict[str, np.ndarray]:
    obsm = {"state": _state(model, part["types"], part["z"])}
    if model.o.n_proteins:
        obsm["protein"] = part["protein"]
    if model.o.spatial:
        obsm["spatial"] = part["spatial"]
    return obsm


def simulate(
    n_cells: int = 1000,
    n_genes: int = 20000,
    *,
    n_types: int = 8,
    n_programs: int = 4,
    mean_umis: float = 3000.0,
    library_sigma: float = 0.45,
    likelihood: str = "nb",
    dispersion: float = 0.2,
    n_proteins: int = 20,
    protein_noise: float = 0.3,
    time_noise: float = 0.1,
    spatial: bool = False,
    seed: int = 0,
    cells: slice | None = None,
):
    """Simulate a 10x-like dataset with known cell types, programs and auxiliary signals.

    Returns an AnnData: ``X`` raw UMI counts (CSR, float32, int32 indices); ``obs``
    ``cell_type`` (categorical), ``time`` (when ``n_programs > 0``), ``library_size`` (the
    expected UMIs of the cell); ``obsm`` ``state`` (one-hot type, then programs),
    ``protein`` (counts, when ``n_proteins > 0``), ``spatial`` (µm, when ``spatial=True``);
    ``var`` the true gene parameters; ``uns['simulation']`` every generating parameter.

    Parameters
    ----------
    n_cells, n_genes
        Size of the dataset (``cells=`` selects a part of it).
    n_types, n_programs
        Cell types (clusters) and continuous programs (gene modules) in the latent state.
    mean_umis, library_sigma
        Mean UMIs per cell and the sd of log library size across cells.
    likelihood, dispersion
        ``"nb"`` (negative binomial, median gene dispersion ``dispersion``) or ``"poisson"``.
    n_proteins, protein_noise
        Size of the CITE-seq-like panel and the sd of its log-scale noise given the state.
    time_noise
        sd of the noise added to the time-like scalar ``Phi(program_0)``.
    spatial
        Also place cells in space, with types in patches and programs smooth in space.
    seed
        Integer in [0, 2**64); the same seed gives the same data, bit for bit.
    cells
        A contiguous slice of the ``n_cells`` cells, equal to those rows of the whole.
    """
    import anndata as ad

    o = _options(n_cells, n_genes, n_types, n_programs, mean_umis, library_sigma, likelihood,
                 dispersion, n_proteins, protein_noise, time_noise, spatial, seed)
    start, stop = _cell_range(cells, o.n_cells)
    model = _Model(o)
    part = _generate(model, start, stop)
    return ad.AnnData(X=part["X"],
                      obs=_obs(model, start, part["types"], part.get("time"), part["library"]),
                      var=_var(model), obsm=_obsm(model, part),
                      uns={"simulation": _uns(o, start, stop)})


def simulate_file(
    path: str | os.PathLike,
    n_cells: int,
    n_genes: int = 20000,
    *,
    chunk_cells: int | None = None,
    overwrite: bool = False,
    compression: str | None = None,
    progress: bool = False,
    cancel: threading.Event | None = None,
    **params: Any,
) -> Path:
    """Write :func:`simulate` ``(n_cells, n_genes, **params)`` to an .h5ad/.zarr, chunk by chunk.

    The file equals the in-memory result for any ``chunk_cells`` (default 8,192 cells).
    Memory holds one chunk plus the per-cell ``obs`` columns. The store is built in a hidden
    temporary sibling and renamed into place when complete; an error or a set ``cancel``
    event leaves nothing behind, and an existing ``path`` is replaced only with
    ``overwrite=True``. ``params`` are the keyword arguments of :func:`simulate` except
    ``cells``. Returns the path.
    """
    if "cells" in params:
        raise TypeError("simulate_file writes every cell; cells= is not accepted")
    unknown = set(params) - set(_SIMULATE_KEYWORDS)
    if unknown:
        raise TypeError(f"unknown simulate parameter(s): {', '.join(sorted(unknown))}")
    kw = {**_SIMULATE_KEYWORDS, **params}
    o = _options(n_cells, n_genes, **kw)
    rows = 8192 if chunk_cells is None else check_int("chunk_cells", chunk_cells)
    model = _Model(o)
    columns: dict[str, list] = {"types": [], "time": [], "library": []}
    store_format(Path(path), existing=False)
    check_destination(Path(path), overwrite)

    def chunk(part: dict[str, Any], start: int) -> list[dict[str, Any]]:
        for name in columns:
            if part.get(name) is not None:
                columns[name].append(part[name])
        obsm = {f"obsm/{name}": value for name, value in _obsm(model, part).items()}
        return [{"X": part["X"], **obsm}]

    def finish(writers) -> None:
        joined = {k: np.concatenate(v) if v else None for k, v in columns.items()}
        w = writers[0]
        w.write("obs", _obs(model, 0, joined["types"], joined["time"], joined["library"]))
        w.write("var", _var(model))
        w.write("uns", {"simulation": _uns(o, 0, o.n_cells)})

    return run_chunks([path], o.n_cells, rows,
                      load=lambda k, start, stop: _generate(model, start, stop),
                      compute=chunk, finish=finish, overwrite=overwrite,
                      compression=compression, progress=progress,
                      desc=f"simulating {Path(path).name}", cancel=cancel)[0]


_SIMULATE_KEYWORDS: dict[str, Any] = {
    k: v.default for k, v in inspect.signature(simulate).parameters.items()
    if v.kind is v.KEYWORD_ONLY and k != "cells"}


def count_statistics(X) -> dict[str, float]:
    """Summary statistics of a raw count matrix, for comparing simulated with real data.

    ``mean_umis`` and ``log_library_sd`` (depth), ``zero_fraction``, ``detected_median`` and
    ``detected_vs_depth_slope`` (log genes detected against log depth), ``mean_var_slope``
    (log variance against log mean of depth-normalized genes with mean > 0.05),
    ``overdispersion`` (median (var - mean) / mean^2 of genes with mean > 0.5) and
    ``excess_zeros`` (median zero fraction beyond Poisson of genes with mean 0.1-2).
    Cells without counts are left out.
    """
    X = sp.csr_matrix(X, dtype=np.float64, copy=True)  # never the caller's arrays
    X.sum_duplicates()  # detected genes and zeros count genes, not stored entries
    X.eliminate_zeros()
    total = np.asarray(X.sum(1)).ravel()
    X, total = X[total > 0], total[total > 0]
    detected = np.diff(X.indptr)
    norm = sp.diags(np.median(total) / total) @ X
    mean = np.asarray(norm.mean(0)).ravel()
    var = np.asarray(norm.multiply(norm).mean(0)).ravel() - mean**2
    sel, high = mean > 0.05, mean > 0.5
    raw_mean = np.asarray(X.mean(0)).ravel()
    p0 = 1 - np.bincount(X.indices, minlength=X.shape[1]) / X.shape[0]
    mid = (raw_mean > 0.1) & (raw_mean < 2)
    return {k: float(v) for k, v in {
        "mean_umis": total.mean(),
        "log_library_sd": np.log(total).std(),
        "zero_fraction": 1 - X.nnz / np.prod(X.shape),
        "detected_median": np.median(detected),
        "detected_vs_depth_slope": np.polyfit(np.log(total), np.log(detected), 1)[0],
        "mean_var_slope": np.polyfit(np.log(mean[sel]), np.log(var[sel]), 1)[0],
        "overdispersion": np.median((var[high] - mean[high]) / mean[high] ** 2),
        "excess_zeros": np.median(p0[mid] - np.exp(-raw_mean[mid])),
    }.items()}
