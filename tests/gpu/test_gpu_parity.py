"""Every GPU feature equals the CPU result (relative Frobenius error <= 1e-5 for |stft|, <= 1e-4
for the rest), with CuPy and torch in and out, strided and float64 input, odd lengths, and a
clear error for a batch the device cannot hold. Skipped with the reason without a GPU."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from ml_utilities import audio
from ml_utilities.gpu import dispatch, features
from ml_utilities.gpu._spec import PlanSpec
from ml_utilities.gpu.errors import DeviceMemoryError

pytestmark = pytest.mark.gpu

STFT_TOL = 1e-5
TOL = 1e-4


def rel_err(got: np.ndarray, want: np.ndarray) -> float:
    got = np.asarray(got, dtype=np.complex128 if np.iscomplexobj(want) else np.float64)
    want = np.asarray(want, dtype=got.dtype)
    assert got.shape == want.shape, (got.shape, want.shape)
    norm = np.linalg.norm(want)
    return float(np.linalg.norm(got - want) / (norm if norm > 0 else 1.0))


# name -> (gpu function, cpu function, kwargs, positional audio)
FEATURES: dict[str, tuple[Any, Any, dict[str, Any], bool]] = {
    "melspectrogram": (features.melspectrogram, audio.melspectrogram, {}, False),
    "mfcc": (features.mfcc, audio.mfcc, {"n_mfcc": 13}, False),
    "mfcc_lifter": (features.mfcc, audio.mfcc, {"n_mfcc": 20, "lifter": 22}, False),
    "chroma_stft": (features.chroma_stft, audio.chroma_stft, {}, False),
    "chroma_stft_tuned": (features.chroma_stft, audio.chroma_stft, {"tuning": 0.1}, False),
    "spectral_centroid": (features.spectral_centroid, audio.spectral_centroid, {}, False),
    "spectral_bandwidth": (features.spectral_bandwidth, audio.spectral_bandwidth, {}, False),
    "spectral_rolloff": (features.spectral_rolloff, audio.spectral_rolloff, {}, False),
    "spectral_contrast": (features.spectral_contrast, audio.spectral_contrast, {}, False),
    "spectral_flatness": (features.spectral_flatness, audio.spectral_flatness, {}, False),
    "spectral_flux": (features.spectral_flux, audio.spectral_flux, {}, False),
    "zero_crossing_rate": (features.zero_crossing_rate, audio.zero_crossing_rate, {}, True),
    "rms": (features.rms, audio.rms, {}, False),
    "onset_strength": (features.onset_strength, audio.onset_strength, {}, False),
    "onset_strength_median": (
        features.onset_strength,
        audio.onset_strength,
        {"aggregate": np.median},
        False,
    ),
}


def _call(fn: Any, y: Any, positional: bool, kwargs: dict[str, Any]) -> Any:
    return fn(y, **kwargs) if positional else fn(y=y, **kwargs)


def _compare(lib: Any, name: str, y: np.ndarray, y_dev: Any) -> None:
    gpu_fn, cpu_fn, kwargs, positional = FEATURES[name]
    want = _call(cpu_fn, y, positional, kwargs)
    got = _call(gpu_fn, y_dev, positional, kwargs)
    assert lib.is_native(got), type(got)
    host = lib.to_host(got)
    assert host.dtype == want.dtype, (name, host.dtype, want.dtype)
    assert rel_err(host, want) <= TOL, (name, rel_err(host, want))


@pytest.mark.parametrize("name", sorted(FEATURES))
def test_feature_equals_cpu_on_a_batch(lib: Any, music_batch: np.ndarray, name: str) -> None:
    _compare(lib, name, music_batch, lib.to_device(music_batch))


@pytest.mark.parametrize("name", ["mfcc", "chroma_stft", "spectral_contrast", "rms"])
def test_feature_equals_cpu_on_one_clip(lib: Any, music: np.ndarray, name: str) -> None:
    _compare(lib, name, music, lib.to_device(music))


def test_stft_magnitude_equals_cpu(lib: Any, music_batch: np.ndarray) -> None:
    want = audio.stft(music_batch)
    got = features.stft(lib.to_device(music_batch))
    assert lib.is_native(got)
    host = lib.to_host(got)
    assert host.dtype == np.complex64 and host.shape == want.shape
    assert rel_err(np.abs(host), np.abs(want)) <= STFT_TOL
    assert rel_err(host, want) <= 1e-4  # phases too, away from silent bins


@pytest.mark.parametrize("window", ["hamming", ("kaiser", 8.0)])
def test_stft_general_windows_equal_cpu(lib: Any, music: np.ndarray, window: Any) -> None:
    want = audio.stft(music, window=window, n_fft=1024, hop_length=256)
    got = lib.to_host(
        features.stft(lib.to_device(music), window=window, n_fft=1024, hop_length=256)
    )
    assert rel_err(np.abs(got), np.abs(want)) <= STFT_TOL


def test_hann_taps_and_windowed_frames_agree(lib: Any, music_batch: np.ndarray) -> None:
    y_dev = lib.to_device(music_batch)
    taps, _ = features.run(y_dev, PlanSpec(), ["stft", "mfcc"])
    frames, _ = features.run(y_dev, PlanSpec(hann_taps=False), ["stft", "mfcc"])
    want = audio.stft(music_batch)
    for res in (taps, frames):
        assert rel_err(np.abs(lib.to_host(res["stft"])), np.abs(want)) <= STFT_TOL
    assert rel_err(lib.to_host(taps["mfcc"]), lib.to_host(frames["mfcc"])) <= TOL


def test_uncentered_and_other_sizes(lib: Any, music: np.ndarray) -> None:
    kw = {"n_fft": 1024, "hop_length": 300, "center": False, "n_mels": 64}
    want = audio.melspectrogram(y=music, **kw)
    got = lib.to_host(features.melspectrogram(y=lib.to_device(music), **kw))
    assert rel_err(got, want) <= TOL


def test_whole_feature_set_from_one_plan(lib: Any, music_batch: np.ndarray) -> None:
    got = features.extract_features(lib.to_device(music_batch), n_mfcc=13)
    mfcc = audio.mfcc(y=music_batch, n_mfcc=13)
    power = audio.spectrogram(music_batch, power=2.0)
    want = {
        "mel": audio.melspectrogram(y=music_batch),
        "mfcc": mfcc,
        "mfcc_delta": audio.delta(mfcc, width=9, order=1),
        "mfcc_delta2": audio.delta(mfcc, width=9, order=2),
        "chroma": audio.chroma_stft(y=music_batch),
        "centroid": audio.spectral_centroid(y=music_batch),
        "bandwidth": audio.spectral_bandwidth(y=music_batch),
        "rolloff": audio.spectral_rolloff(y=music_batch),
        "flux": audio.spectral_flux(y=music_batch),
        "contrast": audio.spectral_contrast(y=music_batch),
        "flatness": audio.spectral_flatness(y=music_batch),
        "onset": audio.onset_strength(y=music_batch),
        "zcr": audio.zero_crossing_rate(music_batch),
        "rms": audio.rms(y=music_batch),
    }
    for name, ref in want.items():
        assert lib.is_native(got[name]), name
        assert rel_err(lib.to_host(got[name]), ref) <= TOL, (
            name,
            rel_err(lib.to_host(got[name]), ref),
        )
    assert got["tuning"] == pytest.approx(float(audio.estimate_tuning(S=power, sr=22050)))


def test_float64_input(lib: Any, music_batch: np.ndarray) -> None:
    y = music_batch.astype(np.float64)
    y_dev = lib.to_device(y)
    for name in ("mfcc", "spectral_centroid", "chroma_stft", "rms"):
        gpu_fn, cpu_fn, kwargs, positional = FEATURES[name]
        want = _call(cpu_fn, y, positional, kwargs)
        got = lib.to_host(_call(gpu_fn, y_dev, positional, kwargs))
        assert got.dtype == want.dtype, (name, got.dtype, want.dtype)
        assert rel_err(got, want) <= TOL, name
    stft = lib.to_host(features.stft(y_dev))
    assert stft.dtype == np.complex128
    assert rel_err(np.abs(stft), np.abs(audio.stft(y))) <= STFT_TOL


def test_non_contiguous_input(lib: Any, music_batch: np.ndarray) -> None:
    wide = np.ascontiguousarray(np.repeat(music_batch, 2, axis=1))
    strided = lib.to_device(wide)[:, ::2]  # every other sample: stride 2
    _compare(lib, "mfcc", wide[:, ::2], strided)
    transposed = lib.to_device(np.ascontiguousarray(music_batch.T)).T  # rows interleaved
    _compare(lib, "spectral_centroid", music_batch, transposed)
    four_d = music_batch.reshape(2, 2, -1)
    _compare(lib, "melspectrogram", four_d, lib.to_device(four_d))
    interleaved = np.empty((2 * len(music_batch), music_batch.shape[-1]), music_batch.dtype)
    interleaved[::2], interleaved[1::2] = music_batch, music_batch[::-1] * 0.5
    every_other_row = lib.to_device(interleaved)[::2]  # row stride 2n: the music rows only
    _compare(lib, "zero_crossing_rate", music_batch, every_other_row)
    _compare(lib, "rms", music_batch, every_other_row)


@pytest.mark.parametrize("n", [22050 * 2 + 1, 4097, 30001, 2048])
def test_odd_lengths(lib: Any, music: np.ndarray, n: int) -> None:
    y = np.ascontiguousarray(music[:n])
    y_dev = lib.to_device(y)
    for name in ("mfcc", "spectral_rolloff", "rms", "zero_crossing_rate", "onset_strength"):
        _compare(lib, name, y, y_dev)
    got = lib.to_host(features.stft(y_dev))
    assert rel_err(np.abs(got), np.abs(audio.stft(y))) <= STFT_TOL


def test_dispatch_routes_device_arrays(lib: Any, music: np.ndarray) -> None:
    y_dev = lib.to_device(music)
    got = dispatch.function("mfcc")(y=y_dev, n_mfcc=13)
    assert lib.is_native(got)
    assert rel_err(lib.to_host(got), audio.mfcc(y=music, n_mfcc=13)) <= TOL
    np.testing.assert_array_equal(dispatch.function("mfcc")(y=music), audio.mfcc(y=music))


def test_beat_track_and_tempo_move_only_the_envelope(lib: Any, music: np.ndarray) -> None:
    tempo_cpu, beats_cpu = audio.beat_track(y=music, sr=22050)
    tempo_gpu, beats_gpu = features.beat_track(y=lib.to_device(music), sr=22050)
    assert np.asarray(tempo_gpu) == pytest.approx(np.asarray(tempo_cpu), rel=1e-6)
    common = len(set(np.asarray(beats_cpu).tolist()) & set(np.asarray(beats_gpu).tolist()))
    assert common >= 0.95 * max(len(beats_cpu), 1)
    assert features.tempo(y=lib.to_device(music), sr=22050) == pytest.approx(
        audio.tempo(y=music, sr=22050), rel=1e-6
    )


def test_feature_extractor_with_a_device_clip(lib: Any, music: np.ndarray) -> None:
    pytest.importorskip("soxr")  # the extractor's tonnetz resamples on the host
    from ml_utilities.features import FeatureExtractor

    fx = FeatureExtractor()
    want = fx.extract_comprehensive_features_sync(music, 22050)
    got = fx.extract_comprehensive_features_sync(lib.to_device(music), 22050)
    for group, name in [
        ("timbre", "mfcc"),
        ("timbre", "mel_spectrogram"),
        ("spectral", "centroid"),
        ("spectral", "rolloff"),
        ("harmonic", "chroma"),
        ("temporal", "rms"),
    ]:
        assert isinstance(got[group][name], np.ndarray)
        assert rel_err(got[group][name], want[group][name]) <= TOL, (group, name)


def test_caller_stream_is_honoured(torch_lib: Any, music_batch: np.ndarray) -> None:
    torch = torch_lib.mod
    stream = torch.cuda.Stream()
    base = torch_lib.to_device(music_batch)
    torch.cuda.synchronize()
    with torch.cuda.stream(stream):
        y = base * 1.0  # produced on `stream`, not yet synchronised
        got = features.mfcc(y=y, n_mfcc=13)
    stream.synchronize()
    assert rel_err(torch_lib.to_host(got), audio.mfcc(y=music_batch, n_mfcc=13)) <= TOL


def _free_bytes(lib: Any) -> int:
    from ml_utilities import _native

    return int(_native.cuda().memory_info(0)[0])


def test_batch_too_large_for_the_outputs_is_a_clear_error(lib: Any) -> None:
    free = _free_bytes(lib)
    n = 22050 * 30
    channels = max(1, int(0.3 * free) // (4 * n))
    if lib.name == "cupy":
        y = lib.mod.empty((channels, n), dtype=np.float32)
        y.fill(0.1)
    else:
        y = lib.mod.full((channels, n), 0.1, dtype=lib.mod.float32, device="cuda")
    # the complex STFT is about 4x the signal's bytes: it cannot fit beside it
    with pytest.raises(DeviceMemoryError, match="split the batch"):
        features.stft(y)
    del y
    if lib.name == "torch":
        lib.mod.cuda.empty_cache()
    else:
        lib.mod.get_default_memory_pool().free_all_blocks()
    small = lib.to_device(np.ones((1, 22050), np.float32))
    assert lib.to_host(features.mfcc(y=small)).shape == (1, 20, 44)


def test_batch_too_large_for_the_workspace_is_a_clear_error(lib: Any) -> None:
    free = _free_bytes(lib)
    n = 22050 * 30
    channels = max(1, int(0.25 * free) // (4 * n))
    if lib.name == "cupy":
        y = lib.mod.zeros((channels, n), dtype=np.float32)
    else:
        y = lib.mod.zeros((channels, n), dtype=lib.mod.float32, device="cuda")
    # one chunk for the whole batch: its spectra need about 5x the signal's bytes
    spec = PlanSpec(workspace_limit=1 << 62)
    with pytest.raises(DeviceMemoryError, match="MiB of device workspace"):
        features.run(y, spec, ["mel"])
    del y
    if lib.name == "torch":
        lib.mod.cuda.empty_cache()
    else:
        lib.mod.get_default_memory_pool().free_all_blocks()
    small = lib.to_device(np.ones(22050, np.float32))
    res, _ = features.run(small, spec, ["mel"])
    assert lib.to_host(res["mel"]).shape == (128, 44)


def test_unsupported_arguments_name_themselves(lib: Any, music: np.ndarray) -> None:
    from ml_utilities.exceptions import ParameterError

    y_dev = lib.to_device(music)
    with pytest.raises(ParameterError, match="pad_mode='reflect' is not supported"):
        features.melspectrogram(y=y_dev, pad_mode="reflect")
    with pytest.raises(ParameterError, match="float32 or float64"):
        features.mfcc(y=lib.to_device(music.astype(np.float16)))


FUSED_OUTPUTS = [
    "stft",
    "spectrum",
    "mel",
    "mfcc",
    "mfcc_delta",
    "chroma",
    "centroid",
    "bandwidth",
    "rolloff",
    "flux",
    "contrast",
    "flatness",
    "onset",
    "onset_median",
    "zcr",
    "rms",
]


def test_fused_path_equals_the_cufft_path_and_the_cpu(lib: Any, music_batch: np.ndarray) -> None:
    y_dev = lib.to_device(music_batch)
    fused, info = features.run(y_dev, PlanSpec(n_mfcc=13, fused=True), FUSED_OUTPUTS)
    plain, _ = features.run(y_dev, PlanSpec(n_mfcc=13), FUSED_OUTPUTS)
    for name in FUSED_OUTPUTS:
        got, ref = lib.to_host(fused[name]), lib.to_host(plain[name])
        tol = STFT_TOL if name in ("stft", "spectrum") else TOL
        if name == "stft":
            got, ref = np.abs(got), np.abs(ref)
        assert rel_err(got, ref) <= tol, (name, rel_err(got, ref))
    assert rel_err(np.abs(lib.to_host(fused["stft"])), np.abs(audio.stft(music_batch))) <= STFT_TOL
    assert rel_err(lib.to_host(fused["mfcc"]), audio.mfcc(y=music_batch, n_mfcc=13)) <= TOL
    from ml_utilities.gpu._spec import get_plan

    assert get_plan(PlanSpec(n_mfcc=13, fused=True), 0).fused


@pytest.mark.parametrize("n", [4097, 22050 * 2 + 1])
def test_fused_path_strided_float64_and_odd_lengths(
    lib: Any, music_batch: np.ndarray, n: int
) -> None:
    y = np.ascontiguousarray(np.repeat(music_batch[:, :n], 2, axis=1)).astype(np.float64)
    y_dev = lib.to_device(y)[:, ::2]
    res, _ = features.run(y_dev, PlanSpec(fused=True), ["mfcc", "flux", "chroma"])
    host = y[:, ::2]
    assert rel_err(lib.to_host(res["mfcc"]), audio.mfcc(y=host)) <= TOL
    assert rel_err(lib.to_host(res["flux"]), audio.spectral_flux(y=host)) <= TOL
    assert rel_err(lib.to_host(res["chroma"]), audio.chroma_stft(y=host)) <= TOL
