"""Reading a 1,000,000-row PostgreSQL table into a DataFrame: the pipeline's PostgreSQL source
(ADBC, Arrow columns end to end; and connectorx) against ``pandas.read_sql`` over SQLAlchemy
(psycopg), in the same run on the same server.

Run:   python -m pytest benchmarks/pipeline -o addopts="" --benchmark-enable -q
(``-o addopts=""`` clears the project's default ``--benchmark-disable``.) Each benchmark checks
its frame (row count, column sums) against the expected values before it is timed.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("adbc_driver_postgresql", reason="the benchmark needs adbc-driver-postgresql")
pytest.importorskip("sqlalchemy", reason="the benchmark needs SQLAlchemy (the peer)")

N_ROWS = 1_000_000
TABLE = "listens_1m"
RESULTS: dict[str, float] = {}


from ml_utilities.pipeline import read_source  # noqa: E402


@pytest.fixture(scope="module")
def table(postgres_server):
    """1,000,000 rows: ids, counts, a float, a timestamp and a short text, generated in SQL."""
    import psycopg

    dsn = postgres_server.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
        conn.execute(
            f"CREATE TABLE {TABLE} AS SELECT g::bigint AS id, (g % 1892)::bigint AS user_id, "
            "(g * 7 % 17632)::bigint AS artist_id, (g % 1000)::int AS plays, "
            "(g % 997) / 997.0::float8 AS score, "
            "timestamp '2011-01-01' + (g || ' seconds')::interval AS played_at, "
            "(ARRAY['rock','pop','jazz','metal'])[g % 4 + 1] AS genre "
            f"FROM generate_series(1, {N_ROWS}) AS g"
        )
        conn.execute(f"ANALYZE {TABLE}")
        plays = conn.execute(f"SELECT sum(plays), sum(score) FROM {TABLE}").fetchone()
    return postgres_server + "/postgres", (int(plays[0]), float(plays[1]))


def _check(frame, sums) -> None:
    assert len(frame) == N_ROWS
    assert int(frame["plays"].sum()) == sums[0]
    assert float(frame["score"].sum()) == pytest.approx(sums[1], rel=1e-9)
    assert set(frame["genre"].unique()) == {"rock", "pop", "jazz", "metal"}
    assert np.issubdtype(frame["played_at"].dtype, np.datetime64)


@pytest.mark.benchmark(group="postgresql read 1M rows -> DataFrame")
def test_peer_pandas_read_sql(benchmark, table):
    import pandas as pd
    import sqlalchemy as sa

    url, sums = table
    engine = sa.create_engine(url)

    def run():
        with engine.connect() as conn:
            return pd.read_sql(sa.text(f"SELECT * FROM {TABLE}"), conn)

    _check(run(), sums)
    RESULTS["peer"] = benchmark.pedantic(run, rounds=3, iterations=1)
    engine.dispose()


@pytest.mark.benchmark(group="postgresql read 1M rows -> DataFrame")
def test_ours_adbc(benchmark, table):
    url, sums = table
    spec = {"type": "postgresql", "url": url, "table": TABLE}
    _check(read_source(spec), sums)
    benchmark.pedantic(read_source, args=(spec,), rounds=5, iterations=1)


@pytest.mark.benchmark(group="postgresql read 1M rows -> DataFrame (connectorx)")
def test_ours_connectorx(benchmark, table):
    pytest.importorskip("connectorx", reason="connectorx is optional")
    url, sums = table
    spec = {"type": "postgresql", "url": url, "table": TABLE, "engine": "connectorx"}
    _check(read_source(spec), sums)
    benchmark.pedantic(read_source, args=(spec,), rounds=5, iterations=1)
