"""Sources against real servers: PostgreSQL and Redis from Debian's binaries, S3 from moto's
server, a local HTTP API; files, audio folders and streams; joins; every bad input."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pandas as pd
import pytest
from pipeline_support import LASTFM, copy_frame, pg_dsn

from ml_utilities.pipeline import (
    PipelineConfigError,
    SourceError,
    iter_batches,
    quote_identifier,
    read_source,
    read_source_async,
)
from ml_utilities.pipeline.sources import check_source, join_frames


# -- files ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl", "tsv"])
def test_file_formats_round_trip(tmp_path, fmt):
    frame = pd.DataFrame({"a": [1, 2, 3], "b": [0.5, 1.5, np.nan], "c": ["x", "y", "z"]})
    path = tmp_path / f"data.{'dat' if fmt == 'tsv' else fmt}"
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "tsv":
        frame.to_csv(path, index=False, sep="\t")
    elif fmt == "parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_json(path, orient="records", lines=True)
    out = read_source({"type": "file", "path": str(path)})
    pd.testing.assert_frame_equal(out, frame, check_dtype=False)


def test_file_errors(tmp_path):
    with pytest.raises(SourceError, match="does not exist"):
        read_source({"type": "file", "path": str(tmp_path / "nope.csv")})
    (tmp_path / "x.unknown").write_text("1")
    with pytest.raises(SourceError, match="format"):
        read_source({"type": "file", "path": str(tmp_path / "x.unknown")})
    (tmp_path / "empty.csv").write_text("a,b\n")
    with pytest.raises(SourceError, match="empty"):
        read_source({"type": "file", "path": str(tmp_path / "empty.csv")})
    with pytest.raises(PipelineConfigError, match="unknown key"):
        read_source({"type": "file", "path": "x.csv", "tabel": "t"})
    with pytest.raises(PipelineConfigError, match="not a source type"):
        read_source({"type": "ftp", "path": "x"})


def test_lastfm_dat_file_and_chunks(lastfm):
    if not lastfm["real"]:
        pytest.skip("../shared/data/lastfm-hetrec2011 is absent (synthetic rows cover the rest)")

    spec = {"type": "file", "path": str(LASTFM / "user_artists.dat")}
    full = read_source(spec)
    assert list(full.columns) == ["userID", "artistID", "weight"]
    assert len(full) == 92834
    chunks = list(iter_batches(spec, chunk_size=20_000))
    assert [len(c) for c in chunks] == [20_000] * 4 + [12_834]
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), full)


def _write_wav(path, freq, sr=22050, seconds=1.0):
    import soundfile as sf

    t = np.arange(int(sr * seconds)) / sr
    sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), sr)


def test_audio_folder_synthetic(tmp_path):
    for name, f in (("low.wav", 220.0), ("high.wav", 1760.0)):
        _write_wav(tmp_path / name, f)
    out = read_source({"type": "audio", "path": str(tmp_path)})
    assert sorted(out["track"]) == ["high.wav", "low.wav"]
    centroid = [c for c in out.columns if c.startswith("spectral.centroid") and "mean" in c][0]
    by = out.set_index("track")[centroid]
    assert by["high.wav"] > 2 * by["low.wav"]
    # a folder given as a plain file source is read as audio too
    same = read_source({"type": "file", "path": str(tmp_path)})
    assert sorted(same["track"]) == sorted(out["track"])


def test_audio_folder_real(tmp_path, audio_dir):
    import shutil

    for name in (
        "456440__inspectorj__bird-whistling-robin-single-13.ogg",
        "sorohanro_-_solo-trumpet-06.ogg",
    ):
        shutil.copy(audio_dir / name, tmp_path / name)
    out = read_source({"type": "audio", "path": str(tmp_path), "id_column": "clip"})
    assert len(out) == 2 and out.shape[1] > 50
    assert np.isfinite(out.drop(columns="clip").to_numpy()).all()


# -- PostgreSQL -----------------------------------------------------------------------------------
@pytest.fixture
def pg_table(postgres_url):
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "user_id": np.arange(1, 1201, dtype=np.int64),
            "plays": rng.integers(0, 1000, 1200).astype(np.int64),
            "score": rng.normal(size=1200),
            "genre": rng.choice(["rock", "pop", "jazz"], 1200),
        }
    )
    copy_frame(pg_dsn(postgres_url), "listens", frame)
    return postgres_url, frame


@pytest.mark.parametrize("engine", ["adbc", "connectorx"])
def test_postgresql_table(pg_table, engine):
    url, frame = pg_table
    out = read_source({"type": "postgresql", "url": url, "table": "listens", "engine": engine})
    out = out.sort_values("user_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(out, frame, check_dtype=False)
    assert out["plays"].dtype.kind == "i" and out["score"].dtype.kind == "f"


def test_postgresql_query_binds_parameters(pg_table):
    url, frame = pg_table
    hostile = "rock' OR '1'='1"
    spec = {
        "type": "postgresql",
        "url": url,
        "query": "SELECT user_id, plays FROM listens WHERE genre = $1 AND plays > $2",
        "params": ["rock", 500],
    }
    out = read_source(spec)
    expected = frame[(frame.genre == "rock") & (frame.plays > 500)]
    assert sorted(out["user_id"]) == sorted(expected["user_id"])
    # a value that tries to escape its quotes is only ever a value: no row matches it
    with pytest.raises(SourceError, match="empty"):
        read_source({**spec, "params": [hostile, 0]})


def test_postgresql_url_from_environment(pg_table, monkeypatch):
    url, frame = pg_table
    monkeypatch.setenv("ML_UTILITIES_POSTGRES_URL", url)
    out = read_source({"type": "postgresql", "table": "listens", "columns": ["user_id"]})
    assert list(out.columns) == ["user_id"] and len(out) == len(frame)
    monkeypatch.setenv("MY_DB", url)
    out = read_source({"type": "postgresql", "table": "listens", "url_env": "MY_DB", "limit": 5})
    assert len(out) == 5
    monkeypatch.delenv("ML_UTILITIES_POSTGRES_URL")
    with pytest.raises(SourceError, match="ML_UTILITIES_POSTGRES_URL"):
        read_source({"type": "postgresql", "table": "listens"})


@pytest.mark.parametrize(
    "name",
    ["listens; DROP TABLE listens", 'listens" --', "1listens", "a.b.c", "x" * 64, "lis tens"],
)
def test_postgresql_hostile_identifier_is_refused(pg_table, name):
    url, frame = pg_table
    with pytest.raises(SourceError, match="refused"):
        read_source({"type": "postgresql", "url": url, "table": name})
    with pytest.raises(SourceError, match="refused"):
        read_source({"type": "postgresql", "url": url, "table": "listens", "columns": [name]})
    # the table is untouched
    assert len(read_source({"type": "postgresql", "url": url, "table": "listens"})) == len(frame)


def test_quote_identifier():
    assert quote_identifier("user_listening_history") == '"user_listening_history"'
    assert quote_identifier("public.t1", allow_schema=True) == '"public"."t1"'
    with pytest.raises(SourceError):
        quote_identifier("public.t1")


@pytest.mark.parametrize("name", ["users\n", "public.users\n", "public\n.users", "users\r"])
def test_identifier_with_a_trailing_newline_is_refused(name):
    # `$` matches before a final newline: the identifier check must match the whole string
    with pytest.raises(SourceError, match="refused"):
        quote_identifier(name, allow_schema=True)
    with pytest.raises(SourceError, match="refused"):
        check_source({"type": "postgresql", "table": name})
    assert quote_identifier("public.users", allow_schema=True) == '"public"."users"'


@pytest.mark.parametrize("bucket", ["my-bucket\n", "my-bucket\r\n", "\nmy-bucket", "my bucket"])
def test_s3_bucket_name_must_match_whole(bucket):
    with pytest.raises(PipelineConfigError, match="not a valid bucket name") as info:
        check_source({"type": "s3", "bucket": bucket, "prefix": "x/"})
    assert repr(bucket) in str(info.value)
    assert check_source({"type": "s3", "bucket": "my-bucket", "prefix": "x/"})["bucket"] == (
        "my-bucket"
    )


def test_postgresql_missing_table_and_empty(pg_table):
    url, _ = pg_table
    with pytest.raises(SourceError, match="'no_such_table' does not exist"):
        read_source({"type": "postgresql", "url": url, "table": "no_such_table"})
    with pytest.raises(SourceError, match="empty"):
        read_source(
            {
                "type": "postgresql",
                "url": url,
                "query": "SELECT * FROM listens WHERE plays < $1",
                "params": [-1],
            }
        )
    with pytest.raises(PipelineConfigError, match="exactly one"):
        read_source({"type": "postgresql", "url": url, "table": "listens", "query": "SELECT 1"})


def test_postgresql_chunks(pg_table):
    url, frame = pg_table
    chunks = list(iter_batches({"type": "postgresql", "url": url, "table": "listens"}, 500))
    assert [len(c) for c in chunks] == [500, 500, 200]
    assert sorted(pd.concat(chunks)["user_id"]) == sorted(frame["user_id"])


# -- Redis ----------------------------------------------------------------------------------------
def test_redis_hashes_json_and_streams(redis_url):
    import redis

    r = redis.Redis.from_url(redis_url)
    for i in range(1, 31):
        r.hset(f"user:{i}:features", mapping={"plays": i * 10, "genre": "rock" if i % 2 else "pop"})
    r.set("track:7:meta", json.dumps({"tempo": 120.5, "key": "F"}))
    r.set("track:8:meta", json.dumps({"tempo": 90.0, "key": "C"}))
    r.xadd("listens:stream", {"user_id": 1, "artist_id": 5})
    r.xadd("listens:stream", {"user_id": 2, "artist_id": 6})
    r.set("unrelated", "x")
    users = read_source(
        {"type": "redis", "url": redis_url, "key_pattern": "user:*:features", "scan_count": 7}
    )
    assert len(users) == 30 and users["user_id"].dtype.kind == "i"
    assert users.set_index("user_id").loc[12, "plays"] == 120
    tracks = read_source({"type": "redis", "url": redis_url, "key_pattern": "track:*:meta"})
    assert tracks.set_index("track_id").loc[7, "tempo"] == 120.5
    events = read_source(
        {"type": "redis", "url": redis_url, "key_pattern": "listens:*", "key_column": None}
    )
    assert events["artist_id"].tolist() == [5, 6] and "stream_id" in events
    chunks = list(
        iter_batches({"type": "redis", "url": redis_url, "key_pattern": "user:*:features"}, 8)
    )
    assert sum(len(c) for c in chunks) == 30 and max(len(c) for c in chunks) <= 8
    r.close()


class _RedisJsonModule:
    """What redis-py's pipeline answers for RedisJSON documents (Debian's Redis has no
    module): TYPE gives ``ReJSON-RL`` and ``JSON.GET key $`` the JSON text of a 1-list."""

    def __init__(self, docs):
        self.docs, self.calls = docs, []

    def pipeline(self, transaction=True):
        return self

    def type(self, key):
        self.calls.append(("TYPE", key))

    def execute_command(self, *args):
        self.calls.append(args)

    def execute(self):
        out = ["ReJSON-RL" if c[0] == "TYPE" else json.dumps([self.docs[c[1]]]) for c in self.calls]
        self.calls = []
        return out


def test_redis_json_module_documents():
    from ml_utilities.pipeline.sources import _redis_records

    client = _RedisJsonModule(
        {"track:7:meta": {"tempo": 120.5, "key": "F"}, "track:9:meta": {"tempo": 88.0}}
    )
    rows = _redis_records(client, ["track:7:meta", "track:9:meta"], {"key_pattern": "track:*:meta"})
    assert rows == [
        {"track_id": "7", "tempo": 120.5, "key": "F"},
        {"track_id": "9", "tempo": 88.0},
    ]


def test_redis_bad_inputs(redis_url):
    import redis

    r = redis.Redis.from_url(redis_url)
    r.rpush("user:1:features", "a", "b")
    r.set("user:2:features", "not json {")
    with pytest.raises(SourceError, match=r"'user:1:features' is a list"):
        read_source({"type": "redis", "url": redis_url, "key_pattern": "user:1:*"})
    with pytest.raises(SourceError, match=r"'user:2:features' holds a string that is not JSON"):
        read_source({"type": "redis", "url": redis_url, "key_pattern": "user:2:*"})
    with pytest.raises(SourceError, match="empty"):
        read_source({"type": "redis", "url": redis_url, "key_pattern": "nothing:*"})
    r.close()


# -- S3 -------------------------------------------------------------------------------------------
def test_s3_parquet_and_csv(s3fs_client, s3_endpoint):
    fs = s3fs_client
    fs.mkdir("feats")
    a = pd.DataFrame({"artist_id": [1, 2], "tempo": [120.0, 90.0]})
    b = pd.DataFrame({"artist_id": [3], "tempo": [100.0]})
    with fs.open("feats/processed/a.parquet", "wb") as fh:
        a.to_parquet(fh, index=False)
    with fs.open("feats/processed/b.csv", "wb") as fh:
        fh.write(b.to_csv(index=False).encode())
    with fs.open("feats/raw/c.csv", "wb") as fh:
        fh.write(b"artist_id,tempo\n9,1.0\n")
    out = read_source(
        {"type": "s3", "bucket": "feats", "prefix": "processed/", "endpoint_url": s3_endpoint}
    )
    assert sorted(out["artist_id"]) == [1, 2, 3]
    spec = {"type": "s3", "bucket": "feats", "prefix": "processed/", "endpoint_url": s3_endpoint}
    chunks = list(iter_batches(spec, chunk_size=1))  # file after file, row by row
    assert [len(c) for c in chunks] == [1, 1, 1]
    assert sorted(pd.concat(chunks)["artist_id"]) == [1, 2, 3]
    with pytest.raises(SourceError, match="does not exist"):
        read_source({"type": "s3", "bucket": "no-such-bucket", "endpoint_url": s3_endpoint})
    with pytest.raises(SourceError, match="empty"):
        read_source(
            {"type": "s3", "bucket": "feats", "prefix": "nothing/", "endpoint_url": s3_endpoint}
        )
    with pytest.raises(PipelineConfigError, match="bucket"):
        read_source({"type": "s3", "bucket": "Bad_Bucket!"})
    fs.rm("feats", recursive=True)


# -- HTTP APIs ------------------------------------------------------------------------------------
def test_api_pages(api_server):
    base, records = api_server
    out = read_source({"type": "api", "url": f"{base}/cursor"})
    assert out["user_id"].tolist() == [r["user_id"] for r in records]
    out = read_source({"type": "api", "url": f"{base}/pages", "page_param": "page"})
    assert len(out) == len(records)
    out = read_source({"type": "api", "url": f"{base}/cursor", "max_pages": 2})
    assert len(out) == 14
    chunks = list(iter_batches({"type": "api", "url": f"{base}/cursor"}, 100))
    assert [len(c) for c in chunks] == [7, 7, 7, 2]
    with pytest.raises(SourceError, match="500"):
        read_source({"type": "api", "url": f"{base}/broken"})


# -- streams --------------------------------------------------------------------------------------
def test_streams_sync_and_async():
    recs = [{"user_id": i, "x": float(i)} for i in range(10)]
    assert len(read_source({"type": "stream", "records": iter(recs)})) == 10
    assert len(read_source({"type": "stream", "records": iter(recs), "max_records": 4})) == 4

    async def agen():
        for r in recs:
            await asyncio.sleep(0)
            yield r

    out = asyncio.run(read_source_async({"type": "stream", "records": agen()}))
    assert out["x"].sum() == 45.0
    assert len(read_source({"type": "stream", "records": agen()})) == 10
    with pytest.raises(SourceError, match="empty"):
        read_source({"type": "stream", "records": iter([])})
    with pytest.raises(SourceError, match="must be dicts"):
        read_source({"type": "stream", "records": iter([1, 2])})
    with pytest.raises(PipelineConfigError, match="iterator"):
        read_source({"type": "stream", "records": 5})


# -- joins ----------------------------------------------------------------------------------------
def test_join_on_shared_keys_with_string_ids():
    history = pd.DataFrame({"user_id": [1, 1, 2], "artist_id": [10, 11, 10]})
    users = pd.DataFrame({"user_id": ["1", "2"], "age": [20, 30]})  # as Redis gives them
    artists = pd.DataFrame({"artist_id": [10, 11], "tempo": [100.0, 120.0]})
    specs = [{"type": "postgresql"}, {"type": "redis"}, {"type": "s3"}]
    out = join_frames([history, users, artists], specs, None)
    assert out["age"].tolist() == [20, 20, 30] and out["tempo"].tolist() == [100.0, 120.0, 100.0]
    with pytest.raises(SourceError, match="shares no column"):
        join_frames([history, pd.DataFrame({"z": [1]})], specs[:2], None)
    with pytest.raises(SourceError, match="left no rows"):
        join_frames([history, pd.DataFrame({"user_id": [9], "a": [1]})], specs[:2], None)
