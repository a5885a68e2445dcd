"""Adapters of packages above ``models`` are found through registration and entry points."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from ml_utilities.models.adapters import (
    ENTRY_POINT_GROUP,
    adapter_class,
    canonical_framework,
    known_frameworks,
    register_adapter,
)
from ml_utilities.models.adapters.base import Adapter
from ml_utilities.models.errors import ParameterError


def test_automl_is_declared_as_an_entry_point():
    from importlib.metadata import entry_points

    declared = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    assert declared.get("automl") == "ml_utilities.automl.model:AutoMLAdapter"
    assert "automl" in known_frameworks()
    assert canonical_framework(" AutoML ") == "automl"


def test_models_does_not_import_automl_and_finds_its_adapter_on_demand():
    code = textwrap.dedent(
        """
        import sys
        import ml_utilities.models, ml_utilities.models.manager, ml_utilities.models.registry
        assert not any(m.startswith("ml_utilities.automl") for m in sys.modules), "imported"
        from ml_utilities.models.adapters import adapter_class
        cls = adapter_class("automl")
        assert cls.__module__ == "ml_utilities.automl.model", cls
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_register_adapter_checks_its_arguments():
    class Fake(Adapter):  # an adapter of another package
        framework = "fake-plugin"

    with pytest.raises(ParameterError, match="not an Adapter subclass"):
        register_adapter("fake-plugin", object)  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="built in"):
        register_adapter("sklearn", Fake)
    with pytest.raises(ParameterError, match="non-empty"):
        register_adapter(" ", Fake)
    with pytest.raises(ParameterError, match="not supported; choose one of"):
        adapter_class("fake-plugin")
    register_adapter("Fake-Plugin", Fake)
    assert adapter_class("fake-plugin") is Fake


@pytest.mark.slow
def test_a_registered_automl_model_loads_in_a_process_that_never_imported_automl(tmp_path):
    pytest.importorskip("optuna")
    from ml_utilities.automl import AutoMLHelper

    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 4))
    y = (x[:, 0] + 0.3 * rng.normal(size=120) > 0).astype(int)
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    helper = AutoMLHelper(registry_url=url, artifact_root=str(tmp_path / "artifacts"))
    config = {
        "time_budget_seconds": 20,
        "model_search_space": {"algorithms": ["linear"]},
        "ensemble_methods": [],
        "cv_folds": 2,
        "name": "plugin-check",
    }
    model = helper.train_automl_pipeline_sync(x, y, config)
    expected = model.predict(x[:5])
    code = textwrap.dedent(
        f"""
        import sys, numpy as np
        from ml_utilities.models import ModelManager
        manager = ModelManager(registry_url={url!r}, artifact_root={str(tmp_path / "artifacts")!r})
        handle = manager.load_model_sync({model.name!r})
        assert handle.framework == "automl", handle.framework
        np.save(sys.argv[1], handle.predict(np.asarray({x[:5].tolist()!r})))
        """
    )
    out = tmp_path / "pred.npy"
    subprocess.run([sys.executable, "-c", code, str(out)], check=True, timeout=300)
    np.testing.assert_allclose(np.load(out), expected, rtol=1e-6)
