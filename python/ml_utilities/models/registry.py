"""ModelRegistry: versions, aliases and deployments in SQL; artifacts in an :class:`ArtifactStore`.

Metadata lives in SQLite under ``ML_UTILITIES_HOME`` by default, or in any database SQLAlchemy
reaches by URL (PostgreSQL: ``postgresql+psycopg://user@host/db``). A registration writes the
artifact folder first, under a fresh random key, then allocates the next version number and
inserts its row in one transaction; the row is what makes the version visible, so a process
killed mid-save leaves at most an unreferenced folder (:meth:`ModelRegistry.collect_garbage`
removes those), never a half version. Version numbers come from a per-name counter updated under
a row lock (PostgreSQL) or the database write lock (SQLite, ``BEGIN IMMEDIATE``), so concurrent
registrations from many processes get distinct, gap-free numbers.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelNotFoundError, ParameterError
from .handle import ModelHandle
from .store import ArtifactStore

__all__ = [
    "ROLLOUT_STATUSES",
    "Deployment",
    "ModelRegistry",
    "ModelVersion",
    "Rollout",
    "default_registry_paths",
]

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
SCHEMA_VERSION = 3
#: a rollout's states: ``running`` until it is ``promoted`` (the challenger is the champion),
#: ``rolled_back`` (a breach, or by hand), or, for a shadow rollout, ``shadow_passed``
ROLLOUT_STATUSES = ("running", "promoted", "rolled_back", "shadow_passed")
#: events kept in a rollout's row (the oldest go first)
_MAX_EVENTS = 200


def default_registry_paths() -> tuple[str, Path]:
    """``(database URL, artifact folder)`` under ``ML_UTILITIES_HOME``."""
    from ..config import get_settings

    home = Path(get_settings().home)
    return f"sqlite:///{home / 'registry.db'}", home / "artifacts"


@dataclasses.dataclass(frozen=True)
class ModelVersion:
    """One registered version (a row of the registry)."""

    name: str
    version: int
    framework: str
    architecture: str
    task: str
    artifact_uri: str
    manifest: dict[str, str]
    metadata: dict[str, Any]
    metrics: dict[str, Any]
    signature: dict[str, Any]
    fingerprint: str
    created_at: float
    aliases: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Deployment:
    """A deployment attempt recorded by :meth:`ModelManager.deploy_model` (deployed or refused)."""

    id: int
    name: str
    version: int
    status: str
    reason: str | None
    config: dict[str, Any]
    report: dict[str, Any]
    artifact_uri: str | None
    manifest: dict[str, str] | None
    created_at: float


@dataclasses.dataclass(frozen=True)
class Rollout:
    """A gradual rollout of ``challenger`` against ``champion`` behind ``alias`` (a row of the
    registry): the split of traffic every serving process reads.

    ``weight`` is the challenger's share of the requests (0 in a shadow rollout, where it sees
    every request but answers none); ``steps`` are the shares in percent, each held for
    ``window_s`` seconds from ``step_started_at``; ``revision`` grows with each change, so
    that two processes judging the same step change it once (compare and set).
    """

    id: int
    name: str
    alias: str
    champion: int
    challenger: int
    mode: str
    steps: tuple[float, ...]
    step_index: int
    weight: float
    window_s: float
    criteria: dict[str, Any]
    status: str
    reason: str | None
    revision: int
    step_started_at: float
    created_at: float
    updated_at: float
    events: tuple[dict[str, Any], ...] = ()

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def step_percent(self) -> float:
        return float(self.steps[self.step_index])

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["steps"] = list(self.steps)
        out["events"] = list(self.events)
        out["step_percent"] = self.step_percent
        return out


def _plain_id(value: Any, what: str) -> Any:
    """A user or item id as a JSON scalar: an int or a str (NumPy scalars unwrapped)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ParameterError(f"{what}={value!r}: expected an int or a str")
    return value


def _tables(sa: Any) -> tuple[Any, ...]:
    md = sa.MetaData()
    schema = sa.Table("mlu_schema", md, sa.Column("version", sa.Integer, nullable=False))
    models = sa.Table(
        "mlu_registered_models",
        md,
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("next_version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    versions = sa.Table(
        "mlu_model_versions",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "name", sa.String(200), sa.ForeignKey("mlu_registered_models.name"), nullable=False
        ),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("framework", sa.String(40), nullable=False),
        sa.Column("architecture", sa.String(100), nullable=False),
        sa.Column("task", sa.String(40), nullable=False),
        sa.Column("artifact_key", sa.String(400), nullable=False),
        sa.Column("artifact_uri", sa.Text, nullable=False),
        sa.Column("manifest", sa.JSON, nullable=False),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("signature", sa.JSON, nullable=False),
        sa.Column("fingerprint", sa.String(80), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.UniqueConstraint("name", "version", name="uq_mlu_model_version"),
    )
    aliases = sa.Table(
        "mlu_model_aliases",
        md,
        sa.Column(
            "name", sa.String(200), sa.ForeignKey("mlu_registered_models.name"), primary_key=True
        ),
        sa.Column("alias", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    deployments = sa.Table(
        "mlu_deployments",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("report", sa.JSON, nullable=False),
        sa.Column("artifact_key", sa.String(400)),
        sa.Column("artifact_uri", sa.Text),
        sa.Column("manifest", sa.JSON),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Index("ix_mlu_deployments_name", "name", "version"),
    )
    rollouts = sa.Table(
        "mlu_rollouts",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("alias", sa.String(64), nullable=False),
        sa.Column("champion", sa.Integer, nullable=False),
        sa.Column("challenger", sa.Integer, nullable=False),
        sa.Column("mode", sa.String(20), nullable=False),
        sa.Column("steps", sa.JSON, nullable=False),
        sa.Column("step_index", sa.Integer, nullable=False),
        sa.Column("weight", sa.Float, nullable=False),
        sa.Column("window_s", sa.Float, nullable=False),
        sa.Column("criteria", sa.JSON, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("step_started_at", sa.Float, nullable=False),
        sa.Column("events", sa.JSON, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Index("ix_mlu_rollouts_name", "name", "id"),
    )
    # interactions reported to a served recommender after its training (``update_user``): the
    # log every worker reads from, so that all of them and a restarted one see the same history
    interactions = sa.Table(
        "mlu_interactions",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("user_id", sa.Text, nullable=False),  # the id as JSON (keeps int vs str)
        sa.Column("item_id", sa.Text, nullable=False),
        sa.Column("weight", sa.Float, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Index("ix_mlu_interactions_name", "name", "id"),
    )
    return md, schema, models, versions, aliases, deployments, rollouts, interactions


class ModelRegistry:
    """Versions, aliases and deployments of models, with their artifacts.

    Parameters
    ----------
    url : str, optional
        SQLAlchemy database URL. Default: ``sqlite:///$ML_UTILITIES_HOME/registry.db``.
    artifact_root : str or pathlib.Path, optional
        Local folder or fsspec URL. Default: ``$ML_UTILITIES_HOME/artifacts``.
    storage_options : dict, optional
        fsspec options of a remote artifact store.

    Examples
    --------
    >>> registry = ModelRegistry("sqlite:////tmp/reg.db", "/tmp/artifacts")  # doctest: +SKIP
    >>> mv = registry.register(handle, metadata={"owner": "recs"}, aliases=["challenger"])
    ... # doctest: +SKIP
    >>> registry.load(mv.name, "champion")  # doctest: +SKIP
    """

    def __init__(
        self,
        url: str | None = None,
        artifact_root: str | Path | None = None,
        *,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        try:
            import sqlalchemy as sa
        except ImportError as err:
            raise ParameterError(
                "the model registry needs SQLAlchemy: pip install 'ml_utilities[models]'"
            ) from err
        default_url, default_root = default_registry_paths()
        self.url = url or default_url
        self.store = ArtifactStore(artifact_root or default_root, storage_options)
        self._sa = sa
        (
            self._md,
            self._schema,
            self._models,
            self._versions,
            self._aliases,
            self._deployments,
            self._rollouts,
            self._interactions,
        ) = _tables(sa)
        self.engine = self._make_engine(self.url)
        self._migrate()

    def __repr__(self) -> str:
        url = self.engine.url.render_as_string(hide_password=True)
        return f"ModelRegistry({url!r}, {self.store.url!r})"

    # -- engine and schema -------------------------------------------------------------------------
    def _make_engine(self, url: str) -> Any:
        sa = self._sa
        try:
            parsed = sa.engine.make_url(url)
        except Exception as err:
            raise ParameterError(f"registry url {url!r} is not a database URL ({err})") from None
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            engine = sa.create_engine(parsed, connect_args={"timeout": 120})

            @sa.event.listens_for(engine, "connect")
            def _on_connect(dbapi_conn: Any, _record: Any) -> None:
                dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=FULL")
                cur.execute("PRAGMA foreign_keys=ON")
                cur.close()

            @sa.event.listens_for(engine, "begin")
            def _on_begin(conn: Any) -> None:
                # take the write lock at the start: no deadlock upgrading a read lock later
                conn.exec_driver_sql("BEGIN IMMEDIATE")

            return engine
        return sa.create_engine(parsed, pool_pre_ping=True)

    def _lock_schema(self, conn: Any) -> None:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7310151)")

    def _migrate(self) -> None:
        """Create or upgrade the schema (one transaction, serialised across processes)."""
        sa = self._sa
        with self.engine.begin() as conn:
            self._lock_schema(conn)
            self._md.create_all(conn, checkfirst=True)
            current = conn.execute(sa.select(self._schema.c.version)).scalar()
            if current is None:
                conn.execute(self._schema.insert().values(version=SCHEMA_VERSION))
            elif current > SCHEMA_VERSION:
                raise ParameterError(
                    f"registry schema version {current} is newer than this ml_utilities "
                    f"understands ({SCHEMA_VERSION}); upgrade ml_utilities"
                )
            elif current < SCHEMA_VERSION:
                # 1 -> 2: the rollouts table; 2 -> 3: the interactions log (create_all has just
                # added both)
                conn.execute(self._schema.update().values(version=SCHEMA_VERSION))
            # future migrations: `if current < 4: ...; update version` in this transaction

    # -- names -------------------------------------------------------------------------------------
    @staticmethod
    def check_name(name: Any) -> str:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ParameterError(
                f"model name {name!r} is not valid: letters, digits, '.', '_' and '-', starting "
                "with a letter or digit, at most 200 characters"
            )
        return name

    @staticmethod
    def _check_alias(alias: Any) -> str:
        if not isinstance(alias, str) or not _ALIAS.fullmatch(alias) or alias.isdigit():
            raise ParameterError(f"alias {alias!r} is not valid: a word such as 'champion'")
        if alias == "latest":
            raise ParameterError("alias 'latest' is reserved (it always means the newest version)")
        return alias

    # -- registration ------------------------------------------------------------------------------
    def register(
        self,
        model: ModelHandle,
        *,
        name: str | None = None,
        metadata: dict[str, Any] | None = None,
        aliases: list[str] | tuple[str, ...] = (),
        allow_pickle: bool = False,
    ) -> ModelVersion:
        """Store ``model``'s artifacts and give it the next version of ``name``.

        Parameters
        ----------
        model : ModelHandle
        name : str, optional
            Defaults to ``model.name``.
        metadata : dict, optional
            Free JSON-friendly metadata (owner, dataset, commit...).
        aliases : list of str
            Aliases to point at the new version (``"champion"``, ``"challenger"``).
        allow_pickle : bool
            Allow a pickle for models that no safe format can hold (scikit-learn only).

        Returns
        -------
        ModelVersion
        """
        if not isinstance(model, ModelHandle):
            raise ParameterError(f"model must be a ModelHandle, got {type(model).__name__}")
        name = self.check_name(model.name if name is None else name)
        aliases = tuple(self._check_alias(a) for a in aliases)
        meta = dict(metadata or {})
        _check_json(meta, "metadata")
        key = f"{name}/{uuid.uuid4().hex}"
        with self.store.writing(key) as (folder, written):
            manifest = model.write_folder(folder, allow_pickle=allow_pickle)
        uri = written[0]
        try:
            version = self._insert_version(name, model, key, uri, manifest, meta, aliases)
        except BaseException:
            self.store.delete(key)
            raise
        model.name, model.version = name, version
        logger.info("registered %s version %d at %s", name, version, uri)
        return self.get_version(name, version)

    def _insert_version(
        self,
        name: str,
        model: ModelHandle,
        key: str,
        uri: str,
        manifest: dict[str, str],
        meta: dict[str, Any],
        aliases: tuple[str, ...],
    ) -> int:
        sa = self._sa
        now = time.time()
        with self.engine.begin() as conn:
            self._insert_name(conn, name, now)
            q = sa.select(self._models.c.next_version).where(self._models.c.name == name)
            if conn.dialect.name != "sqlite":
                q = q.with_for_update()
            version = int(conn.execute(q).scalar_one())
            conn.execute(
                self._models.update()
                .where(self._models.c.name == name)
                .values(next_version=version + 1)
            )
            conn.execute(
                self._versions.insert().values(
                    name=name,
                    version=version,
                    framework=model.framework,
                    architecture=model.architecture,
                    task=model.task,
                    artifact_key=key,
                    artifact_uri=uri,
                    manifest=manifest,
                    metadata=meta,
                    metrics=_clean_json(model.metrics),
                    signature=_clean_json(model.signature),
                    fingerprint=model.fingerprint,
                    created_at=now,
                )
            )
            for alias in aliases:
                self._upsert_alias(conn, name, alias, version, now)
        return version

    def _insert_name(self, conn: Any, name: str, now: float) -> None:
        values = {"name": name, "next_version": 1, "created_at": now}
        if conn.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        elif conn.dialect.name == "sqlite":
            from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
        else:  # pragma: no cover - other databases: plain insert when absent
            exists = conn.execute(
                self._sa.select(self._models.c.name).where(self._models.c.name == name)
            ).first()
            if exists is None:
                conn.execute(self._models.insert().values(**values))
            return
        conn.execute(insert(self._models).values(**values).on_conflict_do_nothing())

    def _upsert_alias(self, conn: Any, name: str, alias: str, version: int, now: float) -> None:
        t = self._aliases
        updated = conn.execute(
            t.update()
            .where((t.c.name == name) & (t.c.alias == alias))
            .values(version=version, updated_at=now)
        ).rowcount
        if not updated:
            conn.execute(t.insert().values(name=name, alias=alias, version=version, updated_at=now))

    # -- queries -----------------------------------------------------------------------------------
    def list_models(self) -> list[str]:
        sa = self._sa
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(self._versions.c.name).distinct().order_by(self._versions.c.name)
            )
            return [r[0] for r in rows]

    def list_versions(self, name: str) -> list[ModelVersion]:
        sa = self._sa
        with self.engine.connect() as conn:
            rows = (
                conn.execute(
                    sa.select(self._versions)
                    .where(self._versions.c.name == name)
                    .order_by(self._versions.c.version)
                )
                .mappings()
                .all()
            )
            aliases = self._aliases_of(conn, name)
        return [self._row_to_version(r, aliases) for r in rows]

    def _aliases_of(self, conn: Any, name: str) -> dict[int, list[str]]:
        sa = self._sa
        out: dict[int, list[str]] = {}
        for alias, version in conn.execute(
            sa.select(self._aliases.c.alias, self._aliases.c.version)
            .where(self._aliases.c.name == name)
            .order_by(self._aliases.c.alias)
        ):
            out.setdefault(version, []).append(alias)
        return out

    @staticmethod
    def _row_to_version(r: Any, aliases: dict[int, list[str]]) -> ModelVersion:
        return ModelVersion(
            name=r["name"],
            version=r["version"],
            framework=r["framework"],
            architecture=r["architecture"],
            task=r["task"],
            artifact_uri=r["artifact_uri"],
            manifest=dict(r["manifest"]),
            metadata=dict(r["metadata"]),
            metrics=dict(r["metrics"]),
            signature=dict(r["signature"]),
            fingerprint=r["fingerprint"],
            created_at=r["created_at"],
            aliases=tuple(aliases.get(r["version"], ())),
        )

    def _resolve(self, conn: Any, name: str, version: int | str | None) -> int:
        sa = self._sa
        if version is None or version == "latest":
            v = conn.execute(
                sa.select(sa.func.max(self._versions.c.version)).where(
                    self._versions.c.name == name
                )
            ).scalar()
            if v is None:
                raise ModelNotFoundError(f"no registered model named {name!r}")
            return int(v)
        if isinstance(version, bool):
            raise ParameterError(f"version={version!r}: expected an int, an alias or None")
        if isinstance(version, str) and version.isdigit():
            version = int(version)
        if isinstance(version, int):
            return version
        if isinstance(version, str):
            v = conn.execute(
                sa.select(self._aliases.c.version).where(
                    (self._aliases.c.name == name) & (self._aliases.c.alias == version)
                )
            ).scalar()
            if v is None:
                raise ModelNotFoundError(f"model {name!r} has no alias {version!r}")
            return int(v)
        raise ParameterError(f"version={version!r}: expected an int, an alias or None")

    def get_version(self, name: str, version: int | str | None = None) -> ModelVersion:
        """The row of ``name`` at ``version`` (an int, an alias, or None / ``"latest"``)."""
        sa = self._sa
        with self.engine.connect() as conn:
            v = self._resolve(conn, name, version)
            row = (
                conn.execute(
                    sa.select(self._versions).where(
                        (self._versions.c.name == name) & (self._versions.c.version == v)
                    )
                )
                .mappings()
                .first()
            )
            if row is None:
                raise ModelNotFoundError(f"model {name!r} has no version {v}")
            return self._row_to_version(row, self._aliases_of(conn, name))

    def load(
        self,
        name: str,
        version: int | str | None = None,
        *,
        allow_pickle: bool = False,
        device: str | None = None,
    ) -> ModelHandle:
        """Load a registered model after checking the sha256 of every artifact file.

        Raises
        ------
        ArtifactIntegrityError
            If an artifact file was changed, removed or added after registration.
        ModelNotFoundError
            If there is no such name, version or alias.
        """
        mv = self.get_version(name, version)
        key = self._artifact_key(mv)
        folder, temporary = self.store.open_folder(key, mv.manifest)
        try:
            handle = ModelHandle.load(
                folder, allow_pickle=allow_pickle, manifest=mv.manifest, device=device
            )
        finally:
            if temporary:
                shutil.rmtree(folder, ignore_errors=True)
        handle.name, handle.version = mv.name, mv.version
        return handle

    def _artifact_key(self, mv: ModelVersion) -> str:
        sa = self._sa
        with self.engine.connect() as conn:
            return str(
                conn.execute(
                    sa.select(self._versions.c.artifact_key).where(
                        (self._versions.c.name == mv.name)
                        & (self._versions.c.version == mv.version)
                    )
                ).scalar_one()
            )

    # -- aliases -----------------------------------------------------------------------------------
    def set_alias(self, name: str, alias: str, version: int) -> None:
        """Point ``alias`` (``"champion"``, ``"challenger"``...) of ``name`` at ``version``."""
        alias = self._check_alias(alias)
        sa = self._sa
        with self.engine.begin() as conn:
            exists = conn.execute(
                sa.select(self._versions.c.id).where(
                    (self._versions.c.name == name) & (self._versions.c.version == version)
                )
            ).first()
            if exists is None:
                raise ModelNotFoundError(f"model {name!r} has no version {version!r}")
            self._upsert_alias(conn, name, alias, int(version), time.time())

    def delete_alias(self, name: str, alias: str) -> None:
        with self.engine.begin() as conn:
            n = conn.execute(
                self._aliases.delete().where(
                    (self._aliases.c.name == name) & (self._aliases.c.alias == alias)
                )
            ).rowcount
        if not n:
            raise ModelNotFoundError(f"model {name!r} has no alias {alias!r}")

    def aliases(self, name: str) -> dict[str, int]:
        sa = self._sa
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(self._aliases.c.alias, self._aliases.c.version).where(
                    self._aliases.c.name == name
                )
            )
            return {a: int(v) for a, v in rows}

    # -- deployments -------------------------------------------------------------------------------
    def record_deployment(
        self,
        name: str,
        version: int,
        *,
        status: str,
        config: dict[str, Any],
        report: dict[str, Any],
        reason: str | None = None,
        artifact_folder: Path | None = None,
    ) -> Deployment:
        """Record a deployment attempt; a deployed one stores its (optimised ONNX) artifact."""
        if status not in ("deployed", "refused"):
            raise ParameterError(f"status={status!r}: expected 'deployed' or 'refused'")
        key = uri = manifest = None
        if artifact_folder is not None:
            key = f"{name}/deployments/{uuid.uuid4().hex}"
            from ._files import manifest_of

            manifest = manifest_of(artifact_folder)
            uri = self.store.put(artifact_folder, key)
        now = time.time()
        try:
            with self.engine.begin() as conn:
                result = conn.execute(
                    self._deployments.insert().values(
                        name=name,
                        version=version,
                        status=status,
                        reason=reason,
                        config=_clean_json(config),
                        report=_clean_json(report),
                        artifact_key=key,
                        artifact_uri=uri,
                        manifest=manifest,
                        created_at=now,
                    )
                )
                dep_id = int(result.inserted_primary_key[0])
        except BaseException:
            if key is not None:
                self.store.delete(key)
            raise
        return Deployment(
            dep_id,
            name,
            version,
            status,
            reason,
            _clean_json(config),
            _clean_json(report),
            uri,
            manifest,
            now,
        )

    def list_deployments(self, name: str | None = None) -> list[Deployment]:
        sa = self._sa
        t = self._deployments
        q = sa.select(t).order_by(t.c.id)
        if name is not None:
            q = q.where(t.c.name == name)
        with self.engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
        return [
            Deployment(
                r["id"],
                r["name"],
                r["version"],
                r["status"],
                r["reason"],
                dict(r["config"]),
                dict(r["report"]),
                r["artifact_uri"],
                None if r["manifest"] is None else dict(r["manifest"]),
                r["created_at"],
            )
            for r in rows
        ]

    def open_deployment(self, deployment: Deployment) -> bytes:
        """The deployed ONNX model's bytes, checked against the recorded sha256."""
        if deployment.manifest is None:
            raise ParameterError(
                f"deployment {deployment.id} ({deployment.status}) has no artifact"
            )
        sa = self._sa
        with self.engine.connect() as conn:
            key = conn.execute(
                sa.select(self._deployments.c.artifact_key).where(
                    self._deployments.c.id == deployment.id
                )
            ).scalar_one()
        folder, temporary = self.store.open_folder(key, deployment.manifest)
        try:
            return (folder / "model.onnx").read_bytes()
        finally:
            if temporary:
                shutil.rmtree(folder, ignore_errors=True)

    # -- rollouts ----------------------------------------------------------------------------------
    def start_rollout(
        self,
        name: str,
        challenger: int,
        *,
        alias: str = "champion",
        steps: tuple[float, ...] | list[float] = (5, 25, 50, 100),
        window_s: float = 60.0,
        mode: str = "canary",
        criteria: dict[str, Any] | None = None,
    ) -> Rollout:
        """Begin a rollout of version ``challenger`` of ``name`` against the version ``alias``
        points to (the champion), at ``steps[0]`` percent of the traffic; ``challenger`` also
        becomes the alias ``challenger`` (removed again when the rollout is promoted or rolled
        back). One transaction.

        Raises
        ------
        ParameterError
            Bad steps, window, mode or criteria; a rollout of ``name`` already running; the
            challenger is the champion.
        ModelNotFoundError
            No such version, or no ``alias`` to roll out against.
        """
        alias = self._check_alias(alias)
        if mode not in ("canary", "shadow"):
            raise ParameterError(f"mode={mode!r}: expected 'canary' or 'shadow'")
        try:
            step_list = [float(p) for p in steps]
        except (TypeError, ValueError):
            raise ParameterError(
                f"steps={steps!r}: expected percentages such as [5, 25, 100]"
            ) from None
        if (
            not step_list
            or any(not (0 < p <= 100) for p in step_list)
            or any(b <= a for a, b in zip(step_list, step_list[1:], strict=False))
        ):
            raise ParameterError(f"steps={steps!r}: expected increasing percentages in (0, 100]")
        if mode == "canary" and step_list[-1] != 100:
            raise ParameterError(f"steps={steps!r}: a canary rollout's last step is 100")
        if not (isinstance(window_s, (int, float)) and 0 < float(window_s) < 1e7):
            raise ParameterError(f"window_s={window_s!r}: expected a positive number of seconds")
        crit = dict(criteria or {})
        _check_json(crit, "criteria")
        sa = self._sa
        t = self._rollouts
        now = time.time()
        with self.engine.begin() as conn:
            champion = self._resolve(conn, name, alias)
            exists = conn.execute(
                sa.select(self._versions.c.id).where(
                    (self._versions.c.name == name) & (self._versions.c.version == challenger)
                )
            ).first()
            if exists is None:
                raise ModelNotFoundError(f"model {name!r} has no version {challenger!r}")
            if int(challenger) == champion:
                raise ParameterError(
                    f"version {challenger} of {name!r} is already the {alias!r}: nothing to "
                    "roll out"
                )
            running = conn.execute(
                sa.select(t.c.id, t.c.challenger).where(
                    (t.c.name == name) & (t.c.status == "running")
                )
            ).first()
            if running is not None:
                raise ParameterError(
                    f"a rollout of {name!r} (version {running[1]}) is already running: roll it "
                    "back or let it finish first"
                )
            weight = 0.0 if mode == "shadow" else step_list[0] / 100.0
            event = {"time": now, "event": "start", "detail": f"{mode} at {step_list[0]:g}%"}
            result = conn.execute(
                t.insert().values(
                    name=name,
                    alias=alias,
                    champion=champion,
                    challenger=int(challenger),
                    mode=mode,
                    steps=step_list,
                    step_index=0,
                    weight=weight,
                    window_s=float(window_s),
                    criteria=_clean_json(crit),
                    status="running",
                    reason=None,
                    revision=1,
                    step_started_at=now,
                    events=[event],
                    created_at=now,
                    updated_at=now,
                )
            )
            rid = int(result.inserted_primary_key[0])
            self._upsert_alias(conn, name, "challenger", int(challenger), now)
        logger.info("rollout %d of %s: v%d against v%d", rid, name, challenger, champion)
        return self._rollout_by_id(rid)

    def _rollout_by_id(self, rid: int) -> Rollout:
        sa = self._sa
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(self._rollouts).where(self._rollouts.c.id == rid))
            return self._row_to_rollout(row.mappings().one())

    @staticmethod
    def _row_to_rollout(r: Any) -> Rollout:
        return Rollout(
            id=int(r["id"]),
            name=r["name"],
            alias=r["alias"],
            champion=int(r["champion"]),
            challenger=int(r["challenger"]),
            mode=r["mode"],
            steps=tuple(float(p) for p in r["steps"]),
            step_index=int(r["step_index"]),
            weight=float(r["weight"]),
            window_s=float(r["window_s"]),
            criteria=dict(r["criteria"]),
            status=r["status"],
            reason=r["reason"],
            revision=int(r["revision"]),
            step_started_at=float(r["step_started_at"]),
            created_at=float(r["created_at"]),
            updated_at=float(r["updated_at"]),
            events=tuple(dict(e) for e in r["events"]),
        )

    def get_rollout(self, name: str) -> Rollout | None:
        """The latest rollout of ``name`` (running or finished), or None."""
        sa = self._sa
        t = self._rollouts
        with self.engine.connect() as conn:
            row = (
                conn.execute(sa.select(t).where(t.c.name == name).order_by(t.c.id.desc()).limit(1))
                .mappings()
                .first()
            )
        return None if row is None else self._row_to_rollout(row)

    # -- the interactions log of served recommenders ------------------------------------------
    def append_interactions(self, name: str, rows: list[tuple[Any, Any, float]]) -> int:
        """Append ``(user_id, item_id, weight)`` rows to ``name``'s interaction log in one
        transaction (all or none); returns the id of the last row. Ids are stored as JSON, so
        ``7`` and ``"7"`` stay apart."""
        import json

        name = self.check_name(name)
        now = time.time()
        values = []
        for user, item, weight in rows:
            w = float(weight)
            if not np.isfinite(w) or w <= 0:
                raise ParameterError(f"interaction weight {weight!r}: expected a number > 0")
            values.append(
                {
                    "name": name,
                    "user_id": json.dumps(_plain_id(user, "user_id")),
                    "item_id": json.dumps(_plain_id(item, "item_id")),
                    "weight": w,
                    "created_at": now,
                }
            )
        if not values:
            raise ParameterError("no interactions to append")
        t = self._interactions
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # appends commit one at a time, in id order: a reader that has seen id n never
                # later finds a smaller id committed (SQLite's writes are serialised already)
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7310152)")
            conn.execute(t.insert(), values)
            last = conn.execute(
                self._sa.select(self._sa.func.max(t.c.id)).where(t.c.name == name)
            ).scalar_one()
        return int(last)

    def last_interaction_id(self, name: str) -> int:
        """The id of ``name``'s last logged interaction (0: none)."""
        t = self._interactions
        with self.engine.connect() as conn:
            last = conn.execute(
                self._sa.select(self._sa.func.max(t.c.id)).where(t.c.name == name)
            ).scalar()
        return int(last or 0)

    def interactions_since(self, name: str, after_id: int = 0) -> list[tuple[int, Any, Any, float]]:
        """``(id, user_id, item_id, weight)`` of ``name``'s logged interactions with an id
        above ``after_id``, in order."""
        import json

        t = self._interactions
        with self.engine.connect() as conn:
            rows = conn.execute(
                self._sa.select(t.c.id, t.c.user_id, t.c.item_id, t.c.weight)
                .where((t.c.name == name) & (t.c.id > int(after_id)))
                .order_by(t.c.id)
            ).all()
        return [(int(i), json.loads(u), json.loads(it), float(w)) for i, u, it, w in rows]

    def list_rollouts(self, name: str | None = None) -> list[Rollout]:
        """Every rollout (of ``name``), oldest first."""
        sa = self._sa
        t = self._rollouts
        q = sa.select(t).order_by(t.c.id)
        if name is not None:
            q = q.where(t.c.name == name)
        with self.engine.connect() as conn:
            return [self._row_to_rollout(r) for r in conn.execute(q).mappings().all()]

    def _change_rollout(
        self,
        name: str,
        revision: int | None,
        change: Any,
    ) -> Rollout | None:
        """Apply ``change(conn, rollout, now) -> (values, event)`` to the running rollout of
        ``name`` in one transaction, if its revision is still ``revision`` (None: any); the
        changed rollout, or None where another process changed it first or none is running."""
        sa = self._sa
        t = self._rollouts
        now = time.time()
        with self.engine.begin() as conn:
            q = sa.select(t).where((t.c.name == name) & (t.c.status == "running"))
            if conn.dialect.name != "sqlite":
                q = q.with_for_update()
            row = conn.execute(q).mappings().first()
            if row is None:
                return None
            current = self._row_to_rollout(row)
            if revision is not None and current.revision != revision:
                return None
            values, event = change(conn, current, now)
            if values.get("status", "running") in ("promoted", "rolled_back"):
                # the version is no longer a challenger: the champion now, or turned down
                a = self._aliases
                conn.execute(
                    a.delete().where(
                        (a.c.name == name)
                        & (a.c.alias == "challenger")
                        & (a.c.version == current.challenger)
                    )
                )
            events = [*current.events, {"time": now, **event}][-_MAX_EVENTS:]
            values.update(revision=current.revision + 1, updated_at=now, events=_clean_json(events))
            done = conn.execute(
                t.update()
                .where((t.c.id == current.id) & (t.c.revision == current.revision))
                .values(**values)
            ).rowcount
            if not done:
                return None
            rid = current.id
        return self._rollout_by_id(rid)

    def advance_rollout(
        self, name: str, revision: int | None = None, *, detail: str | None = None
    ) -> Rollout | None:
        """Move the running rollout of ``name`` to its next step; past the last step, promote
        the challenger (``alias`` points to it, in the same transaction) or, in shadow mode,
        end it as ``shadow_passed``. None where ``revision`` is stale or nothing runs."""

        def change(conn: Any, r: Rollout, now: float) -> tuple[dict[str, Any], dict[str, Any]]:
            nxt = r.step_index + 1
            if nxt < len(r.steps):
                weight = 0.0 if r.mode == "shadow" else r.steps[nxt] / 100.0
                return (
                    {"step_index": nxt, "weight": weight, "step_started_at": now},
                    {"event": "step", "detail": detail or f"{r.steps[nxt]:g}%"},
                )
            if r.mode == "shadow":
                return (
                    {"status": "shadow_passed", "reason": detail},
                    {"event": "shadow_passed", "detail": detail or "every step passed"},
                )
            self._upsert_alias(conn, name, r.alias, r.challenger, now)
            return (
                {"status": "promoted", "weight": 1.0, "reason": detail},
                {"event": "promoted", "detail": detail or f"v{r.challenger} is {r.alias}"},
            )

        return self._change_rollout(name, revision, change)

    def rollback_rollout(
        self, name: str, reason: str, revision: int | None = None
    ) -> Rollout | None:
        """End the running rollout of ``name``: every request goes to the champion again.
        None where ``revision`` is stale or nothing runs."""

        def change(conn: Any, r: Rollout, now: float) -> tuple[dict[str, Any], dict[str, Any]]:
            return (
                {"status": "rolled_back", "weight": 0.0, "reason": str(reason)},
                {"event": "rolled_back", "detail": str(reason)},
            )

        return self._change_rollout(name, revision, change)

    def promote_rollout(self, name: str, reason: str = "promoted by hand") -> Rollout | None:
        """Finish the running rollout of ``name`` now, promoting its challenger."""

        def change(conn: Any, r: Rollout, now: float) -> tuple[dict[str, Any], dict[str, Any]]:
            self._upsert_alias(conn, name, r.alias, r.challenger, now)
            return (
                {
                    "status": "promoted",
                    "weight": 1.0,
                    "reason": reason,
                    "step_index": len(r.steps) - 1,
                },
                {"event": "promoted", "detail": reason},
            )

        return self._change_rollout(name, None, change)

    # -- maintenance -------------------------------------------------------------------------------
    def collect_garbage(self, older_than_s: float = 3600.0) -> list[str]:
        """Delete artifact folders that no row references (left by killed registrations).

        Only folders older than ``older_than_s`` go, so registrations in flight are safe.
        """
        sa = self._sa
        with self.engine.connect() as conn:
            used = {r[0] for r in conn.execute(sa.select(self._versions.c.artifact_key))}
            used |= {
                r[0] for r in conn.execute(sa.select(self._deployments.c.artifact_key)) if r[0]
            }
            names = [r[0] for r in conn.execute(sa.select(self._models.c.name))]
        removed = []
        for name in names:
            for prefix in (name, f"{name}/deployments"):
                for key, age in self.store.keys(prefix):
                    if key.endswith("/deployments") or key in used or age < older_than_s:
                        continue
                    self.store.delete(key)
                    removed.append(key)
        return removed

    def dispose(self) -> None:
        """Close the database connections."""
        self.engine.dispose()


def _clean_json(value: Any) -> Any:
    """A JSON-friendly copy: numpy scalars and arrays as Python values, NaN and inf as None
    (PostgreSQL's JSON refuses them)."""
    import math

    import numpy as np

    if isinstance(value, dict):
        return {str(k): _clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return _clean_json(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _check_json(value: Any, what: str) -> None:
    try:
        _clean_json(value)
    except TypeError as err:
        raise ParameterError(f"{what} must be JSON-friendly: {err}") from None
