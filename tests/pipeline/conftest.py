"""Fixtures of the DataPipeline tests: an S3-compatible server (moto's server mode, as s3fs's own
tests use), a local JSON API, and the stores loaded with a sample of the Last.fm data (or
synthetic rows of the same shape where ../shared/data is absent)."""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np
import pandas as pd
import pytest
from pipeline_support import LASTFM, copy_frame, pg_dsn  # noqa: F401  (used by the fixtures)

HERE = Path(__file__).resolve().parent
N_USERS = 60  # users of the Last.fm sample loaded into the servers (about 3,000 rows)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- S3 (moto server) ------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """An S3 API on 127.0.0.1 (moto's ThreadedMotoServer), with dummy credentials set."""
    pytest.importorskip("s3fs", reason="S3 sources need s3fs")
    server_mod = pytest.importorskip("moto.server", reason="the S3 tests need moto[server]")
    pytest.importorskip("flask", reason="moto's server mode needs flask (pip install moto[server])")
    saved = {
        k: os.environ.get(k)
        for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
    }
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1"
    )
    port = _free_port()
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture
def s3fs_client(s3_endpoint):
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    fs = s3fs.S3FileSystem(endpoint_url=s3_endpoint)
    yield fs
    s3fs.S3FileSystem.clear_instance_cache()


# -- a JSON API with pages -------------------------------------------------------------------------
class _Api(BaseHTTPRequestHandler):
    records: list[dict] = []
    page_size = 7

    def log_message(self, *args) -> None:  # keep pytest's output clean
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's API
        url = urlparse(self.path)
        q = parse_qs(url.query)
        n = self.page_size
        if url.path == "/cursor":  # {"data": [...], "next": "/cursor?after=7"}
            after = int(q.get("after", ["0"])[0])
            page = self.records[after : after + n]
            nxt = f"/cursor?after={after + n}" if after + n < len(self.records) else None
            body: object = {"data": page, "next": nxt}
        elif url.path == "/pages":  # a bare list per ?page=, empty past the end
            p = int(q.get("page", ["1"])[0])
            body = self.records[(p - 1) * n : p * n]
        elif url.path == "/broken":
            self.send_response(500)
            self.end_headers()
            return
        else:
            self.send_response(404)
            self.end_headers()
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="session")
def api_server() -> Iterator[tuple[str, list[dict]]]:
    """A local HTTP server answering JSON pages of 23 records; yields (base URL, records)."""
    records = [{"user_id": i, "plays": i * 3, "genre": ["rock", "pop"][i % 2]} for i in range(23)]
    _Api.records = records
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", records
    finally:
        server.shutdown()
        server.server_close()


# -- Last.fm (or synthetic) tables ----------------------------------------------------------------
def _lastfm_or_synthetic() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, bool]:
    """(user_artists, artists, user_friends) of every user; synthetic if the data is absent."""
    if (LASTFM / "user_artists.dat").is_file():
        ua = pd.read_csv(LASTFM / "user_artists.dat", sep="\t")
        artists = pd.read_csv(LASTFM / "artists.dat", sep="\t", usecols=["id", "name"])
        friends = pd.read_csv(
            LASTFM / "user_friends.dat", sep="\t", header=None, names=["userID", "friendID"]
        )
        return ua, artists, friends, True
    rng = np.random.default_rng(7)
    appeal = rng.lognormal(0, 1, 400)  # some artists get played more by everyone
    rows = []
    for u in range(2, 302):
        for a in rng.choice(400, 50, replace=False):
            rows.append((u, int(a) + 1, int(rng.pareto(1.5) * 100 * appeal[a]) + 1))
    ua = pd.DataFrame(rows, columns=["userID", "artistID", "weight"])
    artists = pd.DataFrame({"id": np.arange(1, 401), "name": [f"artist {i}" for i in range(400)]})
    friends = pd.DataFrame(
        {"userID": rng.integers(2, 302, 3000), "friendID": rng.integers(2, 302, 3000)}
    )
    return ua, artists, friends, False


@pytest.fixture(scope="session")
def lastfm() -> dict[str, object]:
    """The three tables the stores are loaded with, for the first N_USERS users of Last.fm.

    ``history``: user_id, artist_id, user_satisfaction (1 when the artist is in the user's top
    quarter by play count: the label; the play count itself is left out, as it defines it).
    ``users``: per-user n_artists, total_plays, n_friends. ``artists``: per-artist n_listeners
    and mean_rank, the artist's mean percentile in the play-count ranking of its listeners,
    measured on the *other* users only (so no label leaks into it; artists only the sampled
    users play have none: a missing value for the imputer).
    """
    everyone, artists, friends, real = _lastfm_or_synthetic()
    users_in = np.sort(everyone["userID"].unique())[:N_USERS]
    ua = everyone[everyone["userID"].isin(users_in)].reset_index(drop=True)
    others = everyone[~everyone["userID"].isin(users_in)]
    q75 = ua.groupby("userID")["weight"].transform(lambda w: w.quantile(0.75))
    history = pd.DataFrame(
        {
            "user_id": ua["userID"].astype("int64"),
            "artist_id": ua["artistID"].astype("int64"),
            "user_satisfaction": (ua["weight"] >= q75).astype("int64"),
        }
    )
    users = ua.groupby("userID").agg(n_artists=("artistID", "size"), total_plays=("weight", "sum"))
    users["n_friends"] = friends.groupby("userID").size().reindex(users.index).fillna(0)
    users = users.reset_index().rename(columns={"userID": "user_id"})
    rank = others.groupby("userID")["weight"].rank(pct=True)
    stats = pd.DataFrame({"artistID": others["artistID"], "rank": rank}).groupby("artistID")
    art = pd.DataFrame({"artist_id": np.sort(ua["artistID"].unique()).astype("int64")})
    art["n_listeners"] = art["artist_id"].map(stats.size()).fillna(0).astype("int64")
    art["mean_rank"] = art["artist_id"].map(stats["rank"].mean())
    names = artists.set_index("id")["name"]
    art["name_length"] = art["artist_id"].map(names).fillna("").str.len().astype("int64")
    return {"history": history, "users": users, "artists": art, "real": real, "raw": ua}


@pytest.fixture
def loaded_stores(postgres_url, redis_url, s3fs_client, s3_endpoint, lastfm, monkeypatch):
    """PostgreSQL table ``user_listening_history``, Redis hashes ``user:<id>:features`` and
    Parquet files under ``s3://audio-features/processed/``, holding the Last.fm sample; the
    environment points the pipeline at them (``ML_UTILITIES_*_URL``)."""
    import redis

    copy_frame(pg_dsn(postgres_url), "user_listening_history", lastfm["history"])
    client = redis.Redis.from_url(redis_url)
    pipe = client.pipeline()
    for row in lastfm["users"].itertuples(index=False):
        pipe.hset(
            f"user:{row.user_id}:features",
            mapping={
                "n_artists": int(row.n_artists),
                "total_plays": int(row.total_plays),
                "n_friends": int(row.n_friends),
            },
        )
    pipe.execute()
    client.close()
    s3fs_client.mkdir("audio-features")
    art = lastfm["artists"]
    half = len(art) // 2
    for i, part in enumerate((art.iloc[:half], art.iloc[half:])):
        with s3fs_client.open(f"audio-features/processed/part-{i}.parquet", "wb") as fh:
            part.to_parquet(fh, index=False)
    monkeypatch.setenv("ML_UTILITIES_POSTGRES_URL", postgres_url)
    monkeypatch.setenv("ML_UTILITIES_REDIS_URL", redis_url)
    monkeypatch.setenv("ML_UTILITIES_S3_ENDPOINT_URL", s3_endpoint)
    yield {"postgres": postgres_url, "redis": redis_url, "s3": s3_endpoint}
    s3fs_client.rm("audio-features", recursive=True)


@pytest.fixture
def pipeline(tmp_path):
    """A DataPipeline whose registry is SQLite in a temp folder."""
    from ml_utilities.pipeline import DataPipeline

    p = DataPipeline(
        registry_url=f"sqlite:///{tmp_path / 'registry.db'}", artifact_root=tmp_path / "artifacts"
    )
    yield p
    p.model_manager.registry.dispose()


@pytest.fixture
def listening(rng) -> pd.DataFrame:
    """Synthetic listening events with timestamps (the Last.fm copy here has none)."""
    n = 600
    users = rng.integers(0, 30, n)
    start = pd.Timestamp("2024-03-01")
    ts = start + pd.to_timedelta(rng.integers(0, 14 * 86400, n), unit="s")
    return pd.DataFrame(
        {
            "user_id": users,
            "artist_id": rng.integers(0, 80, n),
            "plays": rng.integers(1, 30, n).astype(float),
            "timestamp": ts,
        }
    )
