"""pytest-benchmark groups for the CUDA backend: ours against torchaudio and a torch.stft
pipeline on the same device, results checked inside the benchmark.

Run on a GPU machine: python -m pytest benchmarks/gpu --benchmark-enable -q
Each group has an "ours" and a "peer" entry (the summary prints peer / ours). Skipped with the
reason without torch CUDA, torchaudio or a working CUDA backend.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

SR = 22050


def _torch_cuda() -> Any:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch sees no CUDA device")
    import ml_utilities

    info = ml_utilities.build_info()
    if not info["cuda_loads"]:
        pytest.skip(f"the CUDA backend does not run here: {info['cuda_error']}")
    return torch


@pytest.fixture(scope="module")
def torch_mod() -> Any:
    return _torch_cuda()


@pytest.fixture(scope="module", params=[1, 512], ids=["1x30s", "512x30s"])
def batch(request: Any, torch_mod: Any, clip30: np.ndarray) -> Any:
    n = clip30.size
    clip = torch_mod.from_numpy(clip30).cuda()
    count = request.param
    idx = (
        torch_mod.arange(n, device="cuda").unsqueeze(0)
        + torch_mod.arange(count, device="cuda").unsqueeze(1) * 997
    ) % n
    return clip[idx].contiguous()


def _sync_call(torch_mod: Any, fn: Any, y: Any) -> Any:
    out = fn(y)
    torch_mod.cuda.synchronize()
    return out


def _torchaudio_mfcc(torch_mod: Any) -> Any:
    torchaudio = pytest.importorskip("torchaudio")
    return torchaudio.transforms.MFCC(
        sample_rate=SR,
        n_mfcc=13,
        melkwargs={
            "n_fft": 2048,
            "hop_length": 512,
            "n_mels": 128,
            "center": True,
            "pad_mode": "constant",
            "norm": "slaney",
            "mel_scale": "slaney",
            "power": 2.0,
        },
    ).cuda()


def test_mfcc_ours(benchmark: Any, torch_mod: Any, batch: Any, clip30: np.ndarray) -> None:
    from ml_utilities import audio
    from ml_utilities.gpu import features

    benchmark.group = f"gpu/mfcc/{batch.shape[0]}x30s"
    out = benchmark(_sync_call, torch_mod, lambda y: features.mfcc(y=y, n_mfcc=13), batch)
    want = audio.mfcc(y=clip30, n_mfcc=13)
    got = out[0].cpu().numpy()
    assert np.linalg.norm(got - want) / np.linalg.norm(want) <= 1e-4


def test_mfcc_peer_torchaudio(benchmark: Any, torch_mod: Any, batch: Any) -> None:
    ta = _torchaudio_mfcc(torch_mod)
    benchmark.group = f"gpu/mfcc/{batch.shape[0]}x30s"
    out = benchmark(_sync_call, torch_mod, ta, batch)
    assert out.shape[-2:] == (13, batch.shape[-1] // 512 + 1)


def test_stft_power_ours(benchmark: Any, torch_mod: Any, batch: Any) -> None:
    from ml_utilities.gpu import features
    from ml_utilities.gpu._spec import PlanSpec

    benchmark.group = f"gpu/stft-power/{batch.shape[0]}x30s"

    def ours(y: Any) -> Any:
        return features.run(y, PlanSpec(), ["spectrum"], spectrum_power=2.0)[0]["spectrum"]

    out = benchmark(_sync_call, torch_mod, ours, batch)
    window = torch_mod.hann_window(2048, device="cuda")
    X = torch_mod.stft(
        batch[:1], 2048, 512, window=window, center=True, pad_mode="constant", return_complex=True
    )
    ref = (X.real.square() + X.imag.square()).cpu().numpy()
    got = out[:1].cpu().numpy()
    assert np.linalg.norm(got - ref) / np.linalg.norm(ref) <= 1e-5


def test_stft_power_peer_torch(benchmark: Any, torch_mod: Any, batch: Any) -> None:
    benchmark.group = f"gpu/stft-power/{batch.shape[0]}x30s"
    window = torch_mod.hann_window(2048, device="cuda")

    def peer(y: Any) -> Any:
        X = torch_mod.stft(
            y, 2048, 512, window=window, center=True, pad_mode="constant", return_complex=True
        )
        return X.real.square() + X.imag.square()

    benchmark(_sync_call, torch_mod, peer, batch)


def test_full_set_ours(benchmark: Any, torch_mod: Any, batch: Any) -> None:
    from ml_utilities.gpu import features

    benchmark.group = f"gpu/full-set/{batch.shape[0]}x30s"
    out = benchmark(_sync_call, torch_mod, lambda y: features.extract_features(y, n_mfcc=13), batch)
    assert out["mfcc"].shape[:2] == (batch.shape[0], 13)


def test_full_set_peer_torchaudio_mfcc_and_spectrogram(
    benchmark: Any, torch_mod: Any, batch: Any
) -> None:
    """The peer has no whole feature set: its MFCC plus its power spectrogram."""
    ta = _torchaudio_mfcc(torch_mod)
    import torchaudio

    spec = torchaudio.transforms.Spectrogram(
        n_fft=2048, hop_length=512, power=1.0, pad_mode="constant"
    ).cuda()
    benchmark.group = f"gpu/full-set/{batch.shape[0]}x30s"
    benchmark(_sync_call, torch_mod, lambda y: (ta(y), spec(y)), batch)
