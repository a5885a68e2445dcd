"""Ray Data recipe: read a PostgreSQL table in parallel shards and apply a registered pipeline
on every node of a Ray cluster.

Nothing here is needed on one machine. On a cluster, every worker must reach the database and
the registry, so the registry should be PostgreSQL plus an S3-compatible artifact store
(``DataPipeline(registry_url="postgresql+psycopg://...", artifact_root="s3://bucket/models")``).

Examples
--------
>>> import ray  # doctest: +SKIP
>>> ray.init(address="auto")  # doctest: +SKIP
>>> ds = read_postgresql_sharded(  # doctest: +SKIP
...     {"type": "postgresql", "table": "user_listening_history"}, shard_column="user_id",
...     n_shards=64)
>>> scored = predict_dataset(ds, "pipeline-user_satisfaction", "champion",  # doctest: +SKIP
...                          registry_url="postgresql+psycopg://mlu@db/registry",
...                          artifact_root="s3://models/artifacts")
>>> scored.write_parquet("s3://scores/2026-11-30/")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from .errors import ParameterError
from .sources import _pg_sql, _pg_uri, check_source, quote_identifier

__all__ = ["PipelinePredictor", "predict_dataset", "read_postgresql_sharded"]


def _read_shard(uri: str, sql: str, params: list[Any]) -> Any:
    from adbc_driver_postgresql import dbapi

    with dbapi.connect(uri) as conn, conn.cursor() as cur:
        cur.execute(sql, params or None)
        return cur.fetch_arrow_table()


def read_postgresql_sharded(source: dict[str, Any], *, shard_column: str, n_shards: int = 8) -> Any:
    """A ``ray.data.Dataset`` of a PostgreSQL ``table`` (or ``query``), read by ``n_shards``
    Ray tasks in parallel, each fetching the rows whose integer ``shard_column`` is
    ``i mod n_shards`` through ADBC as one Arrow table.

    The source dict is the pipeline's (``url`` / ``url_env`` / ``ML_UTILITIES_POSTGRES_URL``,
    ``table`` or ``query`` with ``params``, ``columns``); ``shard_column`` is validated and
    quoted like every identifier.
    """
    import ray
    import ray.data

    spec = check_source(source)
    if spec["type"] != "postgresql":
        raise ParameterError(f"source type {spec['type']!r}: expected a postgresql source")
    if isinstance(n_shards, bool) or not isinstance(n_shards, int) or n_shards < 1:
        raise ParameterError(f"n_shards={n_shards!r}: expected a positive integer")
    key = quote_identifier(shard_column)
    sql, params = _pg_sql(spec)
    uri = _pg_uri(spec)
    task = ray.remote(_read_shard)
    n = len(params)
    refs = [
        task.remote(
            uri,
            f"SELECT * FROM ({sql}) AS mlu_shard WHERE mod({key}, ${n + 1}) = ${n + 2}",
            [*params, n_shards, i],
        )
        for i in range(n_shards)
    ]
    return ray.data.from_arrow_refs(refs)


class PipelinePredictor:
    """A Ray Data callable class: loads a registered pipeline once per worker and adds its
    predictions (column ``prediction``; ``proba_<class>`` columns for classifiers) to each
    pandas batch."""

    def __init__(
        self,
        name: str,
        version: int | str | None = None,
        registry_url: str | None = None,
        artifact_root: str | None = None,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        from .core import DataPipeline

        pipeline = DataPipeline(
            registry_url=registry_url, artifact_root=artifact_root, storage_options=storage_options
        )
        self.model = pipeline.load_pipeline_sync(name, version)

    def __call__(self, batch: Any) -> Any:
        out = batch.copy()
        out["prediction"] = self.model.predict(batch)
        if self.model.classes is not None:
            proba = self.model.predict_proba(batch)
            for j, c in enumerate(self.model.classes):
                out[f"proba_{c}"] = proba[:, j]
        return out


def predict_dataset(
    dataset: Any,
    name: str,
    version: int | str | None = None,
    *,
    registry_url: str | None = None,
    artifact_root: str | None = None,
    storage_options: dict[str, Any] | None = None,
    batch_size: int = 4096,
    concurrency: int = 2,
) -> Any:
    """Apply a registered pipeline to a ``ray.data.Dataset`` with ``concurrency`` actors."""
    return dataset.map_batches(
        PipelinePredictor,
        fn_constructor_kwargs={
            "name": name,
            "version": version,
            "registry_url": registry_url,
            "artifact_root": None if artifact_root is None else str(artifact_root),
            "storage_options": storage_options,
        },
        batch_format="pandas",
        batch_size=batch_size,
        concurrency=concurrency,
    )
