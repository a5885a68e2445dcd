"""Data sources of the pipeline: files, audio folders, PostgreSQL, Redis, S3, HTTP APIs, streams.

Every source is a dict with a ``type`` (the specification's ``data_sources`` list) and is read
into a :class:`pandas.DataFrame` by :func:`read_source`, or in chunks by :func:`iter_batches`.
Tabular stores are read column-wise through Arrow (ADBC or connectorx for PostgreSQL, pyarrow
for Parquet/CSV), never row by row through Python objects.

Connection URLs come from the source (``url``), from an environment variable it names
(``url_env``), or from the default variable of its type:

=============  =====================================  ===========================================
type           default variable                       example
=============  =====================================  ===========================================
postgresql     ``ML_UTILITIES_POSTGRES_URL``           ``postgresql://user@host:5432/db``
redis          ``ML_UTILITIES_REDIS_URL``              ``redis://host:6379/0``
s3             ``ML_UTILITIES_S3_ENDPOINT_URL``        ``http://127.0.0.1:9000`` (AWS when unset)
api            (the source's ``url``)                  ``https://host/v1/listens``
=============  =====================================  ===========================================

SQL identifiers (tables, columns) must match ``[A-Za-z_][A-Za-z0-9_]*`` (optionally
``schema.table``) and are double-quoted; values of a ``query`` are bound as parameters
(``$1``, ``$2``... with ``params=[...]``), never formatted into the SQL.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import logging
import os
import re
from collections.abc import AsyncIterable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import PipelineConfigError, SourceError

__all__ = [
    "ENV_URLS",
    "SOURCE_KEYS",
    "SOURCE_TYPES",
    "check_source",
    "iter_batches",
    "quote_identifier",
    "read_source",
    "read_source_async",
    "read_sources",
]

logger = logging.getLogger(__name__)

#: the :class:`~ml_utilities.config.Settings` field read from each ``ENV_URLS`` variable
_SETTING = {"postgresql": "postgres_url", "redis": "redis_url", "s3": "s3_endpoint_url"}
#: default environment variable holding each store's URL
ENV_URLS = {
    "postgresql": "ML_UTILITIES_POSTGRES_URL",
    "redis": "ML_UTILITIES_REDIS_URL",
    "s3": "ML_UTILITIES_S3_ENDPOINT_URL",
}
_COMMON = ("type", "name", "join_on", "columns", "rename", "limit")
#: accepted keys per source type (beyond the common ones)
SOURCE_KEYS: dict[str, tuple[str, ...]] = {
    "file": ("path", "format", "sep", "storage_options"),
    "audio": ("path", "sample_rate", "feature_config", "max_workers", "id_column"),
    "postgresql": ("url", "url_env", "table", "query", "params", "engine", "chunk_size"),
    "redis": ("url", "url_env", "key_pattern", "key_column", "scan_count"),
    "s3": (
        "bucket",
        "prefix",
        "format",
        "sep",
        "endpoint_url",
        "url_env",
        "storage_options",
    ),
    "api": (
        "url",
        "url_env",
        "params",
        "headers",
        "records_path",
        "next_path",
        "page_param",
        "max_pages",
        "timeout",
    ),
    "stream": ("records", "max_records"),
}
SOURCE_TYPES = tuple(SOURCE_KEYS)
_TYPE_ALIASES = {
    "postgres": "postgresql",
    "csv": "file",
    "parquet": "file",
    "json": "file",
    "jsonl": "file",
    "files": "file",
    "http": "api",
    "https": "api",
    "rest": "api",
    "iterator": "stream",
    "audio_folder": "audio",
}
#: a plain SQL identifier; used with ``fullmatch`` (``$`` would also match before a final
#: newline, letting ``"users\n"`` through)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
#: an S3 bucket name (3-63 lowercase letters, digits, dots and hyphens), with ``fullmatch``
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-]{1,62}")
_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".dat": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
}


# -- configuration ---------------------------------------------------------------------------------
def check_source(spec: Any, index: int = 0) -> dict[str, Any]:
    """Validate one ``data_sources`` entry; returns a copy with ``type`` made canonical."""
    where = f"data_sources[{index}]"
    if not isinstance(spec, dict):
        raise PipelineConfigError(f"{where}={spec!r}: expected a dict with a 'type'")
    if "type" not in spec:
        raise PipelineConfigError(f"{where} has no 'type'; expected one of {list(SOURCE_TYPES)}")
    kind = spec["type"]
    canonical = _TYPE_ALIASES.get(str(kind).lower(), str(kind).lower())
    if canonical not in SOURCE_KEYS:
        raise PipelineConfigError(
            f"{where}: type={kind!r} is not a source type; expected one of {list(SOURCE_TYPES)}"
        )
    allowed = set(_COMMON) | set(SOURCE_KEYS[canonical])
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise PipelineConfigError(
            f"{where} (type {canonical!r}): unknown key(s) {unknown}; accepted: {sorted(allowed)}"
        )
    out = dict(spec)
    out["type"] = canonical
    if canonical == "postgresql":
        if ("table" in out) == ("query" in out):
            raise PipelineConfigError(f"{where}: give exactly one of 'table' or 'query'")
        if "table" in out:
            quote_identifier(out["table"], allow_schema=True)
        if "params" in out and "query" not in out:
            raise PipelineConfigError(f"{where}: 'params' go with a 'query'")
        engine = out.get("engine", "adbc")
        if engine not in ("adbc", "connectorx"):
            raise PipelineConfigError(
                f"{where}: engine={engine!r}; expected 'adbc' or 'connectorx'"
            )
        if engine == "connectorx" and out.get("params"):
            raise PipelineConfigError(
                f"{where}: engine='connectorx' cannot bind parameters; use engine='adbc'"
            )
    elif canonical == "redis":
        pattern = out.get("key_pattern")
        if not isinstance(pattern, str) or not pattern:
            raise PipelineConfigError(f"{where}: key_pattern={pattern!r}: expected a glob string")
    elif canonical == "s3":
        bucket = out.get("bucket")
        if not isinstance(bucket, str) or not _BUCKET.fullmatch(bucket):
            raise PipelineConfigError(f"{where}: bucket={bucket!r} is not a valid bucket name")
    elif canonical in ("file", "audio"):
        if not isinstance(out.get("path"), (str, os.PathLike)):
            raise PipelineConfigError(f"{where}: path={out.get('path')!r}: expected a path")
    elif canonical == "api":
        if "url" not in out and "url_env" not in out:
            raise PipelineConfigError(f"{where}: an api source needs 'url' (or 'url_env')")
    elif canonical == "stream":
        records = out.get("records")
        if not isinstance(records, (Iterable, AsyncIterable)) or isinstance(records, (str, dict)):
            raise PipelineConfigError(
                f"{where}: records={records!r}: expected an iterator or async iterator of records"
            )
    for key in ("columns",):
        if key in out:
            cols = out[key]
            if not isinstance(cols, (list, tuple)) or not all(isinstance(c, str) for c in cols):
                raise PipelineConfigError(f"{where}: {key}={cols!r}: expected a list of names")
    limit = out.get("limit")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise PipelineConfigError(f"{where}: limit={limit!r}: expected a positive integer")
    return out


def quote_identifier(name: Any, *, allow_schema: bool = False) -> str:
    """Validate a SQL identifier and return it double-quoted (``schema.table`` allowed).

    Raises
    ------
    SourceError
        If ``name`` is not a plain identifier: a hostile value such as
        ``"users; DROP TABLE users"`` never reaches the database.
    """
    if not isinstance(name, str):
        raise SourceError(f"identifier {name!r}: expected a string")
    parts = name.split(".") if allow_schema else [name]
    if len(parts) > 2 or not all(_IDENT.fullmatch(p) for p in parts):
        raise SourceError(
            f"identifier {name!r} is refused: use letters, digits and '_' (not starting with a "
            "digit, at most 63 characters)"
            + (", optionally 'schema.table'" if allow_schema else "")
        )
    return ".".join(f'"{p}"' for p in parts)


def _url(spec: dict[str, Any], kind: str, required: bool = True) -> str | None:
    if spec.get("url"):
        return str(spec["url"])
    var = spec.get("url_env") or ENV_URLS.get(kind)
    if spec.get("url_env"):
        from ..config import read_variable

        value = read_variable(var)
    elif var:  # the store's ML_UTILITIES_* variable, parsed and checked with the settings
        from ..config import Settings

        value = getattr(Settings.from_env(), _SETTING[kind]) or ""
    else:
        value = ""
    if value:
        return value
    if required:
        raise SourceError(
            f"no URL for the {kind} source: give 'url' in the source or set ${var}"
            if var
            else f"no URL for the {kind} source: give 'url'"
        )
    return None


# -- reading --------------------------------------------------------------------------------------
def read_source(spec: dict[str, Any], index: int = 0) -> pd.DataFrame:
    """Read one source completely into a DataFrame (see the module docstring for the types).

    Raises
    ------
    SourceError
        Missing table/bucket/file, a Redis key of the wrong type, an empty result...
    PipelineConfigError
        A malformed source dict.
    """
    spec = check_source(spec, index)
    kind = spec["type"]
    reader = _READERS[kind]
    frame = reader(spec)
    return _finish(frame, spec, index)


async def read_source_async(spec: dict[str, Any], index: int = 0) -> pd.DataFrame:
    """Coroutine of :func:`read_source`: async iterators are consumed on the event loop, every
    other source in a worker thread."""
    spec = check_source(spec, index)
    if spec["type"] == "stream" and isinstance(spec["records"], AsyncIterable):
        records = await _collect_async(spec["records"], spec.get("max_records"))
        return _finish(_records_frame(records, "stream"), spec, index)
    return await asyncio.to_thread(read_source, spec, index)


def read_sources(specs: list[dict[str, Any]]) -> list[pd.DataFrame]:
    """Read every source in order (synchronously)."""
    return [read_source(s, i) for i, s in enumerate(specs)]


def _finish(frame: pd.DataFrame, spec: dict[str, Any], index: int) -> pd.DataFrame:
    label = spec.get("name") or spec["type"]
    if "rename" in spec:
        frame = frame.rename(columns=dict(spec["rename"]))
    if "columns" in spec:
        missing = [c for c in spec["columns"] if c not in frame.columns]
        if missing:
            raise SourceError(
                f"data_sources[{index}] ({label}): column(s) {missing} not found; it has "
                f"{list(frame.columns)}"
            )
        frame = frame[list(spec["columns"])]
    if spec.get("limit"):
        frame = frame.head(spec["limit"])
    if len(frame) == 0:
        raise SourceError(f"data_sources[{index}] ({label}) is empty: it returned no rows")
    return frame.reset_index(drop=True)


# files -------------------------------------------------------------------------------------------
def _format_of(path: str, spec: dict[str, Any]) -> str:
    fmt = spec.get("format")
    if fmt is None:
        suffix = Path(path.split("?")[0]).suffix.lower()
        if suffix not in _FORMATS:
            raise SourceError(
                f"cannot tell the format of {path!r} from its extension; give format= one of "
                f"{sorted(set(_FORMATS.values()))}"
            )
        fmt = _FORMATS[suffix]
    if fmt not in set(_FORMATS.values()):
        raise PipelineConfigError(
            f"format={fmt!r}: expected one of {sorted(set(_FORMATS.values()))}"
        )
    return str(fmt)


def _read_table_file(fh: Any, fmt: str, spec: dict[str, Any], name: str) -> pd.DataFrame:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.read_table(fh).to_pandas()
    if fmt in ("csv", "tsv"):
        import pyarrow.csv as pcsv

        sep = spec.get("sep", "\t" if fmt == "tsv" else ",")
        try:
            table = pcsv.read_csv(fh, parse_options=pcsv.ParseOptions(delimiter=sep))
        except Exception as err:
            raise SourceError(f"{name}: cannot parse as {fmt} ({err})") from err
        return table.to_pandas()
    if fmt == "jsonl":
        return pd.read_json(fh, lines=True)
    data = json.load(fh)
    return pd.DataFrame(_records_from_json(data, None, name))


def _read_file(spec: dict[str, Any]) -> pd.DataFrame:
    path = str(spec["path"])
    if "://" not in path:
        local = Path(path)
        if local.is_dir():
            from ..features.catalog import find_audio_files

            if find_audio_files(local):
                return _read_audio(spec)
            files = sorted(p for p in local.rglob("*") if p.suffix.lower() in _FORMATS)
            if not files:
                raise SourceError(f"folder {path} holds no audio, CSV, Parquet or JSON files")
            frames = []
            for p in files:
                with open(p, "rb") as fh:
                    frames.append(_read_table_file(fh, _format_of(str(p), spec), spec, str(p)))
            return pd.concat(frames, ignore_index=True)
        if not local.is_file():
            raise SourceError(f"file {path} does not exist")
    import fsspec

    fmt = _format_of(path, spec)
    try:
        with fsspec.open(path, "rb", **dict(spec.get("storage_options") or {})) as fh:
            return _read_table_file(fh, fmt, spec, path)
    except FileNotFoundError as err:
        raise SourceError(f"file {path} does not exist") from err


def _read_audio(spec: dict[str, Any]) -> pd.DataFrame:
    from ..features.catalog import extract_catalog

    path = Path(spec["path"])
    if not path.exists():
        raise SourceError(f"audio folder {path} does not exist")
    table = extract_catalog(
        path,
        sample_rate=spec.get("sample_rate", 22050),
        feature_config=spec.get("feature_config"),
        max_workers=spec.get("max_workers"),
        progress=False,
    )
    if table.errors and not table.ids:
        first = next(iter(table.errors.items()))
        raise SourceError(
            f"audio source {path}: every clip failed ({len(table.errors)}), e.g. {first[0]}: "
            f"{first[1]}"
        )
    if table.errors:
        logger.warning(
            "audio source %s: %d clip(s) failed: %s", path, len(table.errors), table.errors
        )
    frame = table.to_pandas().reset_index()
    id_column = spec.get("id_column", "track")
    frame = frame.rename(columns={"track": id_column})
    frame[id_column] = [Path(t).name for t in frame[id_column]]
    return frame


# PostgreSQL --------------------------------------------------------------------------------------
def _pg_uri(spec: dict[str, Any]) -> str:
    url = _url(spec, "postgresql")
    assert url is not None
    # SQLAlchemy-style URLs name a driver: ADBC and connectorx want plain libpq URIs
    return re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql://", url)


def _pg_sql(spec: dict[str, Any]) -> tuple[str, list[Any]]:
    if "table" in spec:
        cols = "*"
        if "columns" in spec:
            cols = ", ".join(quote_identifier(c) for c in spec["columns"])
        sql = f"SELECT {cols} FROM {quote_identifier(spec['table'], allow_schema=True)}"
        if spec.get("limit"):
            sql += f" LIMIT {int(spec['limit'])}"
        return sql, []
    query = spec["query"]
    if not isinstance(query, str) or not query.strip():
        raise PipelineConfigError(f"query={query!r}: expected SQL text")
    params = spec.get("params") or []
    if not isinstance(params, (list, tuple)):
        raise PipelineConfigError(
            f"params={params!r}: expected a list bound to $1, $2, ... in the query"
        )
    return query, list(params)


def _pg_error(err: Exception, spec: dict[str, Any]) -> SourceError:
    what = spec.get("table") or "query"
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if "does not exist" in text and "table" in spec:
        return SourceError(f"PostgreSQL table {spec['table']!r} does not exist ({text})")
    return SourceError(f"PostgreSQL source {what!r} failed: {text}")


def _read_postgresql(spec: dict[str, Any]) -> pd.DataFrame:
    return _arrow_to_pandas(_pg_arrow(spec))


def _pg_arrow(spec: dict[str, Any]) -> Any:
    """The whole result as one ``pyarrow.Table``."""
    sql, params = _pg_sql(spec)
    uri = _pg_uri(spec)
    if spec.get("engine", "adbc") == "connectorx":
        import connectorx as cx

        try:
            return cx.read_sql(uri, sql, return_type="arrow")
        except Exception as err:
            raise _pg_error(err, spec) from err
    from adbc_driver_postgresql import dbapi

    try:
        with dbapi.connect(uri) as conn, conn.cursor() as cur:
            cur.execute(sql, params or None)
            return cur.fetch_arrow_table()
    except dbapi.Error as err:
        raise _pg_error(err, spec) from err


def _arrow_to_pandas(table: Any) -> pd.DataFrame:
    # NumPy-backed columns (not ArrowDtype) so scikit-learn and pandas code downstream behave
    return table.to_pandas()


def _pg_batches(spec: dict[str, Any], chunk_size: int) -> Iterator[pd.DataFrame]:
    sql, params = _pg_sql(spec)
    from adbc_driver_postgresql import dbapi

    try:
        with dbapi.connect(_pg_uri(spec)) as conn, conn.cursor() as cur:
            cur.execute(sql, params or None)
            reader = cur.fetch_record_batch()
            yield from _rebatch((b for b in reader), chunk_size)
    except dbapi.Error as err:
        raise _pg_error(err, spec) from err


def _rebatch(batches: Iterable[Any], chunk_size: int) -> Iterator[pd.DataFrame]:
    """Arrow record batches of any size -> DataFrames of ``chunk_size`` rows (the last shorter)."""
    import pyarrow as pa

    pending: list[Any] = []
    n = 0
    for batch in batches:
        pending.append(batch)
        n += batch.num_rows
        while n >= chunk_size:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, chunk_size).to_pandas()
            rest = table.slice(chunk_size)
            pending, n = rest.to_batches(), rest.num_rows
    if n:
        yield pa.Table.from_batches(pending).to_pandas()


# Redis -------------------------------------------------------------------------------------------
def _redis_key_regex(pattern: str) -> re.Pattern[str]:
    regex = fnmatch.translate(pattern)
    # fnmatch turns '*' into '.*': capture the first wildcard so it can become a column
    return re.compile(regex.replace(".*", "(.*?)", 1)) if "*" in pattern else re.compile(regex)


def _redis_key_column(spec: dict[str, Any]) -> str | None:
    """``user:*:features`` -> ``user_id``: the segment before the first ``*`` plus ``_id``."""
    given = spec.get("key_column", "auto")
    if given != "auto":
        return given
    m = re.search(r"([A-Za-z][A-Za-z0-9_]*)[:/._-]\*", spec["key_pattern"])
    return f"{m.group(1)}_id" if m else "key"


def _redis_client(spec: dict[str, Any]) -> Any:
    import redis

    return redis.Redis.from_url(_url(spec, "redis"), decode_responses=True)


def _redis_scan(client: Any, spec: dict[str, Any]) -> Iterator[list[str]]:
    count = int(spec.get("scan_count", 1000))
    batch: list[str] = []
    for key in client.scan_iter(match=spec["key_pattern"], count=count):
        batch.append(key)
        if len(batch) >= count:
            yield sorted(batch)
            batch = []
    if batch:
        yield sorted(batch)


#: the type name ``TYPE`` gives a RedisJSON module document
_REDISJSON_TYPE = "ReJSON-RL"


def _redis_records(client: Any, keys: list[str], spec: dict[str, Any]) -> list[dict[str, Any]]:
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.type(key)
    types = pipe.execute()
    pipe = client.pipeline(transaction=False)
    for key, kind in zip(keys, types, strict=True):
        if kind == "hash":
            pipe.hgetall(key)
        elif kind == "string":
            pipe.get(key)
        elif kind == "stream":
            pipe.xrange(key)
        elif kind == _REDISJSON_TYPE:
            # a RedisJSON document (the module's type): its root, as JSON text of a 1-list
            pipe.execute_command("JSON.GET", key, "$")
        else:
            raise SourceError(
                f"Redis key {key!r} is a {kind}; the redis source reads hashes, JSON strings, "
                "RedisJSON documents and streams"
            )
    values = pipe.execute()
    key_re = _redis_key_regex(spec["key_pattern"])
    key_col = _redis_key_column(spec)
    records: list[dict[str, Any]] = []
    for key, kind, value in zip(keys, types, values, strict=True):
        m = key_re.match(key)
        ident = m.group(1) if m and m.groups() else key
        base = {key_col: ident} if key_col else {}
        if kind == "hash":
            records.append({**base, **value})
        elif kind in ("string", _REDISJSON_TYPE):
            try:
                obj = json.loads(value)
                if kind == _REDISJSON_TYPE:  # JSON.GET with a JSONPath answers a list
                    obj = obj[0] if isinstance(obj, list) and len(obj) == 1 else obj
            except json.JSONDecodeError as err:
                raise SourceError(
                    f"Redis key {key!r} holds a string that is not JSON ({err.msg} at "
                    f"{err.pos}): {value[:60]!r}"
                ) from None
            if isinstance(obj, dict):
                records.append({**base, **obj})
            elif isinstance(obj, list) and all(isinstance(o, dict) for o in obj):
                records.extend({**base, **o} for o in obj)
            else:
                raise SourceError(
                    f"Redis key {key!r} holds JSON {type(obj).__name__}, expected an object"
                )
        else:  # stream: one record per entry
            records.extend({**base, "stream_id": eid, **fields} for eid, fields in value)
    return records


def _numeric(frame: pd.DataFrame) -> pd.DataFrame:
    """Redis and JSON give strings: turn columns whose every value parses into numbers."""
    for col in frame.columns:
        if frame[col].dtype == object or pd.api.types.is_string_dtype(frame[col]):
            converted = pd.to_numeric(frame[col], errors="coerce")
            if converted.notna().sum() == frame[col].notna().sum():
                frame[col] = converted
    return frame


def _read_redis(spec: dict[str, Any]) -> pd.DataFrame:
    client = _redis_client(spec)
    try:
        records: list[dict[str, Any]] = []
        for keys in _redis_scan(client, spec):
            records.extend(_redis_records(client, keys, spec))
    finally:
        client.close()
    return _numeric(pd.DataFrame.from_records(records))


def _redis_batches(spec: dict[str, Any], chunk_size: int) -> Iterator[pd.DataFrame]:
    client = _redis_client(spec)
    try:
        buf: list[dict[str, Any]] = []
        for keys in _redis_scan(client, {**spec, "scan_count": min(chunk_size, 10_000)}):
            buf.extend(_redis_records(client, keys, spec))
            while len(buf) >= chunk_size:
                yield _numeric(pd.DataFrame.from_records(buf[:chunk_size]))
                buf = buf[chunk_size:]
        if buf:
            yield _numeric(pd.DataFrame.from_records(buf))
    finally:
        client.close()


# S3 ----------------------------------------------------------------------------------------------
def _s3_fs(spec: dict[str, Any]) -> Any:
    import s3fs

    options = dict(spec.get("storage_options") or {})
    endpoint = spec.get("endpoint_url") or _url({"url_env": spec.get("url_env")}, "s3", False)
    if endpoint:
        options.setdefault("endpoint_url", endpoint)
    return s3fs.S3FileSystem(**options)


def _s3_files(fs: Any, spec: dict[str, Any]) -> list[str]:
    bucket, prefix = spec["bucket"], str(spec.get("prefix", "")).lstrip("/")
    try:
        if not fs.exists(bucket):
            raise SourceError(f"S3 bucket {bucket!r} does not exist")
        found = fs.find(f"{bucket}/{prefix}") if prefix else fs.find(bucket)
    except SourceError:
        raise
    except Exception as err:
        raise SourceError(f"cannot list s3://{bucket}/{prefix}: {err}") from err
    files = [f for f in found if f.startswith(f"{bucket}/{prefix}")]
    if spec.get("format") is None:
        files = [f for f in files if Path(f).suffix.lower() in _FORMATS]
    if not files:
        raise SourceError(f"S3 source s3://{bucket}/{prefix} is empty: no data files under it")
    return sorted(files)


def _read_s3(spec: dict[str, Any]) -> pd.DataFrame:
    fs = _s3_fs(spec)
    frames = []
    for f in _s3_files(fs, spec):
        with fs.open(f, "rb") as fh:
            frames.append(_read_table_file(fh, _format_of(f, spec), spec, f"s3://{f}"))
    return pd.concat(frames, ignore_index=True)


# HTTP APIs ---------------------------------------------------------------------------------------
def _dig(obj: Any, path: str | None) -> Any:
    if path is None:
        return obj
    for part in path.split("."):
        if not isinstance(obj, dict) or part not in obj:
            return None
        obj = obj[part]
    return obj


def _records_from_json(data: Any, path: str | None, where: str) -> list[dict[str, Any]]:
    if path is not None:
        data = _dig(data, path)
    elif isinstance(data, dict):
        for key in ("data", "results", "items", "records"):
            if isinstance(data.get(key), list):
                data = data[key]
                break
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise SourceError(
            f"{where}: expected a JSON list of objects"
            + (f" at {path!r}" if path else " (or under 'data', 'results', 'items', 'records')")
        )
    return data


def _api_pages(spec: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
    import httpx

    url = _url(spec, "api")
    params: dict[str, Any] | None = dict(spec.get("params") or {})
    max_pages = int(spec.get("max_pages", 10_000))
    page_param = spec.get("page_param")
    page = int(params.get(page_param, 1)) if page_param else 0
    with httpx.Client(headers=spec.get("headers"), timeout=spec.get("timeout", 30.0)) as client:
        for _ in range(max_pages):
            if page_param and params is not None:
                params[page_param] = page
            try:
                resp = client.get(url, params=params)
                resp.raise_for_status()
                data = resp.json()
            except httpx.HTTPError as err:
                raise SourceError(f"API source {url}: {err}") from err
            except ValueError as err:
                raise SourceError(f"API source {url}: the response is not JSON ({err})") from err
            records = _records_from_json(data, spec.get("records_path"), str(resp.url))
            yield records
            if page_param:
                if not records:
                    return
                page += 1
                continue
            nxt = _dig(data, spec.get("next_path", "next")) if isinstance(data, dict) else None
            if not nxt:
                return
            # the next link carries its own query: passing params would replace it
            url, params = str(httpx.URL(str(resp.url)).join(str(nxt))), None


def _read_api(spec: dict[str, Any]) -> pd.DataFrame:
    records = [r for page in _api_pages(spec) for r in page]
    return _records_frame(records, "api")


# streams -----------------------------------------------------------------------------------------
def _records_frame(records: list[Any], what: str) -> pd.DataFrame:
    if records and all(isinstance(r, pd.DataFrame) for r in records):
        return pd.concat(records, ignore_index=True)
    if not all(isinstance(r, dict) for r in records):
        bad = next(r for r in records if not isinstance(r, dict))
        raise SourceError(f"{what} source: records must be dicts (or DataFrames), got {bad!r}")
    return pd.DataFrame.from_records(records)


async def _collect_async(records: AsyncIterable[Any], max_records: int | None) -> list[Any]:
    out = []
    async for r in records:
        out.append(r)
        if max_records and len(out) >= max_records:
            break
    return out


def _read_stream(spec: dict[str, Any]) -> pd.DataFrame:
    records = spec["records"]
    limit = spec.get("max_records")
    if isinstance(records, AsyncIterable):
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return _records_frame(asyncio.run(_collect_async(records, limit)), "stream")
        raise SourceError(
            "an async iterator cannot be read synchronously inside a running event loop: "
            "use the coroutine (run_complete_pipeline / read_source_async)"
        )
    out = []
    for r in records:
        out.append(r)
        if limit and len(out) >= limit:
            break
    return _records_frame(out, "stream")


_READERS = {
    "file": _read_file,
    "audio": _read_audio,
    "postgresql": _read_postgresql,
    "redis": _read_redis,
    "s3": _read_s3,
    "api": _read_api,
    "stream": _read_stream,
}


# chunked reading ---------------------------------------------------------------------------------
def iter_batches(spec: dict[str, Any], chunk_size: int = 100_000) -> Iterator[pd.DataFrame]:
    """Read a source in DataFrames of at most ``chunk_size`` rows, holding one chunk at a time.

    PostgreSQL streams Arrow record batches from one cursor (ADBC), Parquet files are read
    row group by row group, CSV files block by block (locally or under an S3 prefix, file after
    file), Redis keys SCAN batch by SCAN batch, API sources page by page and streams record by
    record; so a table larger than memory can be processed (see
    :func:`ml_utilities.pipeline.fit_incremental`).
    """
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise PipelineConfigError(f"chunk_size={chunk_size!r}: expected a positive integer")
    spec = check_source(spec)
    kind = spec["type"]
    produced = 0
    if kind == "postgresql":
        gen: Iterator[pd.DataFrame] = _pg_batches(spec, chunk_size)
    elif kind == "redis":
        gen = _redis_batches(spec, chunk_size)
    elif kind == "file" and "://" not in str(spec["path"]) and Path(spec["path"]).is_file():
        gen = _file_batches(str(spec["path"]), spec, chunk_size)
    elif kind == "stream" and not isinstance(spec["records"], AsyncIterable):
        gen = _stream_batches(spec["records"], chunk_size)
    elif kind == "api":
        gen = (_records_frame(page, "api") for page in _api_pages(spec) if page)
    elif kind == "s3":
        gen = _s3_batches(spec, chunk_size)
    else:
        gen = iter([read_source(spec)])
    for frame in gen:
        if "rename" in spec:
            frame = frame.rename(columns=dict(spec["rename"]))
        produced += len(frame)
        yield frame.reset_index(drop=True)
    if produced == 0:
        raise SourceError(f"source {spec.get('name') or kind!r} is empty: it returned no rows")


def _file_batches(path: str, spec: dict[str, Any], chunk_size: int) -> Iterator[pd.DataFrame]:
    fmt = _format_of(path, spec)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        yield from _rebatch(pq.ParquetFile(path).iter_batches(batch_size=chunk_size), chunk_size)
    elif fmt in ("csv", "tsv"):
        import pyarrow.csv as pcsv

        sep = spec.get("sep", "\t" if fmt == "tsv" else ",")
        reader = pcsv.open_csv(path, parse_options=pcsv.ParseOptions(delimiter=sep))
        yield from _rebatch(reader, chunk_size)
    elif fmt == "jsonl":
        with pd.read_json(path, lines=True, chunksize=chunk_size) as reader:
            yield from reader
    else:
        yield read_source(spec)


def _s3_batches(spec: dict[str, Any], chunk_size: int) -> Iterator[pd.DataFrame]:
    """File after file (chunks never span two files, whose schemas may differ); Parquet files
    row group by row group, CSV files block by block."""
    import pyarrow as pa

    fs = _s3_fs(spec)
    for f in _s3_files(fs, spec):
        fmt = _format_of(f, spec)
        with fs.open(f, "rb") as fh:
            if fmt == "parquet":
                import pyarrow.parquet as pq

                batches: Iterable[Any] = pq.ParquetFile(fh).iter_batches(batch_size=chunk_size)
            elif fmt in ("csv", "tsv"):
                import pyarrow.csv as pcsv

                sep = spec.get("sep", "\t" if fmt == "tsv" else ",")
                batches = pcsv.open_csv(fh, parse_options=pcsv.ParseOptions(delimiter=sep))
            else:
                frame = _read_table_file(fh, fmt, spec, f"s3://{f}")
                batches = pa.Table.from_pandas(frame, preserve_index=False).to_batches()
            yield from _rebatch(batches, chunk_size)


def _stream_batches(records: Iterable[Any], chunk_size: int) -> Iterator[pd.DataFrame]:
    buf: list[Any] = []
    for r in records:
        buf.append(r)
        if len(buf) >= chunk_size:
            yield _records_frame(buf, "stream")
            buf = []
    if buf:
        yield _records_frame(buf, "stream")


def join_frames(
    frames: list[pd.DataFrame], specs: list[dict[str, Any]], join: dict[str, Any] | None
) -> pd.DataFrame:
    """Join the sources' frames in order: each next one on ``join_on`` (its own), the pipeline's
    ``join['on']``, or else the columns it shares with what has been joined so far."""
    join = dict(join or {})
    how = join.get("how", "inner")
    if how not in ("inner", "left", "outer"):
        raise PipelineConfigError(f"join how={how!r}: expected 'inner', 'left' or 'outer'")
    out = frames[0]
    for i, (frame, spec) in enumerate(zip(frames[1:], specs[1:], strict=True), start=1):
        on = spec.get("join_on", join.get("on"))
        if on is None:
            on = [c for c in frame.columns if c in out.columns]
            if not on:
                raise SourceError(
                    f"data_sources[{i}] ({spec['type']}) shares no column with the sources "
                    f"before it (it has {list(frame.columns)[:20]}); give join_on"
                )
        on = [on] if isinstance(on, str) else list(on)
        for col in on:
            for side, f in (("left", out), ("right", frame)):
                if col not in f.columns:
                    raise SourceError(
                        f"join key {col!r} is missing on the {side} side of data_sources[{i}] "
                        f"({spec['type']}); columns there: {list(f.columns)[:20]}"
                    )
            out, frame = _align_key(out, frame, col)
        overlap = [c for c in frame.columns if c in out.columns and c not in on]
        frame = frame.rename(
            columns={c: f"{c}_{spec.get('name') or spec['type']}" for c in overlap}
        )
        out = out.merge(frame, on=on, how=how)
    if len(out) == 0:
        raise SourceError(f"joining the {len(frames)} sources ({how}) left no rows")
    return out


def _align_key(
    left: pd.DataFrame, right: pd.DataFrame, col: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Make a join key's dtypes agree (Redis and JSON ids arrive as strings)."""
    lt, rt = left[col].dtype, right[col].dtype
    if lt == rt:
        return left, right
    if pd.api.types.is_numeric_dtype(lt) and pd.api.types.is_numeric_dtype(rt):
        return left, right
    left, right = left.copy(), right.copy()
    if pd.api.types.is_numeric_dtype(lt):
        right[col] = _as_key(right[col], lt)
    elif pd.api.types.is_numeric_dtype(rt):
        left[col] = _as_key(left[col], rt)
    else:
        left[col], right[col] = left[col].astype(str), right[col].astype(str)
    return left, right


def _as_key(values: pd.Series, dtype: Any) -> pd.Series:
    converted = pd.to_numeric(values, errors="coerce")
    return converted.astype(dtype) if converted.notna().all() else converted
