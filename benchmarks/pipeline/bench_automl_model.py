"""The DataPipeline on the GTZAN feature table with its default model and with an AutoMLHelper
search as the model, in the same run: fold and test accuracy, and wall time of the whole run.

Run:   python benchmarks/pipeline/bench_automl_model.py --budget 120
(needs ``../shared/data/gtzan-features-5genre``; the budget is the whole run's, shared by the
searches of every fold and the final fit).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from ml_utilities.pipeline import DataPipeline

TABLE = (
    Path(__file__).resolve().parents[3]
    / "shared"
    / "data"
    / "gtzan-features-5genre"
    / "features_3_sec.csv"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=120.0, help="AutoML seconds, whole run")
    parser.add_argument("--folds", type=int, default=3)
    args = parser.parse_args()
    if not TABLE.is_file():
        raise SystemExit(f"{TABLE} is missing (the shared data folder)")
    root = Path(tempfile.mkdtemp(prefix="mlu-bench-pipeline-"))
    pipeline = DataPipeline(registry_url=f"sqlite:///{root / 'r.db'}", artifact_root=root)
    automl = {"framework": "automl", "time_budget_seconds": args.budget}
    for label, model in (("default linear", None), ("AutoMLHelper", automl)):
        cfg = {
            "data_sources": [{"type": "file", "path": str(TABLE)}],
            "preprocessing": {"scaling": "robust_scaler"},
            "validation": {"cv_folds": args.folds, "test_size": 0.2},
            "progress": False,
        }
        if model is not None:
            cfg["model"] = model
        t = time.monotonic()
        res = pipeline.run_complete_pipeline_sync("label", cfg)
        wall = time.monotonic() - t
        best = res["model"].training.get("automl_report", {}).get("best_model", "-")
        print(
            f"{label:15s} fold accuracy {res['cv_metrics']['mean']['accuracy']:.4f}  "
            f"test accuracy {res['test_metrics']['accuracy']:.4f}  wall {wall:6.1f} s  "
            f"final model {best}",
            flush=True,
        )


if __name__ == "__main__":
    main()
