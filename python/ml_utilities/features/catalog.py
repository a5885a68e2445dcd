"""Feature extraction over catalogs of audio files: parallel, resumable, fault-tolerant."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

from ..exceptions import ParameterError
from .summary import TrackFeatures, summarize

__all__ = ["AUDIO_EXTENSIONS", "extract_catalog", "find_audio_files"]

logger = logging.getLogger(__name__)

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif", ".au", ".opus")


def find_audio_files(folder: str | os.PathLike[str]) -> list[Path]:
    """Audio files under ``folder`` (recursively), sorted, by extension."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ParameterError(f"{folder} is not a folder")
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS
    )


def _items(catalog: Any) -> list[tuple[str, Any]]:
    if isinstance(catalog, (str, os.PathLike)) and Path(catalog).is_dir():
        return [(str(p), p) for p in find_audio_files(catalog)]
    if isinstance(catalog, (str, os.PathLike)):
        return [(str(catalog), Path(catalog))]
    if isinstance(catalog, np.ndarray):
        return [("0", catalog)]
    if isinstance(catalog, Mapping):
        return [(str(k), v) for k, v in catalog.items()]
    items: list[tuple[str, Any]] = []
    for i, entry in enumerate(catalog):
        if isinstance(entry, (str, os.PathLike)):
            if Path(entry).is_dir():
                items.extend((str(p), p) for p in find_audio_files(entry))
            else:
                items.append((str(entry), Path(entry)))
        else:
            items.append((str(i), entry))
    return items


def _error_text(err: BaseException) -> str:
    """``Type: message`` of ``err``; when its own message is empty (audioread's ``EOFError()``),
    the first non-empty message down its chain of causes (soundfile's reason, say)."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = " ".join(str(current).split())
        if text:
            return f"{type(err).__name__}: {text}"
        current = current.__cause__ or current.__context__
    return f"{type(err).__name__} (no message)"


def _progress(total: int, enabled: bool | None) -> Any:
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="file", desc="features")


def extract_catalog(
    catalog: Any,
    *,
    extractor: Any = None,
    sample_rate: float = 22050,
    feature_config: dict[str, Any] | None = None,
    out: str | os.PathLike[str] | None = None,
    resume: bool = True,
    max_workers: int | None = None,
    progress: bool | None = None,
) -> TrackFeatures:
    """Summary features of every clip in ``catalog``, in parallel.

    Files are decoded on worker threads (libsndfile and soxr release the GIL) while the native
    feature code runs on others, so decoding overlaps compute. A clip that fails (corrupt,
    empty, unreadable) is recorded in ``errors`` and the rest go on.

    Parameters
    ----------
    catalog : folder, file, array, or a list / mapping of them
    out : path or None
        A Parquet file to write (atomically). With ``resume``, tracks already in it are
        skipped and kept.
    max_workers : int or None
        Threads; ``ML_UTILITIES_MAX_WORKERS`` (all cores) by default.
    progress : bool or None
        A tqdm bar; by default only on a terminal.

    Returns
    -------
    TrackFeatures
    """
    from .extractor import FeatureExtractor, _load_clip

    extractor = extractor or FeatureExtractor()
    items = _items(catalog)
    done: TrackFeatures | None = None
    if out is not None and resume and Path(out).is_file():
        done = TrackFeatures.read_parquet(out)
        known = set(done.ids)
        skipped = [k for k, _ in items if k in known]
        items = [(k, v) for k, v in items if k not in known]
        logger.info("resuming: %d tracks already in %s, %d to go", len(skipped), out, len(items))
    if max_workers is None:
        from ..config import get_settings

        max_workers = extractor.max_workers or get_settings().max_workers
    if max_workers < 1:
        raise ParameterError(f"max_workers={max_workers} must be at least 1")

    def work(key: str, clip: Any) -> tuple[str, list[str], np.ndarray]:
        y = _load_clip(clip, sample_rate)
        if y.size == 0:
            raise ParameterError(f"{key}: the clip is empty")
        feats = extractor.extract_comprehensive_features_sync(y, sample_rate, feature_config)
        names, vector = summarize(feats, duration=y.size / sample_rate)
        return key, names, vector

    results: dict[str, np.ndarray] = {}
    errors: dict[str, str] = {}
    columns: list[str] | None = done.columns if done is not None and done.columns else None
    bar = _progress(len(items), progress)
    with ThreadPoolExecutor(max_workers=max_workers) as pool:
        futures = {pool.submit(work, key, clip): key for key, clip in items}
        for future in as_completed(futures):
            key = futures[future]
            try:
                _, names, vector = future.result()
                if columns is None:
                    columns = names
                if names != columns:
                    raise ParameterError(f"{key}: features differ from the other tracks' columns")
                results[key] = vector
            except Exception as err:  # one bad file must not stop a catalog
                errors[key] = _error_text(err)
                logger.info("feature extraction failed for %s: %s", key, errors[key])
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()

    order = [k for k, _ in items if k in results]
    ids = (done.ids if done is not None else []) + order
    columns = columns or []
    new_values = np.stack([results[k] for k in order]) if order else np.zeros((0, len(columns)))
    values = (
        np.concatenate([done.values, new_values])
        if done is not None and len(done.ids)
        else new_values
    )
    table = TrackFeatures(
        ids=ids, columns=columns, values=values.reshape(len(ids), len(columns)), errors=errors
    )
    if out is not None:
        table.to_parquet(out)
    return table


def iter_paths(paths: Iterable[str | os.PathLike[str]]) -> list[str]:
    """Expand folders to their audio files; keep files as given."""
    return [key for key, _ in _items(list(paths))]
