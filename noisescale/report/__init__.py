"""What a person looks at: figures that draw the fits they are given (:mod:`.plots`) and the
self-contained HTML report of a sweep (:func:`write_report`), and every figure of the paper
as PNG/PDF files with their tables (:func:`figures`). Nothing here fits a law: fits
come from :mod:`noisescale.laws` (:func:`~noisescale.laws.fit_results`)."""

from __future__ import annotations

from .figures import FigureSet, figures
from .html import write_report
from .plots import cell_curves, collapse_plot, parameter_comparison, residuals, scaling_curves

__all__ = ["FigureSet", "cell_curves", "collapse_plot", "figures", "parameter_comparison",
           "residuals", "scaling_curves", "write_report"]
