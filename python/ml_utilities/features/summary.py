"""Track-level summaries: one clip's features as one fixed-length, named vector."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._fs import atomic_file

__all__ = ["STATS", "TrackFeatures", "summarize"]

# Statistics over frames, per feature row: stable order, stable names.
STATS = ("mean", "std", "p10", "p50", "p90")


def _row_stats(matrix: np.ndarray) -> np.ndarray:
    """(rows, frames) -> (rows, len(STATS)) in float64; an empty clip gives zeros."""
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim == 1:
        m = m[np.newaxis, :]
    if m.shape[-1] == 0:
        return np.zeros((m.shape[0], len(STATS)))
    p10, p50, p90 = np.percentile(m, [10, 50, 90], axis=-1)
    return np.stack([m.mean(axis=-1), m.std(axis=-1), p10, p50, p90], axis=-1)


def summarize(
    features: dict[str, dict[str, Any]], duration: float | None = None
) -> tuple[list[str], np.ndarray]:
    """Flatten the nested feature dictionary into named columns and a float64 vector.

    Frame-level features give ``group.feature.row.stat`` columns (``STATS`` per row); scalars
    (tempo, harmonicity) one column each; beat and onset frame lists their count and, with
    ``duration`` (seconds), their rate per second. Features that are ``None`` are skipped, so
    a configuration always gives the same columns.
    """
    names: list[str] = []
    values: list[float] = []
    for group in sorted(features):
        for name in sorted(features[group]):
            value = features[group][name]
            if value is None:
                continue
            key = f"{group}.{name}"
            if name in ("beats", "onsets"):
                count = float(np.asarray(value).size)
                names.append(f"{key}.count")
                values.append(count)
                if duration:
                    names.append(f"{key}.per_second")
                    values.append(count / duration)
                continue
            array = np.asarray(value)
            if array.ndim == 0:
                names.append(key)
                values.append(float(array))
                continue
            stats = _row_stats(array)
            for row in range(stats.shape[0]):
                for s, stat in enumerate(STATS):
                    names.append(f"{key}.{row}.{stat}")
                    values.append(float(stats[row, s]))
    return names, np.asarray(values, dtype=np.float64)


@dataclass
class TrackFeatures:
    """Summary vectors of many tracks: ``values[i]`` belongs to ``ids[i]``.

    ``errors`` maps the clips that failed to their reason; ``extracted`` lists the ids this
    run computed (with ``extract_catalog(out=..., resume=True)`` the others were kept from the
    file).
    """

    ids: list[str]
    columns: list[str]
    values: np.ndarray
    errors: dict[str, str] = field(default_factory=dict)
    extracted: list[str] = field(default_factory=list, compare=False)

    def to_pandas(self) -> Any:
        import pandas as pd

        return pd.DataFrame(
            self.values, index=pd.Index(self.ids, name="track"), columns=self.columns
        )

    def to_parquet(self, path: str | os.PathLike[str]) -> Path:
        """Write one row per track (column ``track`` first), atomically: a temporary file in the
        same folder is flushed to disk and renamed over ``path`` only once complete. The file
        gets the umask's default mode."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = Path(path)
        table = pa.table(
            {
                "track": pa.array(self.ids, pa.string()),
                **{
                    c: pa.array(self.values[:, i], pa.float64()) for i, c in enumerate(self.columns)
                },
            }
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(path) as handle:
            pq.write_table(table, handle)
        return path

    @classmethod
    def read_parquet(cls, path: str | os.PathLike[str]) -> TrackFeatures:
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        ids = [str(v) for v in table.column("track").to_pylist()]
        columns = [c for c in table.column_names if c != "track"]
        values = (
            np.column_stack([table.column(c).to_numpy() for c in columns])
            if columns
            else np.zeros((len(ids), 0))
        )
        return cls(
            ids=ids,
            columns=columns,
            values=np.asarray(values, dtype=np.float64).reshape(len(ids), len(columns)),
        )
