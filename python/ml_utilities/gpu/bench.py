"""``ml-utilities bench --device cuda``: the CUDA backend against torchaudio and a torch.stft
pipeline, in the same run, on the same device.

Two inputs: one 30 s clip and a batch of 512 x 30 s (64 with ``quick``), at 22,050 Hz. Rows:
our MFCC (13 coefficients, 128 Slaney mels, n_fft 2048, hop 512), ``torchaudio.transforms.MFCC``
with the same parameters, the same MFCC written with ``torch.stft`` + matmuls, ``torch.stft``
power alone, and our whole frame-level feature set from one plan. For each: the median time of
``repeat`` runs after a warm-up (the device synchronised around each), hours of audio per
second, peak device memory (the array library's allocator plus our plans' stream-ordered
workspace), and the fraction of the floor: the time to read the input once at the measured
device copy rate, divided by the time taken. Our results are checked against the CPU backend
inside the benchmark (relative Frobenius error on the first clip).

Needs torch with CUDA (the inputs are torch tensors); torchaudio rows are skipped, with a note,
where it is not installed.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["DeviceBenchResult", "copy_rate", "format_device_table", "run_device_bench", "targets"]

SR = 22050
SECONDS = 30.0
N_MFCC = 13
N_MELS = 128
N_FFT = 2048
HOP = 512


@dataclasses.dataclass
class DeviceBenchResult:
    case: str
    pipeline: str
    batch: int
    seconds: float  # median wall time of one call
    hours_per_second: float
    peak_bytes: int
    floor_fraction: float
    error_vs_cpu: float | None = None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _torch() -> Any:
    import torch

    if not torch.cuda.is_available():
        raise RuntimeError("torch sees no CUDA device: the device benchmark needs one")
    return torch


def copy_rate(device: Any, nbytes: int = 1 << 30, repeat: int = 5) -> float:
    """Device-to-device copy rate in bytes per second, counting the read and the write."""
    torch = _torch()
    a = torch.empty(nbytes // 4, dtype=torch.float32, device=device)
    b = torch.empty_like(a)
    times = []
    for _ in range(repeat + 1):
        torch.cuda.synchronize(device)
        start = time.perf_counter()
        b.copy_(a)
        torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    del a, b
    return 2.0 * nbytes / statistics.median(times[1:])


def _time(fn: Callable[[], Any], repeat: int, device: Any) -> tuple[float, int, int]:
    """(median seconds, torch peak bytes, plan workspace peak bytes) of fn()."""
    from .._native import cuda

    torch = _torch()
    index = device.index or 0
    fn()  # warm-up: plans, cuFFT plans, allocator
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    try:
        cuda().workspace_high_water(index, True)
    except Exception:  # pragma: no cover - without the backend
        pass
    times = []
    for _ in range(repeat):
        torch.cuda.synchronize(device)
        start = time.perf_counter()
        out = fn()
        torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
        del out
    peak = torch.cuda.max_memory_allocated(device) - base
    try:
        workspace = int(cuda().workspace_high_water(index, False))
    except Exception:  # pragma: no cover
        workspace = 0
    return statistics.median(times), int(peak), workspace


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def _pipelines(torch: Any, device: Any) -> dict[str, tuple[Callable[[Any], Any], str]]:
    from .. import audio
    from . import features

    fb = torch.from_numpy(audio.mel(sr=SR, n_fft=N_FFT, n_mels=N_MELS)).to(device)
    from ..audio import _plans

    dct = torch.from_numpy(
        np.asarray(_plans.dct_matrix(2, N_MFCC, N_MELS, True), dtype=np.float32)
    ).to(device)
    window = torch.hann_window(N_FFT, periodic=True, device=device)

    def torch_power(y: Any) -> Any:
        X = torch.stft(
            y, N_FFT, HOP, window=window, center=True, pad_mode="constant", return_complex=True
        )
        return X.real.square() + X.imag.square()

    def torch_mfcc(y: Any) -> Any:
        mel = torch.matmul(fb, torch_power(y))
        db = 10.0 * torch.log10(torch.clamp(mel, min=1e-10))
        db = torch.maximum(db, db.amax() - 80.0)
        return torch.matmul(dct, db)

    from ._spec import PlanSpec

    fused_mfcc = PlanSpec(n_mfcc=N_MFCC, fused=True)
    rows: dict[str, tuple[Callable[[Any], Any], str]] = {
        "ml_utilities mfcc": (lambda y: features.mfcc(y=y, n_mfcc=N_MFCC), "ours"),
        "ml_utilities mfcc fused": (
            lambda y: features.run(y, fused_mfcc, ["mfcc"])[0]["mfcc"],
            "ours",
        ),
        "ml_utilities full set": (lambda y: features.extract_features(y, n_mfcc=N_MFCC), "ours"),
        "ml_utilities full fused": (
            lambda y: features.extract_features(y, n_mfcc=N_MFCC, fused=True),
            "ours",
        ),
        "torch.stft mfcc": (torch_mfcc, "peer"),
        "torch.stft power": (torch_power, "peer"),
    }
    try:
        import torchaudio

        ta = torchaudio.transforms.MFCC(
            sample_rate=SR,
            n_mfcc=N_MFCC,
            melkwargs={
                "n_fft": N_FFT,
                "hop_length": HOP,
                "n_mels": N_MELS,
                "center": True,
                "pad_mode": "constant",
                "norm": "slaney",
                "mel_scale": "slaney",
                "power": 2.0,
            },
        ).to(device)
        rows["torchaudio MFCC"] = (lambda y: ta(y), "peer")
    except ImportError:
        rows["torchaudio MFCC"] = (lambda y: None, "missing")
    return rows


def run_device_bench(
    *,
    quick: bool = False,
    repeat: int = 5,
    batch: int | None = None,
    seconds: float = SECONDS,
    on_result: Callable[[DeviceBenchResult], None] | None = None,
) -> list[DeviceBenchResult]:
    """Time every pipeline on one clip and on a batch; see the module docstring."""
    from .. import audio
    from ..bench import synthetic_clip

    torch = _torch()
    device = torch.device("cuda", torch.cuda.current_device())
    rate = copy_rate(device)
    n = int(round(seconds * SR))
    big = batch if batch is not None else (64 if quick else 512)
    base = synthetic_clip(seconds=seconds)
    # different clips in the batch (shifted, scaled), built on the device
    clip = torch.from_numpy(base).to(device)
    results: list[DeviceBenchResult] = []
    cpu_mfcc = audio.mfcc(y=base, n_mfcc=N_MFCC)
    for case, count in (("1 x 30 s", 1), (f"{big} x 30 s", big)):
        shifts = torch.arange(count, device=device).unsqueeze(1) * 997
        idx = (torch.arange(n, device=device).unsqueeze(0) + shifts) % n
        y = clip[idx] * (0.5 + 0.5 * torch.rand(count, 1, device=device))
        y[0] = clip
        y = y.contiguous()
        for name, (fn, role) in _pipelines(torch, device).items():
            if role == "missing":
                row = DeviceBenchResult(
                    case,
                    name,
                    count,
                    float("nan"),
                    float("nan"),
                    0,
                    float("nan"),
                    None,
                    "torchaudio not installed",
                )
            else:
                seconds_taken, peak, workspace = _time(lambda fn=fn, y=y: fn(y), repeat, device)
                err = None
                if name.startswith("ml_utilities mfcc"):
                    got = fn(y)[0].detach().cpu().numpy()
                    err = _rel(got, cpu_mfcc)
                hours = count * seconds / 3600.0 / seconds_taken
                floor = 4.0 * count * n / rate
                row = DeviceBenchResult(
                    case,
                    name,
                    count,
                    seconds_taken,
                    hours,
                    peak + workspace,
                    floor / seconds_taken,
                    err,
                )
            results.append(row)
            if on_result is not None:
                on_result(row)
        del y
        torch.cuda.empty_cache()
    return results


def targets(results: list[DeviceBenchResult]) -> dict[str, Any]:
    """The issue's targets, from a run: MFCC on the batch >= 10x torchaudio, the whole set
    >= 1,000 h/s, one clip's MFCC no slower than torchaudio (the better of our cuFFT and fused
    paths counts)."""
    by = {(r.case.startswith("1 x"), r.pipeline): r for r in results}

    def t(single: bool, name: str) -> float:
        r = by.get((single, name))
        return r.seconds if r is not None else float("nan")

    def best(single: bool, *names: str) -> float:
        times = [t(single, name) for name in names]
        times = [x for x in times if x == x]
        return min(times) if times else float("nan")

    mfcc = ("ml_utilities mfcc", "ml_utilities mfcc fused")
    batch_ratio = t(False, "torchaudio MFCC") / best(False, *mfcc)
    single_ratio = t(True, "torchaudio MFCC") / best(True, *mfcc)
    fulls = [by.get((False, name)) for name in ("ml_utilities full set", "ml_utilities full fused")]
    hours = [
        r.hours_per_second
        for r in fulls
        if r is not None and r.hours_per_second == r.hours_per_second
    ]
    full_hours = max(hours) if hours else float("nan")
    return {
        "mfcc_batch_speedup_vs_torchaudio": batch_ratio,
        "mfcc_batch_target_10x": bool(batch_ratio >= 10),
        "full_set_hours_per_second": full_hours,
        "full_set_target_1000": bool(full_hours >= 1000),
        "mfcc_one_clip_speedup_vs_torchaudio": single_ratio,
        "mfcc_one_clip_target": bool(single_ratio >= 1),
    }


def format_device_table(results: list[DeviceBenchResult]) -> str:
    lines = [
        f"{'case':<12} {'pipeline':<26} {'time ms':>10} {'h audio/s':>10} {'peak MiB':>9} "
        f"{'of floor':>9} {'err vs CPU':>10}"
    ]
    for r in results:
        err = "" if r.error_vs_cpu is None else f"{r.error_vs_cpu:.1e}"
        lines.append(
            f"{r.case:<12} {r.pipeline:<26} {r.seconds * 1e3:>10.3f} {r.hours_per_second:>10.1f} "
            f"{r.peak_bytes / 2**20:>9.1f} {r.floor_fraction:>9.3f} {err:>10} {r.note}"
        )
    return "\n".join(lines)
