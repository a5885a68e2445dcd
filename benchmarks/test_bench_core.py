"""stft power, melspectrogram and mfcc with deltas: librosa against ml_utilities, same run.

The results are checked inside each benchmark (relative Frobenius error), so a fast wrong
answer fails instead of scoring.
"""

from __future__ import annotations

import librosa
import numpy as np
import pytest

from ml_utilities.compat import librosa as mlu

_RESULTS: dict = {}
WORKLOADS = ["clip30", "long10min", "batch64"]


def rel(a, b) -> float:
    return float(np.linalg.norm(np.asarray(a, np.float64) - b) / np.linalg.norm(b))


def stft_power(lib, y):
    return np.abs(lib.stft(y)) ** 2


def mel(lib, y):
    return lib.feature.melspectrogram(y=y, sr=22050)


def mfcc_deltas(lib, y):
    m = lib.feature.mfcc(y=y, sr=22050, n_mfcc=13)
    return np.concatenate(
        [m, lib.feature.delta(m), lib.feature.delta(m, order=2)], axis=-2
    )


CASES = {"stft_power": (stft_power, 1e-5), "melspectrogram": (mel, 1e-4), "mfcc_deltas": (mfcc_deltas, 1e-4)}


@pytest.mark.parametrize("workload", WORKLOADS)
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("side", ["peer", "ours"])
def test_core(benchmark, request, workload, case, side):
    y = request.getfixturevalue(workload)
    fn, tol = CASES[case]
    lib = mlu if side == "ours" else librosa
    benchmark.group = f"{case}/{workload}"
    benchmark.name = f"{side}"
    rounds = 1 if workload != "clip30" else 5
    result = benchmark.pedantic(fn, args=(lib, y), rounds=rounds, iterations=1, warmup_rounds=1)
    # Whichever side runs second checks the pair (librosa's top_db spans the whole batch, so
    # a batch is compared whole, never item by item).
    key = (case, workload)
    other = _RESULTS.pop(key, None)
    if other is None:
        _RESULTS[key] = result
    else:
        assert result.shape == other.shape
        ours, peer = (result, other) if side == "ours" else (other, result)
        assert rel(ours, peer) <= tol
