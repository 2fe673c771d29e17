"""Scaling laws: how information grows with sequencing depth and with cell number.

Functions of the laws (:mod:`.forms`), least-squares fits with uncertainty and reliability
flags (:mod:`.fit`), and what to conclude from them (:mod:`.analysis`): one fit per group of a
results table, the collapse onto the universal curve, comparisons of parameters between
models or datasets, and the choice of cell number and depth for a budget. :mod:`.results`
holds the results schema of a sweep and :func:`fit_results`, the fits of a results table.
"""

from __future__ import annotations

from .analysis import BudgetPlan, Comparison, collapse, compare, fit_table, optimize_budget
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
    "RESULT_COLUMNS", "TIMING_COLUMNS", "BudgetPlan", "CellLawFit", "Comparison",
    "JointLawFit", "LawFit", "NoiseLawFit", "cell_law",
    "cells_for_bits", "cells_for_fraction", "collapse", "collapse_value", "compare",
    "depth_for_bits", "depth_for_fraction", "fit_cell_law", "fit_joint_law", "fit_noise_law",
    "fit_results", "fit_table", "from_ab", "joint_law", "noise_law", "noise_law_ab",
    "optimize_budget", "read_results", "replicate_sigma", "to_ab",
]
