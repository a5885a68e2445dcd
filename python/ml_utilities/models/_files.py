"""Atomic folder writes and sha256 manifests of artifact folders."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .._fs import fsync_dir, kept_temp_dir
from .errors import ArtifactIntegrityError, ParameterError

__all__ = ["MANIFEST", "atomic_folder", "check_manifest", "sha256_file", "write_manifest"]

MANIFEST = "MANIFEST.sha256.json"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def manifest_of(folder: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``folder`` (the manifest excluded)."""
    out: dict[str, str] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name != MANIFEST:
            out[path.relative_to(folder).as_posix()] = sha256_file(path)
    return out


def write_manifest(folder: Path) -> dict[str, str]:
    manifest = manifest_of(folder)
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return manifest


def check_manifest(folder: Path, expected: dict[str, str] | None = None) -> None:
    """Refuse a folder whose files differ from the manifest (missing, extra or changed)."""
    if expected is None:
        path = folder / MANIFEST
        if not path.is_file():
            raise ArtifactIntegrityError(f"{folder} has no {MANIFEST}: cannot verify it")
        expected = json.loads(path.read_text())
    actual = manifest_of(folder)
    changed = sorted(k for k in expected if actual.get(k) != expected[k])
    extra = sorted(set(actual) - set(expected))
    if changed or extra:
        detail = []
        for k in changed:
            got = actual.get(k, "missing")
            detail.append(f"{k}: expected sha256 {expected[k][:16]}..., found {got[:16]}...")
        detail += [f"{k}: not in the manifest" for k in extra]
        raise ArtifactIntegrityError(
            f"artifact {folder} does not match its recorded sha256: " + "; ".join(detail)
        )


@contextmanager
def atomic_folder(target: Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success it replaces ``target`` in one rename.

    A crash leaves at most a ``.tmp-*`` folder beside ``target``, never a half-written target.
    The folder gets the umask's default mode (``0o777 & ~umask``), as ``mkdir`` would give it.
    """
    target = Path(target)
    if target.exists() and not overwrite:
        raise ParameterError(f"{target} already exists; pass overwrite=True to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = kept_temp_dir(target.parent, prefix=f".tmp-{target.name}-")
    try:
        yield tmp
        _fsync_tree(tmp)
        if target.exists():
            trash = target.parent / f".trash-{target.name}-{uuid.uuid4().hex}"
            os.replace(target, trash)
            os.replace(tmp, target)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, target)
        fsync_dir(target.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
    fsync_dir(folder)
