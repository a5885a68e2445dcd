"""Fixtures of the model manager's tests: small data sets, trained models, registries on SQLite
and on a real PostgreSQL server started here from Debian's binaries."""

from __future__ import annotations

import glob
import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import numpy as np
import pytest
from model_cases import ADAPTER_CASES, MODULES, case_data

# the [models] extra; TensorFlow and transformers are optional and skipped test by test
REQUIRED = {
    "sqlalchemy": "SQLAlchemy",
    "sklearn": "scikit-learn",
    "skops": "skops",
    "xgboost": "xgboost-cpu",
    "lightgbm": "lightgbm",
    "torch": "torch",
    "safetensors": "safetensors",
    "onnx": "onnx",
    "onnxruntime": "onnxruntime",
    "skl2onnx": "skl2onnx",
    "onnxmltools": "onnxmltools",
    "fsspec": "fsspec",
}
MISSING = sorted(pkg for mod, pkg in REQUIRED.items() if importlib.util.find_spec(mod) is None)
HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    if not MISSING:
        return
    skip = pytest.mark.skip(
        reason=f"the model manager's tests need {', '.join(MISSING)} "
        "(pip install 'ml_utilities[models]')"
    )
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(skip)


def _pg_bin() -> Path | None:
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(os.path.realpath(found)).parent
    for cand in sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True):
        return Path(cand).parent
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL server on 127.0.0.1 and a free port, data in a temp folder, stopped at the end.

    Needs Debian's server binaries (``apt-get install postgresql``) and, as root, the
    ``postgres`` system user to run them.
    """
    pytest.importorskip("psycopg", reason="PostgreSQL tests need psycopg (psycopg[binary])")
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip(
            "PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql"
        )
    run_as: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            pytest.skip("running as root needs runuser to start PostgreSQL as another user")
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and no 'postgres' user to run the server as")
        run_as = ["runuser", "-u", "postgres", "--"]
    base = Path(tempfile.mkdtemp(prefix="mlu-pg-"))
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    if run_as:
        shutil.chown(base, "postgres")
        shutil.chown(sock, "postgres")
    port = _free_port()
    subprocess.run(
        [
            *run_as,
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "mlu",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
        ],
        check=True,
        capture_output=True,
    )
    opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {sock} -c fsync=off -c max_connections=60"
    subprocess.run(
        [
            *run_as,
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            opts,
            "-l",
            str(base / "log"),
            "-w",
            "-t",
            "60",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://mlu@127.0.0.1:{port}"
    finally:
        subprocess.run(
            [*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server):
    """A fresh, empty database on the session's server."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    dsn = postgres_server.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{postgres_server}/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def registry_url(request, tmp_path):
    """The registry's database: SQLite in a temp folder, then a real PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def manager(registry_url, tmp_path):
    from ml_utilities.models import ModelManager

    m = ModelManager(registry_url=registry_url, artifact_root=tmp_path / "artifacts")
    yield m
    m.registry.dispose()


# -- data and trained models ----------------------------------------------------------------------
@pytest.fixture(scope="session")
def tabular():
    """400 rows of 8 features, string labels of 3 genres, and a regression target."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((400, 8)).astype(np.float32)
    score = x[:, 0] + 0.5 * x[:, 1] - 0.25 * x[:, 2]
    y = np.where(score > 0.5, "rock", np.where(score < -0.5, "jazz", "pop"))
    target = (2.0 * x[:, 0] - x[:, 3] + 0.1 * rng.standard_normal(400)).astype(np.float32)
    return x, y, target


@pytest.fixture(scope="session")
def sequences():
    """160 sequences of 16 frames x 12 features (frame-level features), 2 classes."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((160, 16, 12)).astype(np.float32)
    y = (x[:, :, 0].mean(axis=1) + 0.3 * x[:, :, 1].mean(axis=1) > 0).astype(np.int64)
    x[y == 1, :, 2] += 0.8  # a learnable cue
    return x, y


@pytest.fixture(scope="session")
def mels():
    """120 mel spectrograms of 16 bands x 20 frames, 2 classes (a band brighter in class 1)."""
    rng = np.random.default_rng(13)
    x = rng.random((120, 16, 20)).astype(np.float32)
    y = rng.integers(0, 2, 120)
    x[y == 1, 4:6, :] += 1.0
    return x, y


@pytest.fixture(scope="session")
def trained_models(request):
    """Every adapter case trained once per session (ModelHandle by case name)."""
    from ml_utilities.models import ModelManager

    cache: dict = {}

    def get(case: str):
        if case not in cache:
            framework = ADAPTER_CASES[case][0]
            pytest.importorskip(
                MODULES[framework], reason=f"{framework} models need {MODULES[framework]}"
            )
            x, labels, config = case_data(request, case)
            cache[case] = ModelManager().train_model_sync(x, labels, config, validation_split=0.2)
        return cache[case]

    return get


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """Point ML_UTILITIES_HOME at a temp folder so no test touches ~/.ml_utilities."""
    from ml_utilities import config

    monkeypatch.setenv("ML_UTILITIES_HOME", str(tmp_path / "home"))
    config.reload_settings()
    yield
    monkeypatch.undo()
    config.reload_settings()
