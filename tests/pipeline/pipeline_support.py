"""Helpers shared by the DataPipeline tests and their conftest (a module of its own: test modules
must not import ``conftest``, whose name every test folder shares)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

LASTFM = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "lastfm-hetrec2011"


def copy_frame(dsn: str, table: str, frame: pd.DataFrame) -> None:
    """CREATE TABLE + COPY (psycopg) of a DataFrame of ints, floats and text."""
    import psycopg

    types = {"i": "bigint", "u": "bigint", "f": "double precision", "b": "boolean"}
    cols = ", ".join(f'"{c}" {types.get(frame[c].dtype.kind, "text")}' for c in frame.columns)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE TABLE "{table}" ({cols})')
        with conn.cursor().copy(f'COPY "{table}" FROM STDIN') as copy:
            for row in frame.itertuples(index=False):
                copy.write_row([None if pd.isna(v) else v for v in row])


def pg_dsn(sqlalchemy_url: str) -> str:
    return sqlalchemy_url.replace("postgresql+psycopg://", "postgresql://")
