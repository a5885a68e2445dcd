"""Frame sequences for similarity: chroma (rotatable) and timbre channels at one frame rate.

A :class:`SequenceFeatures` holds a clip's chroma ``(12, T)`` and its other channels
``(k, T)`` (MFCC, and whatever else the caller extracted: tonnetz, spectral contrast) at
:data:`FRAME_RATE` frames per second. The chroma is the part a transposition rotates; the encoder
and the alignment treat it so. The other channels are normalised per clip (mean 0, variance 1 per
channel), which removes gain and any fixed equalisation from MFCCs (a fixed filter adds a constant
to every cepstral frame).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..exceptions import ParameterError

__all__ = [
    "FRAME_RATE",
    "SAMPLE_RATE",
    "SequenceFeatures",
    "as_sequence",
    "sequence_features",
]

#: the sample rate clips are analysed at
SAMPLE_RATE = 22050
#: hop of the analysis (samples at :data:`SAMPLE_RATE`)
HOP = 2048
#: frames per second of every :class:`SequenceFeatures`
FRAME_RATE = SAMPLE_RATE / HOP
#: hop of FeatureExtractor.extract_perceptual_features' sequences (librosa's default)
PERCEPTUAL_HOP = 512
#: the perceptual features a sequence reads, in channel order (chroma first)
CHROMA_NAMES = ("chroma_cqt", "chroma_stft", "chroma")
OTHER_NAMES = ("mfcc", "tonnetz", "spectral_contrast")


@dataclass(frozen=True)
class SequenceFeatures:
    """One clip's frame sequence at :data:`FRAME_RATE`.

    Attributes
    ----------
    chroma : ndarray, shape (12, T), float32
        Pitch-class energies, each frame scaled to a maximum of 1.
    other : ndarray, shape (k, T), float32
        Non-rotating channels (``other_names``), standardised per clip.
    other_names : tuple of str
        The features ``other`` is made of, with their sizes, e.g. ``("mfcc:13",)``.
    """

    chroma: np.ndarray
    other: np.ndarray
    other_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        c, o = self.chroma, self.other
        if c.ndim != 2 or c.shape[0] != 12:
            raise ParameterError(f"chroma must have shape (12, frames), got {c.shape}")
        if o.ndim != 2 or o.shape[1] != c.shape[1]:
            raise ParameterError(
                f"other channels {o.shape} must have as many frames as the chroma {c.shape}"
            )
        if c.shape[1] < 1:
            raise ParameterError("a sequence needs at least one frame")
        if not (np.isfinite(c).all() and np.isfinite(o).all()):
            raise ParameterError("sequence features hold NaN or infinite values")

    @property
    def n_frames(self) -> int:
        return int(self.chroma.shape[1])

    @property
    def duration(self) -> float:
        """Seconds covered."""
        return self.n_frames / FRAME_RATE

    def stacked(self) -> np.ndarray:
        """``(12 + k, T)`` float32: the encoder's input."""
        return np.concatenate([self.chroma, self.other], axis=0).astype(np.float32, copy=False)

    def excerpt(self, start: float, end: float) -> SequenceFeatures:
        """The frames from ``start`` to ``end`` seconds."""
        a = max(0, int(round(start * FRAME_RATE)))
        b = min(self.n_frames, int(round(end * FRAME_RATE)))
        if b <= a:
            raise ParameterError(
                f"excerpt [{start}, {end}] s is empty in a sequence of {self.duration:.2f} s"
            )
        return SequenceFeatures(self.chroma[:, a:b], self.other[:, a:b], self.other_names)


def _standardise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    mu = x.mean(axis=1, keepdims=True)
    sd = x.std(axis=1, keepdims=True)
    return ((x - mu) / np.where(sd > 1e-8, sd, 1.0)).astype(np.float32)


def _max_norm(chroma: np.ndarray) -> np.ndarray:
    c = np.maximum(np.asarray(chroma, dtype=np.float32), 0.0)
    peak = c.max(axis=0, keepdims=True)
    return c / np.where(peak > 1e-8, peak, 1.0)


def _pool(x: np.ndarray, factor: int) -> np.ndarray:
    """Average ``factor`` consecutive frames (the last partial group included)."""
    if factor <= 1:
        return x
    t = x.shape[1]
    groups = -(-t // factor)
    pad = groups * factor - t
    if pad:
        x = np.concatenate([x, np.repeat(x[:, -1:], pad, axis=1)], axis=1)
    return x.reshape(x.shape[0], groups, factor).mean(axis=2)


def resample_frames(x: np.ndarray, n: int) -> np.ndarray:
    """``(channels, T)`` frames resampled in time to ``n`` frames (linear interpolation): a
    tempo change of ``n / T`` in feature space."""
    t = x.shape[1]
    if n == t:
        return x
    pos = np.linspace(0.0, t - 1.0, n)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, t - 1)
    frac = (pos - lo).astype(np.float32)
    return x[:, lo] * (1 - frac) + x[:, hi] * frac


def _load(audio: Any, sr: float | None) -> np.ndarray:
    from ..audio import load, resample

    if isinstance(audio, (str, Path)):
        y, _ = load(audio, sr=SAMPLE_RATE, mono=True)
        return np.ascontiguousarray(y, dtype=np.float32)
    y = np.asarray(audio)
    if y.dtype.kind not in "fiu":
        raise ParameterError(f"audio must be a float array or a file, got dtype {y.dtype}")
    if y.ndim == 2:
        y = y.mean(axis=0)
    if y.ndim != 1:
        raise ParameterError(f"audio must be (n,) or (channels, n), got shape {y.shape}")
    if sr is None:
        raise ParameterError("an audio array needs its sample rate (sr=)")
    if not sr > 0:
        raise ParameterError(f"sr={sr!r} must be a positive number")
    y = np.ascontiguousarray(y, dtype=np.float32)
    if not np.isfinite(y).all():
        raise ParameterError("audio holds NaN or infinite samples")
    if sr != SAMPLE_RATE:
        y = resample(y, orig_sr=sr, target_sr=SAMPLE_RATE)
    return np.ascontiguousarray(y, dtype=np.float32)


def sequence_features(audio: Any, sr: float | None = SAMPLE_RATE) -> SequenceFeatures:
    """The similarity sequence of one clip: CQT chroma and 13 MFCCs at :data:`FRAME_RATE`.

    Parameters
    ----------
    audio : ndarray or path
        Mono or ``(channels, n)`` samples at ``sr``, or an audio file (decoded to mono).
    sr : float
        Sample rate of an array (resampled to :data:`SAMPLE_RATE` when different).

    Raises
    ------
    ParameterError
        Not audio, NaN samples, a clip shorter than one analysis frame (about 0.19 s).
    """
    from .. import audio as A
    from ..audio.spectrum import quiet_short_signals

    y = _load(audio, sr)
    if y.size < HOP * 2:
        raise ParameterError(
            f"a clip of {y.size} samples ({y.size / SAMPLE_RATE:.3f} s) is too short for a "
            f"similarity sequence (at least {2 * HOP} samples at {SAMPLE_RATE} Hz)"
        )
    with quiet_short_signals():
        chroma = A.chroma_cqt(y=y, sr=SAMPLE_RATE, hop_length=HOP)
    mfcc = A.mfcc(y=y, sr=SAMPLE_RATE, n_mfcc=13, n_fft=4096, hop_length=HOP)
    t = min(chroma.shape[1], mfcc.shape[1])
    return SequenceFeatures(_max_norm(chroma[:, :t]), _standardise(mfcc[:, :t]), ("mfcc:13",))


def as_sequence(
    features: Any, *, hop_length: int = PERCEPTUAL_HOP, sr: float = SAMPLE_RATE
) -> SequenceFeatures:
    """A :class:`SequenceFeatures` from what a caller has.

    Parameters
    ----------
    features : SequenceFeatures, dict, ndarray or path
        A sequence as is; a dict of frame-level features as
        ``FeatureExtractor.extract_perceptual_features`` returns (it needs one chroma,
        ``chroma_cqt`` or ``chroma_stft``; ``mfcc``, ``tonnetz`` and ``spectral_contrast`` become
        the other channels), at ``hop_length`` samples per frame and ``sr``; an audio array at
        ``sr`` or a file (analysed with :func:`sequence_features`).
    """
    if isinstance(features, SequenceFeatures):
        return features
    if isinstance(features, Mapping):
        return _from_dict(features, hop_length=hop_length, sr=sr)
    if isinstance(features, (str, Path)) or isinstance(features, np.ndarray):
        return sequence_features(features, sr=sr)
    raise ParameterError(
        f"cannot read similarity features from a {type(features).__name__}: give a "
        "SequenceFeatures, a dict of perceptual features, an audio array or a file"
    )


def _from_dict(features: Mapping[str, Any], *, hop_length: int, sr: float) -> SequenceFeatures:
    chroma_name = next((n for n in CHROMA_NAMES if n in features), None)
    if chroma_name is None:
        raise ParameterError(
            f"the features {sorted(features)} hold no chroma (one of {list(CHROMA_NAMES)}): "
            "similarity needs one"
        )
    if not hop_length > 0 or not sr > 0:
        raise ParameterError(f"hop_length={hop_length!r} and sr={sr!r} must be positive")
    factor = max(1, int(round(HOP * sr / SAMPLE_RATE / hop_length)))
    chroma = np.asarray(features[chroma_name], dtype=np.float32)
    if chroma.ndim != 2 or chroma.shape[0] != 12:
        raise ParameterError(f"{chroma_name} must have shape (12, frames), got {chroma.shape}")
    blocks, names = [], []
    for name in OTHER_NAMES:
        if name in features:
            block = np.asarray(features[name], dtype=np.float32)
            if block.ndim != 2:
                raise ParameterError(f"{name} must be (channels, frames), got {block.shape}")
            blocks.append(block)
            names.append(f"{name}:{block.shape[0]}")
    t = min([chroma.shape[1], *(b.shape[1] for b in blocks)])
    if t < 1:
        raise ParameterError("the features have no frame")
    for name, arr in [(chroma_name, chroma), *zip(names, blocks, strict=True)]:
        if not np.isfinite(arr).all():
            raise ParameterError(f"{name} holds NaN or infinite values")
    chroma = _max_norm(_pool(chroma[:, :t], factor))
    other = (
        _standardise(_pool(np.concatenate([b[:, :t] for b in blocks]), factor))
        if blocks
        else np.zeros((0, chroma.shape[1]), np.float32)
    )
    return SequenceFeatures(chroma, other, tuple(names))


def sequences(items: Iterable[Any] | Mapping[str, Any], **kw: Any) -> list[SequenceFeatures]:
    """:func:`as_sequence` of each item (the values of a mapping)."""
    values = items.values() if isinstance(items, Mapping) else items
    return [as_sequence(v, **kw) for v in values]
