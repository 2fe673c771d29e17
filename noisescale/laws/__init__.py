"""Scaling laws: how information grows with sequencing depth and with cell number.

Functions of the laws (:mod:`.forms`), least-squares fits with uncertainty and reliability
flags (:mod:`.fit`), and what to conclude from them (:mod:`.analysis`): one fit per group of a
results table, the collapse onto the universal curve, comparisons of parameters between
models or datasets, and the choice of cell number and depth for a budget. :mod:`.results`
holds the results schema of a sweep and :func:`fit_results`, the fits of a results table.
"""

from __future__ import annotations

from .analysis import (
    BudgetPlan,
    Comparison,
    Estimate,
    cell_collapse,
    collapse,
    collapse_coordinate,
    compare,
    fit_table,
    fraction_depth,
    optimize_budget,
    ratio,
    scale_up_gain,
    universal_gap,
)
from .fit import (
    CellLawFit,
    JointLawFit,
    LawFit,
    NoiseLawFit,
    fit_cell_law,
    fit_joint_law,
    fit_noise_law,
    replicate_sigma,
)
from .results import RESULT_COLUMNS, TIMING_COLUMNS, fit_results, read_results
from .forms import (
    cell_law,
    cells_for_bits,
    cells_for_fraction,
    collapse_value,
    depth_for_bits,
    depth_for_fraction,
    from_ab,
    joint_law,
    noise_law,
    noise_law_ab,
    to_ab,
)

__all__ = [
    "RESULT_COLUMNS", "TIMING_COLUMNS", "BudgetPlan", "CellLawFit", "Comparison", "Estimate",
    "JointLawFit", "LawFit", "NoiseLawFit", "cell_collapse", "cell_law",
    "cells_for_bits", "cells_for_fraction", "collapse", "collapse_coordinate", "collapse_value",
    "compare", "depth_for_bits", "depth_for_fraction", "fit_cell_law", "fit_joint_law",
    "fit_noise_law", "fit_results", "fit_table", "fraction_depth", "from_ab", "joint_law",
    "noise_law", "noise_law_ab", "optimize_budget", "ratio", "read_results",
    "replicate_sigma", "scale_up_gain", "to_ab", "universal_gap",
]
