"""Retraining out of the serving process.

:func:`start_retraining` starts ``python -m ml_utilities.lifecycle.retrain SPEC.json`` as a
subprocess (niced, with its BLAS/OpenMP threads capped, so serving keeps its cores' latency);
the child reads the fresh data, trains with the champion's configuration through
:class:`~ml_utilities.models.ModelManager`, registers the result as the alias ``challenger``
(with its reference sample of training rows) and writes ``result.json`` atomically. The parent
holds a :class:`RetrainingJob`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ..exceptions import ParameterError

__all__ = ["RetrainingJob", "load_training_data", "start_retraining"]


class RetrainingJob:
    """A retraining subprocess: :meth:`done`, :meth:`wait` (its result), :meth:`terminate`."""

    def __init__(self, model_name: str, proc: subprocess.Popen[bytes], folder: Path) -> None:
        self.model_name = model_name
        self.proc = proc
        self.folder = folder
        self.started_at = time.time()

    def __repr__(self) -> str:
        state = "running" if not self.done() else f"exit {self.proc.returncode}"
        return f"<RetrainingJob {self.model_name} pid={self.proc.pid} {state}>"

    @property
    def log_path(self) -> Path:
        return self.folder / "retrain.log"

    def done(self) -> bool:
        return self.proc.poll() is not None

    def wait(self, timeout: float | None = None) -> dict[str, Any]:
        """The child's result (``version``, ``metrics``...) once it exits.

        Raises
        ------
        RuntimeError
            The child failed (its log's last lines in the message).
        subprocess.TimeoutExpired
            Still running after ``timeout`` seconds.
        """
        rc = self.proc.wait(timeout=timeout)
        result = self.folder / "result.json"
        if rc != 0 or not result.is_file():
            tail = ""
            if self.log_path.is_file():
                tail = "\n".join(self.log_path.read_text(errors="replace").splitlines()[-15:])
            raise RuntimeError(f"retraining of {self.model_name} failed (exit {rc}):\n{tail}")
        return dict(json.loads(result.read_text()))

    def terminate(self) -> None:
        if not self.done():
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def start_retraining(
    model_name: str,
    *,
    registry_url: str,
    artifact_root: str,
    data: str,
    target: str | None,
    train_config: dict[str, Any],
    validation_split: float = 0.2,
    based_on: int | None = None,
    nice: int = 10,
    threads: int = 1,
) -> RetrainingJob:
    """Start the retraining subprocess of ``model_name`` (see the module's docstring)."""
    if not Path(data).is_file():
        raise ParameterError(f"retraining data {data!r} is not a file")
    folder = Path(tempfile.mkdtemp(prefix=f"mlu-retrain-{model_name}-"))
    spec = {
        "model_name": model_name,
        "registry_url": registry_url,
        "artifact_root": artifact_root,
        "data": str(data),
        "target": target,
        "train_config": train_config,
        "validation_split": validation_split,
        "based_on": based_on,
        "nice": int(nice),
        "result": str(folder / "result.json"),
    }
    (folder / "spec.json").write_text(json.dumps(spec))
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(int(threads))
    log = open(folder / "retrain.log", "wb")  # noqa: SIM115 - the child owns it
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ml_utilities.lifecycle.retrain", str(folder / "spec.json")],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    finally:
        log.close()
    return RetrainingJob(model_name, proc, folder)


def load_training_data(path: str, target: str | None) -> tuple[Any, Any]:
    """``(X, y)`` from a CSV or Parquet file (``target`` names the label column; the other
    numeric columns are the features) or an ``.npz`` with ``x`` and ``y``."""
    import numpy as np

    p = Path(path)
    if p.suffix == ".npz":
        with np.load(p, allow_pickle=False) as data:
            return data["x"], data["y"]
    import pandas as pd

    frame = pd.read_parquet(p) if p.suffix in (".parquet", ".pq") else pd.read_csv(p)
    if target is None or target not in frame.columns:
        raise ParameterError(
            f"retraining target {target!r} is not a column of {path} (columns: "
            f"{list(frame.columns)[:10]})"
        )
    y = frame[target].to_numpy()
    x = frame.drop(columns=[target]).select_dtypes("number").to_numpy(dtype=np.float32)
    return x, y


def _main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    if spec.get("nice"):
        os.nice(int(spec["nice"]))
    from .._fs import atomic_file
    from ..models import ModelManager

    x, y = load_training_data(spec["data"], spec["target"])
    manager = ModelManager(registry_url=spec["registry_url"], artifact_root=spec["artifact_root"])
    cfg = dict(spec["train_config"])
    cfg["name"] = spec["model_name"]
    t0 = time.perf_counter()
    handle = manager.train_model_sync(x, y, cfg, spec["validation_split"])
    meta = {
        "retrained_from": spec["based_on"],
        "training_data": spec["data"],
        "reference_fingerprint": handle.reference_fingerprint,
    }
    mv = manager.register_model_sync(handle, metadata=meta, aliases=["challenger"])
    result = {
        "model_name": mv.name,
        "version": mv.version,
        "metrics": handle.metrics,
        "rows": int(len(x)),
        "duration_s": round(time.perf_counter() - t0, 3),
    }
    with atomic_file(spec["result"], "w") as fh:
        fh.write(json.dumps(result))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1]))
