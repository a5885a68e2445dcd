"""Host side of the CUDA plans: parameter sets, the tables built by the CPU code, plan cache.

A :class:`PlanSpec` is one parameter set (librosa's defaults unless a call says otherwise).
:func:`plan_config` turns it into the dict that ``_cuda.FeaturePlan`` takes, with every table
computed on the host by the same code the CPU plans use: the window (``get_window``), the mel
bank (the CPU's cached dense bank, compressed to CSR in C++ by ``make_sparse_rows``), the DCT
matrix, the Savitzky-Golay coefficients (read off the CPU ``delta``), contrast's band edges,
``fft_frequencies``. None of this needs a GPU.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from typing import Any

import numpy as np

from ..audio.spectral import contrast_bands
from ..exceptions import ParameterError

__all__ = ["PlanSpec", "contrast_bands", "delta_coefficients", "get_plan", "plan_config"]

# Outputs a plan can give, with (rows key, dtype of the native result).
OUTPUT_DTYPES: dict[str, str] = {
    "stft": "complex64",
    "spectrum": "float32",
    "mel": "float32",
    "mel_db": "float32",
    "mfcc": "float32",
    "mfcc_delta": "float32",
    "mfcc_delta2": "float32",
    "centroid": "float64",
    "bandwidth": "float64",
    "rolloff": "float64",
    "flatness": "float32",
    "flux": "float32",
    "contrast": "float64",
    "chroma": "float32",
    "onset": "float32",
    "onset_median": "float32",
    "zcr": "float64",
    "rms": "float32",
}


def _hashable_window(window: Any) -> Any:
    if isinstance(window, (str, float, int)):
        return window
    if isinstance(window, tuple) and all(isinstance(v, (str, float, int)) for v in window):
        return window
    if isinstance(window, (list, np.ndarray)):
        arr = np.asarray(window, dtype=np.float64)
        return ("__array__", arr.tobytes())
    raise ParameterError(f"the CUDA backend needs a window name, tuple or array, got {window!r}")


@dataclass(frozen=True)
class PlanSpec:
    """One CUDA plan's parameters (librosa 0.11's defaults)."""

    sr: float = 22050.0
    n_fft: int = 2048
    hop_length: int = 512
    win_length: int | None = None
    window: Any = "hann"
    center: bool = True
    # mel
    n_mels: int = 128
    fmin: float = 0.0
    fmax: float | None = None
    htk: bool = False
    mel_norm: Any = "slaney"
    mel_power: float = 2.0
    # dB and MFCC
    top_db: float | None = 80.0
    n_mfcc: int = 20
    dct_type: int = 2
    dct_norm: str | None = "ortho"
    lifter: float = 0.0
    delta_width: int = 9
    # spectral
    roll_percent: float = 0.85
    bandwidth_p: float = 2.0
    bandwidth_norm: bool = True
    flatness_amin: float = 1e-10
    flatness_power: float = 2.0
    contrast_fmin: float = 200.0
    contrast_n_bands: int = 6
    contrast_quantile: float = 0.02
    contrast_linear: bool = False
    # chroma_stft (tuning None: estimated on the device)
    n_chroma: int = 12
    tuning: float | None = None
    # onset strength
    onset_lag: int = 1
    # zero-crossing rate and RMS
    frame_length: int = 2048
    temporal_hop: int = 512
    temporal_center: bool = True
    zcr_threshold: float = 1e-10
    zero_pos: bool = True
    # the periodic Hann window as three taps on the spectrum (exact; off: window the frames)
    hann_taps: bool = True
    # n_fft 2048 only: frame, window and transform inside the frame-tile kernel (one warp per
    # frame, no cuFFT, the spectrum never in device memory). Off by default until verified on
    # a device; other sizes ignore it.
    fused: bool = False
    workspace_limit: int = 1 << 30

    def normalized(self) -> PlanSpec:
        """Validated, with equivalent spellings merged so that equal plans share a cache entry."""
        from ..audio._validation import is_positive_int

        if not is_positive_int(self.n_fft):
            raise ParameterError(f"n_fft={self.n_fft} must be a positive integer")
        if not is_positive_int(self.hop_length):
            raise ParameterError(f"hop_length={self.hop_length} must be a positive integer")
        win = self.n_fft if self.win_length is None else self.win_length
        if not is_positive_int(win) or win > self.n_fft:
            raise ParameterError(f"win_length={self.win_length} must be in (0, n_fft={self.n_fft}]")
        if not self.sr > 0:
            raise ParameterError(f"sr={self.sr} must be positive")
        fmax = float(self.sr) / 2 if self.fmax is None else float(self.fmax)
        return replace(
            self,
            sr=float(self.sr),
            n_fft=int(self.n_fft),
            hop_length=int(self.hop_length),
            win_length=int(win),
            window=_hashable_window(self.window),
            fmin=float(self.fmin),
            fmax=fmax,
            tuning=None if self.tuning is None else float(self.tuning),
        )

    @property
    def uses_hann_taps(self) -> bool:
        return (
            self.hann_taps
            and self.window == "hann"
            and self.win_length in (None, self.n_fft)
            and self.n_fft % 2 == 0
        )

    @property
    def n_mfcc_out(self) -> int:
        return len(range(self.n_mels)[: self.n_mfcc])


@lru_cache(maxsize=16)
def delta_coefficients(width: int, order: int) -> np.ndarray:
    """Weights w (width values) with delta(x)[t] = sum_j w[j] x[t - width//2 + j] in the
    interior, read off the CPU implementation (scipy's savgol_filter) by filtering an impulse."""
    from ..audio import delta

    if width < 3 or width % 2 != 1:
        raise ParameterError(f"width={width} must be an odd integer >= 3")
    h = width // 2
    p = 2 * width
    impulse = np.zeros(4 * width + 1)
    impulse[p] = 1.0
    y = np.asarray(delta(impulse, width=width, order=order), dtype=np.float64)
    w = np.array([y[p + h - j] for j in range(width)])
    w.setflags(write=False)
    return w


def plan_config(spec: PlanSpec, device: int) -> dict[str, Any]:
    """The host tables and parameters of ``_cuda.FeaturePlan`` for this parameter set."""
    from ..audio import _plans
    from ..audio.convert import fft_frequencies
    from ..audio.spectrum import _stft_window

    spec = spec.normalized()
    window = spec.window
    if isinstance(window, tuple) and window and window[0] == "__array__":
        window = np.frombuffer(window[1], dtype=np.float64)
    fft_window = _stft_window(window, spec.win_length, spec.n_fft)
    freq = np.ascontiguousarray(fft_frequencies(sr=spec.sr, n_fft=spec.n_fft), dtype=np.float64)
    cfg: dict[str, Any] = {
        "device": int(device),
        "n_fft": spec.n_fft,
        "hop_length": spec.hop_length,
        "window": np.ascontiguousarray(fft_window, dtype=np.float32),
        "center": bool(spec.center),
        "hann_shortcut": bool(spec.uses_hann_taps),
        "fused": bool(spec.fused),
        "sr": spec.sr,
        "freq": freq,
        "top_db": -1.0 if spec.top_db is None else float(spec.top_db),
        "roll_percent": float(spec.roll_percent),
        "bandwidth_p": float(spec.bandwidth_p),
        "bandwidth_norm": bool(spec.bandwidth_norm),
        "flatness_amin": float(spec.flatness_amin),
        "flatness_power": float(spec.flatness_power),
        "contrast_linear": bool(spec.contrast_linear),
        "n_chroma": int(spec.n_chroma),
        "tuning": math.nan if spec.tuning is None else float(spec.tuning),
        "onset_lag": int(spec.onset_lag),
        "frame_length": int(spec.frame_length),
        "temporal_hop": int(spec.temporal_hop),
        "temporal_center": bool(spec.temporal_center),
        "zcr_threshold": float(spec.zcr_threshold),
        "zero_pos": bool(spec.zero_pos),
        "workspace_limit": int(spec.workspace_limit),
    }
    if spec.n_mels > 0:
        basis, _ = _plans.mel_bank(
            spec.sr,
            spec.n_fft,
            {
                "n_mels": spec.n_mels,
                "fmin": spec.fmin,
                "fmax": spec.fmax,
                "htk": spec.htk,
                "norm": spec.mel_norm,
                "dtype": np.float32,
            },
        )
        cfg["mel_basis"] = np.ascontiguousarray(basis, dtype=np.float32)
        cfg["n_mels"] = int(basis.shape[0])
        cfg["mel_power"] = float(spec.mel_power)
        if spec.n_mfcc_out > 0:
            if spec.dct_type not in (1, 2, 3) or spec.dct_norm not in (None, "ortho", "backward"):
                raise ParameterError(
                    f"the CUDA backend supports dct_type 1-3 with norm None or 'ortho', got "
                    f"dct_type={spec.dct_type}, norm={spec.dct_norm!r}"
                )
            if spec.lifter < 0:
                raise ParameterError(f"MFCC lifter={spec.lifter} must be a non-negative number")
            m = np.array(
                _plans.dct_matrix(
                    spec.dct_type, spec.n_mfcc_out, spec.n_mels, spec.dct_norm == "ortho"
                ),
                dtype=np.float64,
            )
            if spec.lifter > 0:
                lift = 1 + (spec.lifter / 2) * np.sin(
                    np.pi * np.arange(1, 1 + spec.n_mfcc_out) / spec.lifter
                )
                m = m * lift[:, np.newaxis]
            cfg["dct"] = np.ascontiguousarray(m, dtype=np.float32)
            cfg["n_mfcc"] = spec.n_mfcc_out
    if spec.delta_width:
        cfg["delta1"] = delta_coefficients(int(spec.delta_width), 1)
        cfg["delta2"] = delta_coefficients(int(spec.delta_width), 2)
    if spec.contrast_n_bands:
        bands = contrast_bands(
            freq, spec.sr, spec.contrast_fmin, spec.contrast_n_bands, spec.contrast_quantile
        )
        cfg["contrast_bands"] = np.asarray(bands, dtype=np.int32).ravel()
    if spec.tuning is not None and not np.isfinite(spec.tuning):
        raise ParameterError(f"tuning={spec.tuning} must be finite")
    return cfg


@lru_cache(maxsize=16)
def _cached_plan(spec: PlanSpec, device: int) -> Any:
    from .._native import cuda

    return cuda().FeaturePlan(plan_config(spec, device))


def get_plan(spec: PlanSpec, device: int) -> Any:
    """The compiled plan for this parameter set on ``device``, built once and cached."""
    return _cached_plan(spec.normalized(), int(device))


def spec_dict(spec: PlanSpec) -> dict[str, Any]:
    return asdict(spec)
