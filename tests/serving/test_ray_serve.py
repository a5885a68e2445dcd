"""PredictionService replicas on a local Ray Serve instance: two replicas behind Ray's HTTP
proxy answer the predict route with the model's own predictions, spread across both, and a
DeploymentHandle calls predict_batch. Skipped where ray.serve cannot be imported."""

from __future__ import annotations

import asyncio
import socket

import httpx
import numpy as np
import pytest
from serving_support import make_data

from ml_utilities.exceptions import ParameterError

ray = pytest.importorskip("ray", reason="ray is not installed (the 'ray' extra)")
serve = pytest.importorskip(
    "ray.serve", reason="ray.serve cannot be imported (install ray[serve], the 'ray' extra)"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    port = _free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    yield port
    serve.shutdown()
    ray.shutdown()


def test_two_replicas_behind_rays_proxy(local_ray, serving_registry) -> None:
    from ml_utilities.serving.ray_serve import prediction_app

    registry, handles = serving_registry
    app = prediction_app(
        registry.url,
        str(registry.store.url),
        config={"gpu_enabled": False, "prediction_cache_ttl": 0, "max_queue_delay_us": 2000},
        num_replicas=2,
        ray_actor_options={"num_cpus": 0.5},
    )
    handle = serve.run(app, name="mlu-predictions", route_prefix="/")
    x, _ = make_data(96, seed=60, task="regression")

    out = handle.predict_batch.remote("xgb-clf", x[:8].tolist()).result(timeout_s=120)
    assert out["predictions"] == handles["xgb-clf"].predict(x[:8]).tolist()

    async def main() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=32)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{local_ray}", limits=limits, timeout=60
        ) as client:
            return list(
                await asyncio.gather(
                    *(
                        client.post("/v1/models/xgb-clf:predict", json={"features": [row.tolist()]})
                        for row in x
                    )
                )
            )

    answers = asyncio.run(main())
    assert all(r.status_code == 200 for r in answers), [r.text for r in answers[:3]]
    got = np.array([r.json()["probabilities"][0] for r in answers])
    np.testing.assert_allclose(got, handles["xgb-clf"].predict_proba(x), atol=1e-6)
    assert len({r.headers["x-mlu-replica"] for r in answers}) == 2  # both replicas served

    with httpx.Client(base_url=f"http://127.0.0.1:{local_ray}", timeout=60) as client:
        r = client.post("/v1/models/unknown:predict", json={"features": [[0.0] * 12]})
        assert r.status_code == 404 and r.json()["error"] == "ModelNotFoundError"
        r = client.post("/v1/models/xgb-clf:predict", json={"features": [[0.0] * 5]})
        assert r.status_code == 422 and "expects 12 features" in r.json()["detail"]
        assert client.get("/health").json() == {"status": "ok"}
    serve.delete("mlu-predictions")


def test_bad_configuration_is_refused_before_any_replica_starts() -> None:
    from ml_utilities.serving.ray_serve import prediction_app, prediction_deployment

    with pytest.raises(ParameterError, match="batch_size=0"):
        prediction_app(config={"batch_size": 0})
    with pytest.raises(ParameterError, match="num_replicas=0"):
        prediction_deployment(num_replicas=0)
