"""Auxiliary signals: what a representation of a cell is asked to carry information about.

A :class:`Signal` is built from a :class:`~noisescale.sweep.config.SignalSpec`. On the full
dataset it checks that its columns exist (:meth:`Signal.validate`, before any work starts) and
may ask for a grouped split (:meth:`Signal.groups`: sister cells stay on one side). On the
held-out cells it turns ``obs``/``obsm`` into plain arrays (:meth:`Signal.prepare`), and
:func:`estimate` measures the MI between those cells' embeddings and the prepared signal:

=====================  ===================================================================
categorical            MI(embedding; label)
continuous             MI(embedding; obsm matrix or obs columns), log1p by default
time                   MI(embedding; a scalar obs column)
clone_pairs            one early and one late sister cell per clone: MI(z_early; z_late)
spatial_neighbor       each cell and a random one of its k nearest spatial neighbours:
                       MI(z_cell; z_neighbour)
=====================  ===================================================================

by the signal's estimator (any :data:`noisescale.mi.METHODS` that applies; ``"auto"``:
:func:`resolve_estimator`) through :func:`noisescale.mi.estimate`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._internal.seeding import generator
from ..errors import ConfigError
from .config import EstimatorSpec, SignalSpec

if TYPE_CHECKING:
    from ..mi import MIEstimate


@dataclass
class PreparedSignal:
    """A signal on the held-out cells as arrays: ``y`` per cell, or index ``pairs``."""

    name: str
    kind: str
    estimator: str                       # a method, or "auto" (see resolve_estimator)
    y: np.ndarray | None = None          # (n,) labels or (n, d) values; NaN rows are left out
    pairs: np.ndarray | None = None      # (m, 2) indices into the held-out cells

    @property
    def n_samples(self) -> int:
        if self.pairs is not None:
            return int(self.pairs.shape[0])
        return int(_valid_rows(self.y).sum())


class Signal:
    """One auxiliary signal of a sweep."""

    def __init__(self, spec: SignalSpec):
        self.spec = spec
        self.o = spec.options

    @property
    def name(self) -> str:
        return self.spec.name

    # -- on the full dataset ---------------------------------------------------------------
    def validate(self, adata) -> None:
        """Raise :class:`ConfigError` if a column or key this signal reads is missing."""
        kind = self.spec.kind
        if kind in ("categorical", "time"):
            _obs_column(adata, self.o["column"], self.name)
            if kind == "time":
                _numeric(adata.obs[self.o["column"]], f"signal {self.name!r}: obs column "
                                                      f"{self.o['column']!r}")
        elif kind == "continuous":
            values = self._continuous(adata)
            if not np.isfinite(values[_valid_rows(values)]).all():
                raise ConfigError(f"signal {self.name!r}: values contain infinities")
            if self.o["transform"] == "log1p" and np.nanmin(values) < 0:
                raise ConfigError(f"signal {self.name!r}: transform = 'log1p' needs "
                                  "non-negative values (set transform = 'none')")
        elif kind == "clone_pairs":
            _clone_ids(adata, self.o["clone_key"], self.name)
            times = _numeric(_obs_column(adata, self.o["time_column"], self.name),
                             f"signal {self.name!r}: time column")
            early, late = self._early_late(times)
            for label, t in (("early", early), ("late", late)):
                if not np.any(times == t):
                    raise ConfigError(f"signal {self.name!r}: no cell has {label} time {t} in "
                                      f"obs[{self.o['time_column']!r}] (times: "
                                      f"{sorted(set(times[np.isfinite(times)].tolist()))})")
            if early >= late:
                raise ConfigError(f"signal {self.name!r}: early time {early} must be before "
                                  f"late time {late}")
        elif kind == "spatial_neighbor":
            coords = _obsm(adata, self.o["key"], self.name)
            if coords.ndim != 2 or not np.isfinite(coords).all():
                raise ConfigError(f"signal {self.name!r}: obsm[{self.o['key']!r}] must be a "
                                  "finite (cells x dims) coordinate matrix")

    def groups(self, adata) -> np.ndarray | None:
        """Per-cell group ids that the train/test split must not cut (clones), or None."""
        if self.spec.kind != "clone_pairs":
            return None
        ids = _clone_ids(adata, self.o["clone_key"], self.name)
        out = ids.copy()
        lonely = ids < 0
        out[lonely] = ids.max(initial=-1) + 1 + np.arange(int(lonely.sum()))
        return out

    # -- on the held-out cells -------------------------------------------------------------
    def prepare(self, adata, seed: int) -> PreparedSignal:
        """The signal on the cells of ``adata`` (the held-out set) as arrays."""
        kind, s = self.spec.kind, self.spec
        out = PreparedSignal(name=s.name, kind=kind, estimator=s.estimator)
        if kind == "categorical":
            col = adata.obs[self.o["column"]]
            codes = pd.Series(pd.Categorical(col)).cat.codes.to_numpy().astype(np.float64)
            codes[codes < 0] = np.nan  # missing labels are left out
            out.y = codes
        elif kind == "time":
            out.y = _numeric(adata.obs[self.o["column"]], "time")
        elif kind == "continuous":
            values = self._continuous(adata)
            out.y = np.log1p(values) if self.o["transform"] == "log1p" else values
        elif kind == "clone_pairs":
            out.pairs = self._clone_pairs(adata, seed)
        elif kind == "spatial_neighbor":
            out.pairs = spatial_pairs(_obsm(adata, self.o["key"], self.name), self.o["k"], seed)
        return out

    def _continuous(self, adata) -> np.ndarray:
        if "key" in self.o:
            values = _obsm(adata, self.o["key"], self.name)
        else:
            cols = [_obs_column(adata, c, self.name) for c in self.o["columns"]]
            values = np.column_stack([_numeric(c, f"signal {self.name!r}") for c in cols])
        return values.reshape(len(values), -1).astype(np.float64)

    def _early_late(self, times: np.ndarray) -> tuple[float, float]:
        finite = times[np.isfinite(times)]
        early = float(self.o.get("early", finite.min() if finite.size else np.nan))
        late = float(self.o.get("late", finite.max() if finite.size else np.nan))
        return early, late

    def _clone_pairs(self, adata, seed: int) -> np.ndarray:
        ids = _clone_ids(adata, self.o["clone_key"], self.name)
        times = _numeric(adata.obs[self.o["time_column"]], "time")
        early, late = self._early_late(times)
        rng = generator(seed, "pairs")
        pairs = []
        for clone in np.unique(ids[ids >= 0]):
            members = ids == clone
            a = np.flatnonzero(members & (times == early))
            b = np.flatnonzero(members & (times == late))
            if a.size and b.size:
                pairs.append((a[rng.integers(a.size)], b[rng.integers(b.size)]))
        return np.asarray(pairs, dtype=np.int64).reshape(-1, 2)


def spatial_pairs(coords: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Pair each cell with a random one of its ``k`` nearest spatial neighbours.

    Candidates come from a FAISS flat index; the final order is by exact float64 distance,
    then index, so ties are broken the same way on every machine.
    """
    import faiss

    coords = np.ascontiguousarray(coords, dtype=np.float64)
    n = coords.shape[0]
    if n <= k:
        raise ValueError(f"spatial_neighbor needs more than k = {k} held-out cells, got {n}")
    extra = min(n, k + 8)
    index = faiss.IndexFlatL2(coords.shape[1])
    index.add(coords.astype(np.float32))
    _, cand = index.search(coords.astype(np.float32), extra)
    d = ((coords[cand] - coords[:, None, :]) ** 2).sum(axis=2)
    d[cand == np.arange(n)[:, None]] = np.inf  # never oneself
    order = np.lexsort((cand, d), axis=1)[:, :k]
    nearest = np.take_along_axis(cand, order, axis=1)
    rng = generator(seed, "pairs")
    pick = nearest[np.arange(n), rng.integers(k, size=n)]
    return np.column_stack([np.arange(n), pick]).astype(np.int64)


def resolve_estimator(p: PreparedSignal, z: np.ndarray) -> str:
    """The method that estimates the signal's MI with embeddings ``z``: the signal's own, or
    for ``"auto"`` :func:`noisescale.mi.default_method` of its kind, the embedding's dimension
    and the signal's (for pairs both sides are embeddings)."""
    if p.estimator != "auto":
        return p.estimator
    from ..mi import default_method

    dx = z.shape[1]
    if p.pairs is not None:
        dy = dx
    elif p.kind == "categorical":
        dy = None
    else:
        dy = 1 if p.y.ndim == 1 else p.y.shape[1]
    return default_method(p.kind, dx, dy)


def estimate(p: PreparedSignal, z: np.ndarray, est: EstimatorSpec, *, seed: int,
             threads: int | None = None) -> MIEstimate:
    """MI in bits between the embeddings ``z`` of the held-out cells and the signal, by the
    method :func:`resolve_estimator` picks, with the uncertainty and null ``est`` asks for.

    TiesWarning and WithinNullWarning are not raised here: they are the estimate's ``flags``
    (the ``mi_flags`` column), which the sweep sums up at its end."""
    from ..mi import TiesWarning, WithinNullWarning
    from ..mi import estimate as mi_estimate

    if p.pairs is not None:
        x, y = z[p.pairs[:, 0]], z[p.pairs[:, 1]]
    else:
        keep = _valid_rows(p.y)
        x, y = z[keep], p.y[keep]
    k = est.k
    if x.shape[0] <= k + 1:
        raise ValueError(f"signal {p.name!r}: only {x.shape[0]} samples among the held-out "
                         f"cells, too few for k = {k}; hold out more cells")
    method = resolve_estimator(p, z)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TiesWarning)
        warnings.simplefilter("ignore", WithinNullWarning)
        return mi_estimate(x, y, method, labels=p.kind == "categorical", k=k,
                           uncertainty=est.uncertainty, null=est.uncertainty,
                           resamples=est.resamples, shuffles=est.null_shuffles,
                           refit=est.refit, seed=seed, threads=threads,
                           **est.options.get(method, {}))


# ---------------------------------------------------------------------------------------------
# Reading obs / obsm with errors that name what is missing


def _obs_column(adata, column: str, signal: str) -> pd.Series:
    if column not in adata.obs.columns:
        raise ConfigError(f"signal {signal!r}: obs has no column {column!r} (columns: "
                          f"{list(adata.obs.columns)})")
    return adata.obs[column]


def _obsm(adata, key: str, signal: str) -> np.ndarray:
    if key not in adata.obsm:
        raise ConfigError(f"signal {signal!r}: obsm has no key {key!r} (keys: "
                          f"{list(adata.obsm.keys())})")
    value = adata.obsm[key]
    if isinstance(value, pd.DataFrame):
        value = value.to_numpy()
    value = value.toarray() if sp.issparse(value) else np.asarray(value)
    if not np.issubdtype(value.dtype, np.number):
        raise ConfigError(f"signal {signal!r}: obsm[{key!r}] is not numeric")
    return value.astype(np.float64)


def _numeric(col: pd.Series, what: str) -> np.ndarray:
    values = pd.to_numeric(pd.Series(np.asarray(col)), errors="coerce").to_numpy(np.float64)
    if np.isnan(values).all():
        raise ConfigError(f"{what} has no numeric values")
    return values


def _clone_ids(adata, key: str, signal: str) -> np.ndarray:
    """One clone id per cell (-1: in no clone) from an obsm membership matrix or obs column."""
    if key in adata.obsm:
        m = adata.obsm[key]
        m = sp.csr_matrix(m) if not isinstance(m, pd.DataFrame) else sp.csr_matrix(m.to_numpy())
        m.eliminate_zeros()
        has = np.diff(m.indptr) > 0
        ids = np.full(m.shape[0], -1, dtype=np.int64)
        ids[has] = m.indices[m.indptr[:-1][has]]  # the first clone a cell belongs to
        return ids
    if key in adata.obs.columns:
        col = adata.obs[key]
        codes = pd.Series(pd.Categorical(col)).cat.codes.to_numpy().astype(np.int64)
        return codes  # missing ids are -1
    raise ConfigError(f"signal {signal!r}: no clone membership under {key!r}: neither an obsm "
                      f"key ({list(adata.obsm.keys())}) nor an obs column")


def _valid_rows(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64)
    return ~np.isnan(y).any(axis=1) if y.ndim == 2 else ~np.isnan(y)
