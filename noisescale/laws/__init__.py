"""Scaling laws: how information grows with sequencing depth and with cell number.

Functions of the laws (:mod:`.forms`), least-squares fits with uncertainty and reliability
flags (:mod:`.fit`), and what to conclude from them (:mod:`.analysis`): one fit per group of a
results table, the collapse onto the universal curve, comparisons of parameters between
models or datasets, and the choice of cell number and depth for a budget.
"""

from __future__ import annotations

from .analysis import BudgetPlan, Comparison, collapse, compare, fit_table, optimize_budget
from .fit import LawFit, fit_cell_law, fit_joint_law, fit_noise_law, replicate_sigma
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
    "BudgetPlan", "Comparison", "LawFit", "cell_law", "cells_for_bits", "cells_for_fraction",
    "collapse", "collapse_value", "compare", "depth_for_bits", "depth_for_fraction",
    "fit_cell_law", "fit_joint_law", "fit_noise_law", "fit_table", "from_ab", "joint_law",
    "noise_law", "noise_law_ab", "optimize_budget", "replicate_sigma", "to_ab",
]
