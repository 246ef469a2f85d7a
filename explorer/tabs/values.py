"""Forgiving readers of the numbers Gradio components send (None, "", "3", 3.7, NaN, junk text, ...).

Every tab reads its sliders, number boxes and API arguments through these, so one rule holds everywhere: a value
counts only when it is a finite number; anything else is "missing" and the caller picks its default.
"""
from __future__ import annotations

import math
from typing import Any

from ..views import capsules
from ..views.couplings import num_iterations


def finite_float(value: Any, default: float | None = None) -> float | None:
    """float(value) when that is a finite number, else `default` (None, "", junk text, NaN and ±inf all are)."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        return default
    return f if math.isfinite(f) else default


def int_or_none(value: Any) -> int | None:
    """finite_float(value) truncated towards 0 ("3.7" -> 3), or None when it is not a finite number."""
    f = finite_float(value)
    return None if f is None else int(f)


def clamp_iteration(analysis: capsules.Analysis, iteration: Any) -> int:
    """A valid 1-based routing iteration for this analysis (missing, junk and out of range: the last)."""
    r = num_iterations(analysis.output)
    it = int_or_none(iteration)
    return it if it is not None and 1 <= it <= r else r


__all__ = ["clamp_iteration", "finite_float", "int_or_none"]
