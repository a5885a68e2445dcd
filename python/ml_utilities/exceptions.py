"""Exceptions raised by ml_utilities."""

from __future__ import annotations

__all__ = [
    "AudioFileError",
    "AxisError",
    "BackendUnavailableError",
    "MLUtilitiesError",
    "ParameterError",
]


class MLUtilitiesError(Exception):
    """Base class of every exception this package raises on purpose."""


class ParameterError(MLUtilitiesError, ValueError):
    """A bad argument value, shape or dtype (librosa's ``ParameterError`` counterpart)."""


class AxisError(ParameterError, IndexError):
    """An ``axis`` that the array does not have. Also an ``IndexError``, which is what librosa
    (through NumPy) raises there, as NumPy's own ``AxisError`` is both."""


class AudioFileError(MLUtilitiesError, OSError):
    """An audio file (or file-like object) that exists but cannot be decoded: corrupt,
    truncated, empty, of an unknown format, or unreadable.

    An ``OSError``, as ``FileNotFoundError`` (what a missing file raises) is, so
    ``except OSError`` catches every file that cannot be used; ``filename`` is the file (its path,
    or the file-like object's ``name`` or ``repr``) and the message names it and the decoder's
    reason. The decoder's own exception is chained as ``__cause__``.
    """

    def __init__(self, filename: object, reason: str) -> None:
        super().__init__(f"cannot decode audio file {filename!r}: {reason}")
        self.filename = filename
        self.strerror = reason

    def __str__(self) -> str:
        # OSError's own __str__ would print "[Errno None] ..." once filename is set.
        return str(self.args[0])

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.filename, self.strerror))


class BackendUnavailableError(MLUtilitiesError, RuntimeError):
    """The requested compute backend (for example CUDA) is not built or cannot run here."""
