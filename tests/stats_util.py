"""Goodness-of-fit helpers: chi-square against an exact discrete pmf on merged bins."""

from __future__ import annotations

import numpy as np
from scipy import stats


def chisquare_pvalue(samples: np.ndarray, dist, n_bins: int = 40) -> float:
    """p-value of a chi-square test of integer samples against a frozen scipy discrete dist.

    The support is cut into about `n_bins` bins of similar probability (at least ~5 expected
    counts each), so the test works from Bernoulli to counts in the millions.
    """
    samples = np.asarray(samples, dtype=np.int64)
    n = samples.size
    lo, hi = int(dist.ppf(1e-12)), int(dist.isf(1e-12))
    edges = [lo]
    target = max(1.0 / n_bins, 5.0 / n)
    acc_start = dist.cdf(lo - 1)
    k = lo
    # Walk the support by quantiles to form bins [edge_i, edge_{i+1}).
    while True:
        q = min(acc_start + target, 1.0)
        nxt = int(dist.ppf(q)) + 1
        if nxt <= k:
            nxt = k + 1
        if nxt > hi:
            break
        edges.append(nxt)
        acc_start = dist.cdf(nxt - 1)
        k = nxt
    edges = np.array(edges + [hi + 1])
    probs = np.diff(np.concatenate([[dist.cdf(lo - 1)], dist.cdf(edges[1:] - 1)]))
    probs[0] += dist.cdf(lo - 1)          # everything below the first edge
    probs[-1] += dist.sf(edges[-1] - 1)   # and above the last
    observed = np.histogram(np.clip(samples, edges[0], edges[-1] - 1), bins=edges)[0]
    expected = probs / probs.sum() * n
    keep = expected > 0
    if keep.sum() < 2:
        return 1.0 if np.all(observed[~keep] == 0) else 0.0
    return float(stats.chisquare(observed[keep], expected[keep]).pvalue)


def mean_var_z(samples: np.ndarray, mean: float, var: float) -> tuple[float, float]:
    """z-scores of the sample mean and sample variance against the true moments."""
    x = np.asarray(samples, dtype=np.float64)
    n = x.size
    if var > 0:
        z_mean = (x.mean() - mean) / np.sqrt(var / n)
    else:
        z_mean = 0.0 if x.mean() == mean else np.inf
    # Var of the sample variance ~ (mu4 - var^2) / n; use the sample 4th central moment.
    m4 = np.mean((x - x.mean()) ** 4)
    sd_var = np.sqrt(max(m4 - var**2, 1e-300) / n)
    z_var = (x.var(ddof=1) - var) / sd_var if var > 0 else (0.0 if x.var() == 0 else np.inf)
    return float(z_mean), float(z_var)
