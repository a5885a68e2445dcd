"""Artifact store: a local folder or any fsspec URL (``s3://``, ``gs://``, ``memory://``...).

Each artifact is a folder written once under a fresh key and never modified. A local store
writes it beside its final place and renames it in one step; a remote store uploads it file by
file. Either way a version only becomes visible when the registry commits the row that points to
it, with the sha256 of every file, which is checked on every load.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .._fs import kept_temp_dir
from ._files import MANIFEST, check_manifest
from .errors import ArtifactIntegrityError, ParameterError

__all__ = ["ArtifactStore"]

logger = logging.getLogger(__name__)


class ArtifactStore:
    """Folders of files under ``root`` (a path or an fsspec URL).

    Parameters
    ----------
    root : str or pathlib.Path
        ``/data/artifacts``, ``file:///data/artifacts``, ``s3://bucket/prefix``, ...
    storage_options : dict, optional
        Passed to fsspec for remote stores (credentials, endpoint...).
    """

    def __init__(self, root: str | Path, storage_options: dict[str, Any] | None = None) -> None:
        root_s = str(root)
        if not root_s:
            raise ParameterError("artifact root is empty")
        self.url = root_s
        self.local: Path | None = None
        self.fs: Any = None
        self.root: str
        if "://" not in root_s or root_s.startswith("file://"):
            self.local = Path(root_s.removeprefix("file://")).expanduser().resolve()
            self.root = str(self.local)
        else:
            try:
                import fsspec
            except ImportError as err:
                raise ParameterError(
                    f"artifact root {root_s!r} is a URL: install fsspec (and the filesystem's "
                    "package, e.g. s3fs) to use it"
                ) from err
            self.fs, path = fsspec.core.url_to_fs(root_s, **(storage_options or {}))
            self.root = str(path).rstrip("/")

    def __repr__(self) -> str:
        return f"ArtifactStore({self.url!r})"

    def uri(self, key: str) -> str:
        if self.local is not None:
            return str(self.local / key)
        protocol = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]
        return f"{protocol}://{self.root}/{key}"

    def _path(self, key: str) -> str:
        if ".." in key.split("/") or key.startswith("/"):
            raise ParameterError(f"artifact key {key!r} leaves the store")
        return f"{self.root}/{key}"

    @contextlib.contextmanager
    def writing(self, key: str) -> Iterator[tuple[Path, list[str]]]:
        """Yield ``(folder, [uri])``: fill the folder, and on exit it becomes artifact ``key``.

        A local store stages the folder inside the store (``<name>/.tmp-*``, which
        :meth:`ModelRegistry.collect_garbage` removes if the process dies) and renames it into
        place; a remote store stages it in the system's temporary folder and uploads it. The
        folder gets the umask's default mode (``0o777 & ~umask``), so that another account of
        the same group (a serving user) can read a version where the umask allows it.
        """
        uri: list[str] = []
        if self.local is not None:
            final = self.local / key
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp = kept_temp_dir(final.parent, prefix=f".tmp-{final.name}-")
            try:
                yield tmp, uri
                _fsync_files(tmp)
                os.replace(tmp, final)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            uri.append(str(final))
            return
        tmp = kept_temp_dir(prefix="mlu-artifact-")  # uploaded: it keeps its modes
        try:
            yield tmp, uri
            uri.append(self.put(tmp, key))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def put(self, folder: Path, key: str) -> str:
        """Copy a local folder to ``key``; returns its URI. The copy keeps the modes of
        ``folder`` and its files (``shutil.copytree``)."""
        if self.local is not None:
            final = self.local / key
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists():
                raise ParameterError(f"artifact {final} already exists")
            tmp = kept_temp_dir(final.parent, prefix=f".tmp-{final.name}-")
            try:
                shutil.copytree(folder, tmp, dirs_exist_ok=True)
                _fsync_files(tmp)
                os.replace(tmp, final)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            return str(final)
        remote = self._path(key)
        self.fs.put(str(folder).rstrip("/") + "/", remote + "/", recursive=True)
        return self.uri(key)

    def open_folder(self, key: str, manifest: dict[str, str]) -> tuple[Path, bool]:
        """A local folder holding the artifact, checked against ``manifest``.

        Returns the folder and whether it is a temporary copy to delete after use.

        Raises
        ------
        ArtifactIntegrityError
            If a file is missing, added or changed.
        """
        if self.local is not None:
            folder = self.local / key
            if not folder.is_dir():
                raise ArtifactIntegrityError(f"artifact {folder} is missing")
            check_manifest(folder, manifest)
            return folder, False
        tmp = Path(tempfile.mkdtemp(prefix="mlu-artifact-"))
        try:
            remote = self._path(key)
            if not self.fs.exists(remote):
                raise ArtifactIntegrityError(f"artifact {self.uri(key)} is missing")
            for rel in manifest:
                dest = tmp / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                self.fs.get(f"{remote}/{rel}", str(dest))
            listed = {p[len(remote.rstrip("/")) + 1 :] for p in self.fs.find(remote)}
            extra = sorted(listed - set(manifest) - {MANIFEST})
            if extra:
                raise ArtifactIntegrityError(
                    f"artifact {self.uri(key)} holds {extra}, which are not in its manifest"
                )
            check_manifest(tmp, manifest)
            return tmp, True
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def delete(self, key: str) -> None:
        if self.local is not None:
            shutil.rmtree(self.local / key, ignore_errors=True)
        else:
            path = self._path(key)
            if self.fs.exists(path):
                self.fs.rm(path, recursive=True)

    def keys(self, prefix: str) -> list[tuple[str, float]]:
        """Artifact folders directly under ``prefix`` and their age in seconds."""
        out: list[tuple[str, float]] = []
        now = time.time()
        if self.local is not None:
            base = self.local / prefix
            if base.is_dir():
                for p in base.iterdir():
                    if p.is_dir():
                        out.append((f"{prefix}/{p.name}", now - p.stat().st_mtime))
            return out
        remote = self._path(prefix)
        if self.fs.exists(remote):
            for info in self.fs.ls(remote, detail=True):
                if info["type"] == "directory":
                    name = info["name"].rstrip("/").rsplit("/", 1)[-1]
                    out.append((f"{prefix}/{name}", 0.0))
        return out


def _fsync_files(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
