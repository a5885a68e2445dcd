"""
Spectral and temporal features
"""

from __future__ import annotations

from . import f32, f64

__all__: list[str] = ["f32", "f64"]
