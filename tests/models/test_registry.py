"""The registry on SQLite and PostgreSQL: versions, aliases, metadata, integrity, concurrency,
crash safety, fsspec stores."""

from __future__ import annotations

import json
import os
import pickle
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from model_cases import subprocess_env, wait_for

from ml_utilities.exceptions import ParameterError
from ml_utilities.models import (
    ArtifactIntegrityError,
    ModelHandle,
    ModelNotFoundError,
    ModelRegistry,
)


def test_versions_increment_per_name_with_metadata(manager, trained_models, tabular):
    handle = trained_models("xgboost")
    reg = manager.registry
    a = manager.register_model_sync(handle, name="genre", metadata={"owner": "recs"})
    b = manager.register_model_sync(handle, name="genre", metadata={"owner": "recs", "n": 2})
    c = manager.register_model_sync(handle, name="mood")
    assert (a.version, b.version, c.version) == (1, 2, 1)
    assert b.metadata == {"owner": "recs", "n": 2}
    assert b.metrics["accuracy"] == pytest.approx(handle.metrics["accuracy"])
    assert b.signature["inputs"] == {"dtype": "float32", "shape": [None, 8]}
    assert b.signature["classes"] == ["jazz", "pop", "rock"]
    assert b.fingerprint == handle.fingerprint
    assert b.framework == "xgboost" and b.task == "classification"
    assert set(b.manifest) >= {"mlu_model.json", "model/model.ubj"}
    assert all(len(h) == 64 for h in b.manifest.values())
    assert reg.list_models() == ["genre", "mood"]
    assert [v.version for v in reg.list_versions("genre")] == [1, 2]
    assert reg.get_version("genre").version == 2  # latest
    loaded = reg.load("genre", 1)
    assert (loaded.name, loaded.version) == ("genre", 1)
    assert np.array_equal(loaded.predict(tabular[0]), handle.predict(tabular[0]))


def test_aliases_champion_and_challenger(manager, trained_models):
    handle = trained_models("sklearn")
    reg = manager.registry
    manager.register_model_sync(handle, name="recs", aliases=["champion"])
    manager.register_model_sync(handle, name="recs", aliases=["challenger"])
    assert reg.aliases("recs") == {"champion": 1, "challenger": 2}
    assert reg.get_version("recs", "champion").aliases == ("champion",)
    reg.set_alias("recs", "champion", 2)  # promote the challenger
    assert reg.aliases("recs") == {"champion": 2, "challenger": 2}
    assert reg.get_version("recs", "champion").aliases == ("challenger", "champion")
    assert manager.load_model_sync("recs", "champion").version == 2
    reg.delete_alias("recs", "challenger")
    assert reg.aliases("recs") == {"champion": 2}
    with pytest.raises(ParameterError, match="alias"):
        reg.set_alias("recs", "canary\n", 2)  # "$" would match before the newline
    with pytest.raises(ModelNotFoundError, match="no alias 'challenger'"):
        reg.get_version("recs", "challenger")
    with pytest.raises(ModelNotFoundError, match="no version 9"):
        reg.set_alias("recs", "champion", 9)
    with pytest.raises(ParameterError, match="alias 'latest' is reserved"):
        reg.set_alias("recs", "latest", 1)
    with pytest.raises(ModelNotFoundError, match="no registered model named 'nope'"):
        reg.get_version("nope")


@pytest.mark.parametrize("bad", ["", "a/b", "../x", "x" * 201, " lead", 3, "genre\n"])
def test_bad_names_are_refused(manager, trained_models, bad):
    with pytest.raises(ParameterError, match="model name"):
        manager.register_model_sync(trained_models("sklearn"), name=bad)


def test_tampered_artifacts_are_refused(manager, trained_models):
    handle = trained_models("pytorch_mlp")
    mv = manager.register_model_sync(handle, name="tamper")
    folder = manager.registry.store.local / "tamper" / os.path.basename(mv.artifact_uri)
    weights = folder / "model" / "model.safetensors"
    original = weights.read_bytes()
    flipped = bytearray(original)
    flipped[-1] ^= 0x01  # one bit of one weight
    weights.write_bytes(bytes(flipped))
    with pytest.raises(ArtifactIntegrityError, match=r"model/model.safetensors: expected sha256"):
        manager.load_model_sync("tamper", 1)
    weights.write_bytes(original)
    (folder / "model" / "extra.py").write_text("import os")
    with pytest.raises(ArtifactIntegrityError, match="extra.py: not in the manifest"):
        manager.load_model_sync("tamper", 1)
    (folder / "model" / "extra.py").unlink()
    (folder / "mlu_model.json").unlink()
    with pytest.raises(ArtifactIntegrityError, match="mlu_model.json: expected sha256"):
        manager.load_model_sync("tamper", 1)


def test_tampered_saved_folder_is_refused(trained_models, tmp_path):
    path = trained_models("xgboost").save(tmp_path / "m")
    meta = json.loads((path / "mlu_model.json").read_text())
    meta["classes"] = ["pop", "jazz", "rock"]  # a quiet label swap
    (path / "mlu_model.json").write_text(json.dumps(meta))
    with pytest.raises(ArtifactIntegrityError, match="mlu_model.json"):
        ModelHandle.load(path)


def test_pickle_needs_allow_pickle(trained_models, tmp_path, tabular):
    """A scikit-learn artifact holding a pickle loads only with allow_pickle=True."""
    from ml_utilities.models._files import write_manifest

    handle = trained_models("sklearn")
    path = handle.save(tmp_path / "m")
    (path / "model" / "model.skops").unlink()
    with open(path / "model" / "model.pkl", "wb") as fh:
        pickle.dump(handle.adapter.model, fh)
    write_manifest(path)
    with pytest.raises(ArtifactIntegrityError, match="is a pickle.*allow_pickle=True"):
        ModelHandle.load(path)
    again = ModelHandle.load(path, allow_pickle=True)
    assert np.array_equal(again.predict(tabular[0]), handle.predict(tabular[0]))


def test_registry_defaults_to_sqlite_under_ml_utilities_home(trained_models, tmp_path):
    reg = ModelRegistry()
    try:
        assert reg.url == f"sqlite:///{tmp_path / 'home' / 'registry.db'}"
        mv = reg.register(trained_models("sklearn"), name="home")
        assert mv.artifact_uri.startswith(str(tmp_path / "home" / "artifacts" / "home"))
        assert (tmp_path / "home" / "registry.db").is_file()
    finally:
        reg.dispose()


def test_fsspec_store_round_trip_and_tamper(trained_models, tmp_path, tabular):
    fsspec = pytest.importorskip("fsspec", reason="remote artifact stores need fsspec")
    root = f"memory://mlu-test-{os.getpid()}-{time.time_ns()}"
    reg = ModelRegistry(f"sqlite:///{tmp_path / 'r.db'}", root)
    try:
        handle = trained_models("lightgbm")
        mv = reg.register(handle, name="remote")
        assert mv.artifact_uri.startswith("memory://")
        loaded = reg.load("remote")
        assert np.array_equal(loaded.predict(tabular[0]), handle.predict(tabular[0]))
        fs = fsspec.filesystem("memory")
        target = mv.artifact_uri.removeprefix("memory://") + "/model/model.txt"
        fs.pipe(target, fs.cat(target).replace(b"tree", b"TREE", 1))
        with pytest.raises(ArtifactIntegrityError, match="model/model.txt"):
            reg.load("remote")
    finally:
        reg.dispose()


def test_schema_is_created_once_and_reopened(registry_url, tmp_path, trained_models):
    first = ModelRegistry(registry_url, tmp_path / "a")
    first.register(trained_models("sklearn"), name="keep")
    first.dispose()
    second = ModelRegistry(registry_url, tmp_path / "a")
    try:
        assert second.get_version("keep").version == 1
    finally:
        second.dispose()


REGISTER_MANY = r"""
import sys, time, pathlib
from ml_utilities.models import ModelHandle, ModelRegistry
url, root, model, go, tag = sys.argv[1:6]
handle = ModelHandle.load(model)
reg = ModelRegistry(url, root)
pathlib.Path(go + "." + tag).touch()  # ready
while not pathlib.Path(go).exists():
    time.sleep(0.002)
for i in range(50):
    reg.register(handle, name="concurrent", metadata={"writer": tag, "i": i})
"""


def test_two_processes_register_100_distinct_versions(registry_url, tmp_path, trained_models):
    model = trained_models("xgboost").save(tmp_path / "model")
    ModelRegistry(registry_url, tmp_path / "art").dispose()  # schema ready before the race
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                REGISTER_MANY,
                registry_url,
                str(tmp_path / "art"),
                str(model),
                str(go),
                tag,
            ],
            env=subprocess_env(),
            stderr=subprocess.PIPE,
        )
        for tag in ("a", "b")
    ]
    assert wait_for(lambda: all((tmp_path / f"go.{t}").exists() for t in "ab"), timeout=120)
    go.touch()
    for p in procs:
        _, err = p.communicate(timeout=240)
        assert p.returncode == 0, err.decode()[-3000:]
    reg = ModelRegistry(registry_url, tmp_path / "art")
    try:
        versions = reg.list_versions("concurrent")
        assert [v.version for v in versions] == list(range(1, 101))
        writers = [(v.metadata["writer"], v.metadata["i"]) for v in versions]
        assert sorted(writers) == sorted((t, i) for t in "ab" for i in range(50))
        assert len({v.artifact_uri for v in versions}) == 100
        # both really ran at once: their versions interleave
        order = "".join(v.metadata["writer"] for v in versions)
        assert "ab" in order and "ba" in order
    finally:
        reg.dispose()


REGISTER_FOREVER = r"""
import sys
from ml_utilities.models import ModelHandle, ModelRegistry
url, root, model = sys.argv[1:4]
handle = ModelHandle.load(model)
reg = ModelRegistry(url, root)
while True:
    reg.register(handle, name="crash")
"""


def test_a_process_killed_mid_save_leaves_no_half_version(registry_url, tmp_path, tabular):
    from ml_utilities.models import ModelManager

    x, y, _ = tabular
    # 600 trees (200 rounds x 3 classes, a few MB of UBJSON): saves take a while, so the
    # kills land inside saves
    handle = ModelManager().train_model_sync(
        x,
        y,
        {
            "framework": "xgboost",
            "hyperparameters": {"n_estimators": 200, "max_depth": 8},
            "early_stopping_patience": 0,
        },
        0.2,
    )
    model = handle.save(tmp_path / "model")
    art = tmp_path / "art"
    reg = ModelRegistry(registry_url, art)
    rng = random.Random(5)
    try:
        half_written: set[str] = set()
        for _round in range(6):  # until a kill has landed inside a save (most do)
            before = len(reg.list_versions("crash")) if "crash" in reg.list_models() else 0
            proc = subprocess.Popen(
                [sys.executable, "-c", REGISTER_FOREVER, registry_url, str(art), str(model)],
                env=subprocess_env(),
                stderr=subprocess.DEVNULL,
            )
            assert wait_for(
                lambda b=before: (
                    "crash" in reg.list_models() and len(reg.list_versions("crash")) > b
                ),
                timeout=120,
            )
            time.sleep(rng.uniform(0.0, 0.2))
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            referenced = {os.path.basename(v.artifact_uri) for v in reg.list_versions("crash")}
            half_written = {p.name for p in (art / "crash").iterdir()} - referenced
            if half_written:
                break
        assert half_written, "no kill landed inside a save in 6 tries"
        versions = reg.list_versions("crash")
        assert [v.version for v in versions] == list(range(1, len(versions) + 1))
        expected = handle.predict_proba(x[:16])
        for v in versions:  # every visible version is whole and loads
            assert np.array_equal(reg.load("crash", v.version).predict_proba(x[:16]), expected)
        on_disk = {p.name for p in (art / "crash").iterdir()}
        referenced = {os.path.basename(v.artifact_uri) for v in versions}
        assert referenced <= on_disk
        removed = reg.collect_garbage(older_than_s=0)
        assert {k.split("/")[-1] for k in removed} == on_disk - referenced
        assert {p.name for p in (art / "crash").iterdir()} == referenced
        assert [v.version for v in reg.list_versions("crash")] == [v.version for v in versions]
    finally:
        reg.dispose()


def test_async_register_and_load(manager, trained_models, tabular):
    import asyncio

    handle = trained_models("lightgbm")

    async def flow():
        mv = await manager.register_model(handle, name="async-model", aliases=["champion"])
        loaded = await manager.load_model("async-model", "champion")
        return mv, loaded

    mv, loaded = asyncio.run(flow())
    assert mv.version == 1 and mv.aliases == ("champion",)
    assert np.array_equal(loaded.predict(tabular[0]), handle.predict(tabular[0]))


def test_garbage_collection_spares_recent_folders(manager, trained_models):
    reg = manager.registry
    reg.register(trained_models("xgboost"), name="gc")
    stray = reg.store.local / "gc" / ".tmp-in-flight"
    stray.mkdir()
    assert reg.collect_garbage(older_than_s=3600) == []  # maybe a save in progress
    assert stray.exists()
    assert reg.collect_garbage(older_than_s=0) == ["gc/.tmp-in-flight"]
    assert reg.load("gc").version == 1


@pytest.fixture
def umask():
    """Set the process umask for one test and restore it after."""
    previous = os.umask(0o022)
    yield os.umask
    os.umask(previous)


def _modes(folder):
    """{relative path: permission bits} of ``folder`` and everything under it."""
    out = {".": folder.stat().st_mode & 0o777}
    for path in folder.rglob("*"):
        out[path.relative_to(folder).as_posix()] = path.stat().st_mode & 0o777
    return out


@pytest.mark.parametrize("mask", [0o022, 0o027], ids=["umask022", "umask027"])
def test_saved_and_registered_models_follow_the_umask(trained_models, tmp_path, umask, mask):
    """A version folder and a saved model are created like mkdir/open would create them, not
    0700/0600: a serving account of the same group can read them where the umask allows it."""
    from pathlib import Path

    umask(mask)
    handle = trained_models("sklearn")
    saved = handle.save(tmp_path / "saved")
    reg = ModelRegistry(f"sqlite:///{tmp_path / 'registry.db'}", tmp_path / "artifacts")
    try:
        version = reg.register(handle, name="modes")
    finally:
        reg.dispose()
    for folder in (Path(saved), Path(version.artifact_uri)):
        modes = _modes(folder)
        assert len(modes) > 2, modes
        for rel, mode in modes.items():
            is_dir = (folder / rel).is_dir()
            assert mode == (0o777 if is_dir else 0o666) & ~mask, (folder, rel, oct(mode))
