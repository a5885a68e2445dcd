"""The CUDA backend's host side, tested without a GPU: loading, dispatch, device-array
descriptions, and the tables and formulas the kernels use (checked against the CPU code)."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ml_utilities
from ml_utilities import _native
from ml_utilities.exceptions import BackendUnavailableError, ParameterError
from ml_utilities.gpu import _arrays, _spec, dispatch
from ml_utilities.gpu.errors import DeviceError, DeviceMemoryError

REPO = Path(__file__).resolve().parents[2]


class FakeCudaArray:
    """An object exposing __cuda_array_interface__ (no memory behind it)."""

    def __init__(self, shape: tuple[int, ...], typestr: str = "<f4", strides: Any = None):
        self.__cuda_array_interface__ = {
            "data": (0xDEAD0000, False),
            "shape": shape,
            "typestr": typestr,
            "strides": strides,
            "version": 3,
            "stream": 1,
        }


class FakeDLPack:
    def __init__(self, device_type: int):
        self._device = (device_type, 0)

    def __dlpack_device__(self) -> tuple[int, int]:
        return self._device


# ----------------------------------------------------------------------------- loading


def _run_python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_import_never_loads_the_cuda_module_or_gpu_libraries() -> None:
    out = _run_python(
        "import sys, numpy as np, ml_utilities, ml_utilities.gpu, ml_utilities.gpu.dispatch\n"
        "from ml_utilities import audio\n"
        "y = np.zeros(4096, np.float32)\n"
        "ml_utilities.gpu.dispatch.function('mfcc')(y=y)\n"
        "import ml_utilities.features\n"
        "print(sorted(m for m in ('ml_utilities._cuda', 'cupy', 'torch') if m in sys.modules))"
    )
    assert out == "[]"


def test_build_info_reports_the_cuda_module() -> None:
    info = ml_utilities.build_info()
    assert isinstance(info["cuda_built"], bool) and isinstance(info["cuda_loads"], bool)
    assert isinstance(info["cuda_devices"], int)
    built_file = any((Path(ml_utilities.__file__).parent).glob("_cuda*.so")) or any(
        (REPO / "build").glob("*/_cuda*.so")
    )
    assert info["cuda_built"] == built_file
    if info["cuda_loads"]:
        assert info["cuda_error"] is None and info["cuda_devices"] >= 1
    else:
        assert info["cuda_devices"] == 0 and info["cuda_error"]


def test_build_info_without_cuda_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_native, "_cuda_module", None)
    monkeypatch.setattr(
        _native,
        "_cuda_error",
        "ml_utilities was built without CUDA (no CUDA compiler (nvcc) was found at build time)",
    )
    info = ml_utilities.build_info()
    assert info["cuda_built"] is False and info["cuda_loads"] is False
    assert "built without CUDA" in info["cuda_error"]


def test_build_info_says_why_cuda_was_not_built() -> None:
    # the build records what it found ("built", "MLU_CUDA=OFF", no nvcc, nvcc without cuFFT),
    # and the error of a build without _cuda says that instead of guessing at a missing toolkit
    code = (
        "import ml_utilities as m, json; i = m.build_info();"
        "print(json.dumps([i['cuda_build'], i['cuda_built'], i['cuda_error']]))"
    )
    why, built, error = json.loads(_run_python(code))
    assert why == "built" or why == "MLU_CUDA=OFF" or "nvcc" in why, why
    assert built == (why == "built")
    if not built:
        assert error == f"ml_utilities was built without CUDA ({why} at build time)"


# ----------------------------------------------------------------------------- dispatch


def test_is_device_array_recognises_kinds() -> None:
    assert not _arrays.is_device_array(np.zeros(3, np.float32))
    assert not _arrays.is_device_array(None)
    assert not _arrays.is_device_array([1.0, 2.0])
    assert _arrays.is_device_array(FakeCudaArray((10,)))
    assert _arrays.is_device_array(FakeDLPack(2))
    assert not _arrays.is_device_array(FakeDLPack(1))  # kDLCPU


def test_is_device_array_false_for_host_torch_tensors() -> None:
    torch = pytest.importorskip("torch")
    assert not _arrays.is_device_array(torch.zeros(4))


def test_numpy_input_never_touches_the_cuda_module(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden() -> None:
        raise AssertionError("numpy input reached the CUDA backend")

    monkeypatch.setattr(_native, "cuda", forbidden)
    y = np.random.default_rng(0).standard_normal(22050).astype(np.float32)
    from ml_utilities import audio

    for name in ("mfcc", "melspectrogram", "chroma_stft", "spectral_centroid", "rms"):
        got = dispatch.function(name)(y=y)
        np.testing.assert_array_equal(got, getattr(audio, name).__wrapped__(y=y))
    np.testing.assert_array_equal(dispatch.function("stft")(y), audio.stft.__wrapped__(y))
    np.testing.assert_array_equal(
        dispatch.function("zero_crossing_rate")(y), audio.zero_crossing_rate.__wrapped__(y)
    )


def test_dispatching_keeps_the_cpu_signature() -> None:
    from ml_utilities import audio
    from ml_utilities.audio import feature

    wrapped = dispatch.function("mfcc")
    assert wrapped is audio.mfcc and wrapped.__wrapped__ is feature.mfcc
    assert wrapped.__doc__ == feature.mfcc.__doc__
    assert inspect.signature(wrapped) == inspect.signature(feature.mfcc)
    assert dispatch.function("mfcc") is wrapped  # one wrapper per name


def test_the_audio_package_dispatches_exactly_the_gpu_functions() -> None:
    import ml_utilities.compat.librosa as L
    from ml_utilities import audio

    for name in audio.__all__:
        assert getattr(getattr(audio, name), "__mlu_dispatch__", False) == (
            name in dispatch.GPU_FUNCTIONS
        ), name
    # librosa's paths are the same objects, so they reach the GPU too
    assert L.feature.mfcc is audio.mfcc and L.stft is audio.stft
    assert L.beat.beat_track is audio.beat_track
    assert L.onset.onset_strength is audio.onset_strength


def test_librosa_paths_with_a_device_array_reach_the_backend(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import ml_utilities.compat.librosa as L

    monkeypatch.setattr(_native, "_cuda_module", None)
    monkeypatch.setattr(_native, "_cuda_error", "ml_utilities was built without CUDA (test)")
    monkeypatch.setattr(_arrays, "_backend_ready", False)
    with pytest.raises(BackendUnavailableError, match="built without CUDA"):
        L.feature.mfcc(y=FakeCudaArray((22050,)), sr=22050)
    with pytest.raises(BackendUnavailableError, match="built without CUDA"):
        L.feature.spectral_centroid(y=FakeCudaArray((2, 22050)))


def test_device_array_without_cuda_build_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_native, "_cuda_module", None)
    monkeypatch.setattr(
        _native,
        "_cuda_error",
        "ml_utilities was built without CUDA (no CUDA compiler (nvcc) was found at build time)",
    )
    monkeypatch.setattr(_arrays, "_backend_ready", False)
    with pytest.raises(BackendUnavailableError, match="built without CUDA"):
        dispatch.function("mfcc")(y=FakeCudaArray((22050,)))


def test_device_array_without_a_device_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    class NoDevice:
        @staticmethod
        def device_count() -> int:
            raise DeviceError("cudaGetDeviceCount: no CUDA-capable device is detected")

    monkeypatch.setattr(_native, "cuda", lambda: NoDevice)
    monkeypatch.setattr(_arrays, "_backend_ready", False)
    with pytest.raises(BackendUnavailableError, match="no CUDA-capable device"):
        dispatch.function("mfcc")(y=FakeCudaArray((22050,)))
    with pytest.raises(BackendUnavailableError, match="cannot run here"):
        dispatch.function("stft")(FakeCudaArray((2, 22050)))


def test_device_array_with_zero_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    class Zero:
        @staticmethod
        def device_count() -> int:
            return 0

    monkeypatch.setattr(_native, "cuda", lambda: Zero)
    monkeypatch.setattr(_arrays, "_backend_ready", False)
    with pytest.raises(BackendUnavailableError, match="no CUDA device"):
        _arrays.describe(FakeCudaArray((100,)))


def test_real_backend_state_here_is_reported_cleanly(monkeypatch: pytest.MonkeyPatch) -> None:
    """On this machine (whatever it has), a device array either runs or fails with
    BackendUnavailableError: never a crash or a raw CUDA error."""
    monkeypatch.setattr(_arrays, "_backend_ready", False)
    if ml_utilities.build_info()["cuda_loads"]:
        pytest.skip("a GPU is usable here: the GPU tests cover this")
    with pytest.raises(BackendUnavailableError):
        dispatch.function("melspectrogram")(y=FakeCudaArray((4096,)))


def test_extractor_with_a_device_array_and_no_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    from ml_utilities.features import FeatureExtractor

    monkeypatch.setattr(_native, "_cuda_module", None)
    monkeypatch.setattr(_native, "_cuda_error", "ml_utilities was built without CUDA (test)")
    monkeypatch.setattr(_arrays, "_backend_ready", False)
    with pytest.raises(BackendUnavailableError, match="built without CUDA"):
        FeatureExtractor().extract_comprehensive_features_sync(FakeCudaArray((22050,)), 22050)


def test_describe_rejects_host_objects() -> None:
    with pytest.raises(ParameterError, match="expected a CUDA device array"):
        _arrays.describe(np.zeros(10, np.float32))


# ----------------------------------------------------------------------------- array layout


@pytest.mark.parametrize(
    ("shape", "strides", "expected"),
    [
        ((100,), (1,), (0, 1)),
        ((100,), (3,), (0, 3)),
        ((4, 100), (100, 1), (100, 1)),
        ((4, 100), (1, 4), (1, 4)),  # a transposed (100, 4) array: rows interleaved
        ((4, 50), (200, 2), (200, 2)),  # every other sample of every other row
        ((2, 3, 100), (300, 100, 1), (100, 1)),  # leading axes collapse
        ((2, 3, 100), (600, 100, 1), None),  # they do not
        ((4, 100), (100, -1), None),  # reversed
        ((1, 3, 100), (7, 100, 1), (100, 1)),  # a size-1 axis never matters
    ],
)
def test_rows_collapse(shape: tuple[int, ...], strides: tuple[int, ...], expected: Any) -> None:
    assert _arrays._rows(shape, strides) == expected


def test_rows_rejects_zero_dimensional() -> None:
    with pytest.raises(ParameterError, match="at least one-dimensional"):
        _arrays._rows((), ())


def test_cai_view_reads_strides_in_elements() -> None:
    ptr, shape, strides, dtype, stream = _arrays._cai_view(FakeCudaArray((3, 5), "<f8"))
    assert (ptr, shape, strides, dtype, stream) == (0xDEAD0000, (3, 5), (5, 1), np.float64, 1)
    _, _, strides, _, _ = _arrays._cai_view(FakeCudaArray((3, 5), "<f4", strides=(4, 12)))
    assert strides == (1, 3)
    with pytest.raises(ParameterError, match="multiples"):
        _arrays._cai_view(FakeCudaArray((3, 5), "<f4", strides=(6, 4)))


@pytest.mark.parametrize(
    ("dtype", "message"), [(np.float16, "float32 or float64"), (np.int16, "floating-point")]
)
def test_dtype_checks(dtype: Any, message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        _arrays._check_dtype(np.dtype(dtype))


def test_device_array_signal_dict() -> None:
    d = _arrays.DeviceArray(None, "cupy", 1234, np.dtype(np.float64), (2, 3), 100, 100, 1, 1, 7)
    assert d.channels == 6
    assert d.signal() == {
        "ptr": 1234,
        "f64": True,
        "channels": 6,
        "n": 100,
        "stride_c": 100,
        "stride_n": 1,
        "device": 1,
    }


def test_out_of_memory_from_the_array_library_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class FakeTorch:
        float32 = "float32"

        @staticmethod
        def device(kind: str, index: int) -> str:
            return f"{kind}:{index}"

        @staticmethod
        def empty(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("CUDA out of memory. Tried to allocate 40.00 GiB")

    monkeypatch.setitem(sys.modules, "torch", FakeTorch)
    like = _arrays.DeviceArray(
        None, "torch", 1, np.dtype(np.float32), (512,), 661500, 661500, 1, 0, 0
    )
    with pytest.raises(DeviceMemoryError, match="split the batch") as info:
        _arrays.allocate(like, (512, 128, 1292), np.float32)
    assert isinstance(info.value, MemoryError)
    assert "512 signal(s)" in str(info.value)


# ----------------------------------------------------------------------------- plan tables


def test_plan_config_tables_come_from_the_cpu_code() -> None:
    from ml_utilities import audio
    from ml_utilities.audio import _plans

    spec = _spec.PlanSpec(sr=22050, n_mfcc=13, lifter=22.0)
    cfg = _spec.plan_config(spec, device=0)
    assert cfg["hann_shortcut"] is True and cfg["window"].dtype == np.float32
    np.testing.assert_array_equal(cfg["window"], audio.get_window("hann", 2048).astype(np.float32))
    np.testing.assert_array_equal(cfg["mel_basis"], audio.mel(sr=22050, n_fft=2048))
    assert cfg["n_mels"] == 128 and cfg["n_mfcc"] == 13
    lift = 1 + 11.0 * np.sin(np.pi * np.arange(1, 14) / 22.0)
    expected = (_plans.dct_matrix(2, 13, 128, True) * lift[:, None]).astype(np.float32)
    np.testing.assert_array_equal(cfg["dct"], expected)
    np.testing.assert_array_equal(cfg["freq"], audio.fft_frequencies(sr=22050, n_fft=2048))
    assert np.isnan(cfg["tuning"]) and cfg["top_db"] == 80.0


def test_hann_taps_only_for_the_periodic_hann_of_n_fft() -> None:
    assert _spec.PlanSpec().normalized().uses_hann_taps
    assert not _spec.PlanSpec(win_length=1024).normalized().uses_hann_taps
    assert not _spec.PlanSpec(window="hamming").normalized().uses_hann_taps
    assert not _spec.PlanSpec(n_fft=2047, hop_length=512).normalized().uses_hann_taps
    assert not _spec.PlanSpec(hann_taps=False).normalized().uses_hann_taps


def test_plan_spec_validation_and_normalisation() -> None:
    assert _spec.PlanSpec(fmax=None).normalized() == _spec.PlanSpec(fmax=11025.0).normalized()
    with pytest.raises(ParameterError, match="n_fft"):
        _spec.PlanSpec(n_fft=0).normalized()
    with pytest.raises(ParameterError, match="win_length"):
        _spec.PlanSpec(win_length=4096).normalized()
    with pytest.raises(ParameterError, match="dct_type"):
        _spec.plan_config(_spec.PlanSpec(dct_type=4), 0)
    # an array window is hashable for the plan cache
    spec = _spec.PlanSpec(window=np.hanning(2048)).normalized()
    hash(spec)


def test_hann_three_taps_equal_the_windowed_fft() -> None:
    """The identity the kernel uses for the periodic Hann window (Xw = 0.5 X - 0.25 (X[k-1] +
    X[k+1]) with conjugate symmetry at both ends) holds exactly."""
    from ml_utilities import audio

    rng = np.random.default_rng(1)
    for n_fft in (2, 8, 2048):
        x = rng.standard_normal(n_fft)
        X = np.fft.rfft(x)
        left = np.concatenate([[np.conj(X[1])], X[:-1]])
        right = np.concatenate([X[1:], [np.conj(X[-2])]])
        taps = 0.5 * X - 0.25 * (left + right)
        np.testing.assert_allclose(
            taps,
            np.fft.rfft(x * audio.get_window("hann", n_fft)),
            rtol=0,
            atol=1e-12 * np.abs(X).max(),
        )


@pytest.mark.parametrize(("width", "order"), [(9, 1), (9, 2), (5, 1), (7, 2)])
def test_delta_coefficients_and_edge_rule_reproduce_the_cpu_delta(width: int, order: int) -> None:
    """The savgol kernel's formula (interior convolution, edges clamped to the first and last
    full window) with the extracted weights gives the CPU delta."""
    from ml_utilities import audio

    w = _spec.delta_coefficients(width, order)
    x = np.random.default_rng(2).standard_normal((3, 40))
    h = width // 2
    ours = np.empty_like(x)
    for t in range(x.shape[1]):
        tc = min(max(t, h), x.shape[1] - 1 - h)
        ours[:, t] = x[:, tc - h : tc + h + 1] @ w
    np.testing.assert_allclose(
        ours, audio.delta(x, width=width, order=order), rtol=1e-12, atol=1e-12
    )


def test_contrast_bands_and_formula_reproduce_the_cpu_contrast() -> None:
    """The contrast kernel's formula (means of the q smallest / largest magnitudes of each band,
    then power_to_db with top_db over each whole array) with these bands gives the CPU result."""
    from ml_utilities import audio

    S = np.abs(np.random.default_rng(3).standard_normal((2, 1025, 20))).astype(np.float32) + 0.01
    freq = audio.fft_frequencies(sr=22050, n_fft=2048)
    bands = _spec.contrast_bands(freq, 22050.0, 200.0, 6, 0.02)
    peak = np.empty((2, 7, 20))
    valley = np.empty((2, 7, 20))
    for b, (begin, end, q) in enumerate(bands):
        sub = np.sort(S[:, begin:end, :].astype(np.float64), axis=1)
        valley[:, b] = sub[:, :q].mean(axis=1)
        peak[:, b] = sub[:, -q:].mean(axis=1)

    def db(x: np.ndarray) -> np.ndarray:
        d = 10 * np.log10(np.maximum(1e-10, x))
        return np.maximum(d, d.max() - 80.0)

    np.testing.assert_allclose(
        db(peak) - db(valley), audio.spectral_contrast(S=S, sr=22050), rtol=1e-5, atol=1e-6
    )


def _device_tuning_bin(residual: np.float32) -> int:
    """The tuning kernel's bin search, in Python."""
    x = float(residual)
    b = int(np.floor((x + 0.5) * 100.0))
    b = min(max(b, 0), 99)
    while b > 0 and x < b * 0.01 + -0.5:
        b -= 1
    while b < 99 and x >= (b + 1) * 0.01 + -0.5:
        b += 1
    return b


def test_tuning_histogram_bins_match_numpy() -> None:
    """The device's residual and bin search reproduce librosa.pitch_tuning's float32 residuals
    and np.histogram's bins, including values on the edges."""
    rng = np.random.default_rng(4)
    pitch = (rng.uniform(150, 4000, 20000)).astype(np.float32)
    octs = np.log2(pitch / np.float32(27.5))
    residual = np.mod(np.float32(12) * octs, np.float32(1.0))
    residual[residual >= 0.5] -= np.float32(1.0)
    edges = np.linspace(-0.5, 0.5, 101)
    residual = np.concatenate([residual, edges[:-1].astype(np.float32), np.float32([0.5 - 1e-7])])
    counts, _ = np.histogram(residual, edges)
    ours = np.zeros(100, dtype=np.int64)
    for r in residual:
        ours[_device_tuning_bin(r)] += 1
    np.testing.assert_array_equal(ours, counts)
    assert edges[np.argmax(counts)] == np.argmax(counts) * 0.01 + -0.5


def test_output_catalogue_dtypes_follow_librosa() -> None:
    d = _spec.OUTPUT_DTYPES
    assert d["stft"] == "complex64"
    assert {d[k] for k in ("centroid", "bandwidth", "rolloff", "contrast", "zcr")} == {"float64"}
    assert {d[k] for k in ("mel", "mfcc", "chroma", "rms", "flatness", "onset")} == {"float32"}


def test_plans_build_only_the_tables_their_outputs_read() -> None:
    from ml_utilities.gpu.features import trim_spec

    stft_only = _spec.plan_config(trim_spec(_spec.PlanSpec(n_fft=256, hop_length=64), ["stft"]), 0)
    for table in ("mel_basis", "dct", "delta1", "contrast_bands"):
        assert table not in stft_only
    assert np.isnan(stft_only["tuning"])
    full = _spec.plan_config(
        trim_spec(_spec.PlanSpec(tuning=0.2), ["mfcc_delta", "contrast", "chroma"]), 0
    )
    for table in ("mel_basis", "dct", "delta1", "delta2", "contrast_bands"):
        assert table in full
    assert full["tuning"] == 0.2
    # a rate too low for contrast's octaves only matters when contrast is asked for
    low = trim_spec(_spec.PlanSpec(sr=8000), ["mfcc"])
    assert "contrast_bands" not in _spec.plan_config(low, 0)
    with pytest.raises(ParameterError, match="exceeds Nyquist"):
        _spec.plan_config(trim_spec(_spec.PlanSpec(sr=8000), ["contrast"]), 0)


def test_bench_device_cuda_without_a_gpu_says_why() -> None:
    if ml_utilities.build_info()["cuda_loads"]:
        pytest.skip("a GPU is usable here")
    done = subprocess.run(
        [sys.executable, "-m", "ml_utilities", "bench", "--device", "cuda", "--quick"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert done.returncode == 2
    assert "bench --device cuda:" in done.stderr
    assert "Traceback" not in done.stderr


def test_fused_warp_fft_emulated_on_the_host_equals_numpy(tmp_path: Path) -> None:
    """The fused kernel's FFT (cuda/fft_2048.cuh: two 32-point DFTs in registers around a
    transpose, then the real-input unpacking), run lane by lane on the host with the same
    code, gives numpy's rfft of the windowed frame."""
    import shutil

    compiler = shutil.which("g++") or shutil.which("c++")
    if compiler is None:
        pytest.skip("no C++ compiler to build the host emulation")
    exe = tmp_path / "fft_emulation"
    subprocess.run(
        [
            compiler,
            "-std=c++17",
            "-O2",
            "-Wall",
            "-Wextra",
            "-Werror",
            f"-I{REPO / 'cuda'}",
            str(REPO / "tests" / "gpu" / "fft_emulation.cpp"),
            "-o",
            str(exe),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    from ml_utilities import audio

    rng = np.random.default_rng(7)
    window = audio.get_window("hann", 2048).astype(np.float32)
    for frame in (
        rng.standard_normal(2048).astype(np.float32),
        np.sin(np.arange(2048) * 0.3).astype(np.float32),
        np.zeros(2048, np.float32),
    ):
        text = " ".join(f"{v:.9g}" for v in np.concatenate([frame, window]))
        done = subprocess.run(
            [str(exe)], input=text, capture_output=True, text=True, timeout=60, check=True
        )
        got = np.loadtxt(done.stdout.splitlines()).reshape(1025, 2)
        got = got[:, 0] + 1j * got[:, 1]
        want = np.fft.rfft(frame.astype(np.float64) * window.astype(np.float64))
        scale = max(np.linalg.norm(want), 1e-30)
        assert np.linalg.norm(got - want) / scale <= 1e-6


def test_device_tuning_pipeline_emulated_equals_estimate_tuning() -> None:
    """The device's tuning estimate, step by step in numpy: piptrack peaks (pitch > 0), the
    median magnitude as the radix select takes it (order statistics n//2 - 1 and n//2, their
    float32 mean when n is even), the float32 residuals, the bin search, the first fullest bin."""
    from ml_utilities import audio
    from ml_utilities.bench import synthetic_clip

    for seed, cents in ((0, 0.0), (5, 23.0)):
        y = synthetic_clip(seconds=4.0, seed=seed)
        if cents:
            y = audio.resample(y, orig_sr=22050, target_sr=22050 * 2 ** (-cents / 1200))
        power = audio.spectrogram(np.ascontiguousarray(y, dtype=np.float32), power=2.0)
        pitches, mags = audio.piptrack(S=power, sr=22050)
        keep = pitches > 0
        pitch, mag = pitches[keep].astype(np.float32), mags[keep].astype(np.float32)
        n = mag.size
        ordered = np.sort(mag)
        lo, hi = ordered[(n - 1) // 2], ordered[n // 2]
        threshold = hi if n % 2 else np.float32((lo + hi) / np.float32(2))
        assert threshold == np.median(mag)
        chosen = pitch[mag >= threshold]
        octs = np.log2(chosen / np.float32(27.5))
        residual = np.mod(np.float32(12) * octs, np.float32(1.0))
        residual[residual >= 0.5] -= np.float32(1.0)
        counts = np.zeros(100, dtype=np.int64)
        for r in residual:
            counts[_device_tuning_bin(r)] += 1
        tuning = int(np.argmax(counts)) * 0.01 + -0.5
        assert tuning == audio.estimate_tuning(S=power, sr=22050)
