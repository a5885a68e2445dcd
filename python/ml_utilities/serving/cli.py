"""``ml-utilities serve``: the prediction service over HTTP.

The HTTP/1.1 front end of :mod:`ml_utilities.serving.frontend` answers every route (those of
:mod:`ml_utilities.serving.routes`). To serve under uvicorn or another ASGI server instead, give
it the ASGI app: ``uvicorn --factory ml_utilities.serving.cli:build_app_from_env`` (with the
``MLU_SERVE_*`` variables of :func:`build_app_from_env`), or ``create_app(service)``.

Hook it into the main parser with ``add_serve_command(subparsers)``.
"""

from __future__ import annotations

import argparse
import json
import logging
from typing import Any

__all__ = ["add_serve_command", "run_serve"]


def add_serve_command(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``serve`` sub-command to an ``argparse`` sub-parsers object."""
    p = subparsers.add_parser(
        "serve",
        help="serve registered models over HTTP (/v1/models/{name}:predict, /metrics)",
        description="Start the PredictionService over HTTP, served by this package's HTTP/1.1 "
        "front end (httptools on uvloop).",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes (each loads its own models; share results with --redis-url)",
    )
    p.add_argument("--registry-url", default=None, help="SQLAlchemy URL of the model registry")
    p.add_argument("--artifact-root", default=None, help="folder or fsspec URL of the artifacts")
    p.add_argument("--redis-url", default=None, help="keep cached results in Redis at this URL")
    p.add_argument(
        "--config",
        default=None,
        help="PredictionService configuration as JSON, e.g. '{\"batch_size\": 64}'",
    )
    p.add_argument("--no-batching", action="store_true", help="turn dynamic batching off")
    p.add_argument(
        "--monitor",
        action="append",
        default=[],
        metavar="NAME",
        help="watch this model's live rows for drift against its champion's reference sample "
        "(ml_model_drift_score, ml_model_drift_alarm; repeat for several models)",
    )
    p.add_argument(
        "--recommender",
        action="append",
        default=[],
        metavar="NAME",
        help="serve this registered recommender at /v1/recommenders/NAME:recommend, its "
        "generators built and its answers cached before the first request (repeat for several)",
    )
    p.add_argument(
        "--recommender-cache-ttl",
        type=float,
        default=None,
        metavar="SECONDS",
        help="seconds a recommender's answer stays cached (default 3600; 0: no cache, and no "
        "answers computed ahead)",
    )
    p.add_argument("--log-level", default="warning", help="log level (default warning)")
    p.add_argument(
        "--max-body-size",
        type=int,
        default=16 * 1024 * 1024,
        help="largest request body in bytes, answered 413 beyond (default 16 MiB)",
    )
    p.add_argument(
        "--keep-alive-timeout",
        type=float,
        default=5.0,
        help="seconds an idle keep-alive connection stays open (default 5)",
    )
    p.add_argument(
        "--header-timeout",
        type=float,
        default=None,
        help="seconds a request's line and headers may take to arrive, else 408 and closed "
        "(default ML_UTILITIES_HTTP_HEADER_TIMEOUT or 10)",
    )
    p.add_argument(
        "--body-timeout",
        type=float,
        default=None,
        help="seconds a request's body may take to arrive after its headers, else 408 and "
        "closed (default ML_UTILITIES_HTTP_BODY_TIMEOUT or 30)",
    )
    p.add_argument(
        "--max-connections",
        type=int,
        default=None,
        help="connections served at once per worker; one more is answered 503 and closed "
        "(default ML_UTILITIES_HTTP_MAX_CONNECTIONS or 1000)",
    )
    p.set_defaults(run=run_serve)
    return p


def _service_config(args: argparse.Namespace) -> dict[str, Any]:
    from ..exceptions import ParameterError

    config: dict[str, Any] = {}
    if args.config:
        try:
            config = json.loads(args.config)
        except ValueError as err:
            raise ParameterError(f"--config is not valid JSON ({err})") from None
        if not isinstance(config, dict):
            raise ParameterError("--config must be a JSON object")
    if args.redis_url:
        config["redis_url"] = args.redis_url
    if args.no_batching:
        config["dynamic_batching"] = False
    monitor = getattr(args, "monitor", None)
    if monitor:
        config["monitor"] = list(monitor)
    recommenders = getattr(args, "recommender", None)
    if recommenders:
        config["recommenders"] = list(recommenders)
    ttl = getattr(args, "recommender_cache_ttl", None)
    if ttl is not None:
        config["recommender_cache_ttl"] = ttl
    return config


def build_app_from_env() -> Any:
    """The app (:func:`~ml_utilities.serving.app.create_app`'s), built from the variables
    :func:`run_serve` sets (:func:`ml_utilities.config.read_serve_handoff`: the service's
    configuration as JSON, the registry's URL and the artifact root). The factory of each
    worker process of the front end (each builds its own service); an ASGI server can take it
    too (``uvicorn --factory ml_utilities.serving.cli:build_app_from_env``)."""
    import gc

    from ..config import read_serve_handoff
    from ..models import ModelManager
    from .app import create_app
    from .service import PredictionService

    config, registry_url, artifact_root = read_serve_handoff()
    try:  # small serving batches run fastest on one intra-op thread per worker process
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is optional
        pass
    monitored = config.pop("monitor", [])
    recommenders = config.pop("recommenders", [])
    rec_ttl = config.pop("recommender_cache_ttl", None)
    manager = ModelManager(registry_url=registry_url, artifact_root=artifact_root)
    service = PredictionService(manager, config=config, freeze_gc=True)
    if rec_ttl is not None:
        from .recommend import RecommenderService

        service.recommenders = RecommenderService(
            service.registry, cache_ttl_s=float(rec_ttl), freeze_gc=True
        )
    for name in monitored:
        try:
            service.monitor_sync(name)
        except Exception as err:  # noqa: BLE001 - the server still serves; the log says why
            logging.getLogger(__name__).warning("cannot monitor %s: %s", name, err)
    for name in recommenders:
        try:
            service.recommenders.serve(name, wait_warm=True)
        except Exception as err:  # noqa: BLE001 - the server still serves; the log says why
            logging.getLogger(__name__).warning("cannot serve recommender %s: %s", name, err)
    app = create_app(service)
    # Everything imported so far (torch, xgboost, ...: hundreds of thousands of objects)
    # lives as long as the process: keep it out of the collector's full passes, whose pauses
    # would otherwise land in the latency tail. Each model load does the same for what it
    # imports (``freeze_gc=True``).
    gc.collect()
    gc.freeze()
    return app


def startup_lines(args: argparse.Namespace) -> list[str]:
    """What ``serve`` prints as it starts: where it listens, the routes, and the models the
    registry holds (each is loaded on its first request)."""
    from ..models import ModelManager

    base = f"http://{args.host}:{args.port}"
    workers = f"{args.workers} worker{'s' if args.workers != 1 else ''}"
    lines = [
        f"ml-utilities serve: {base} ({workers})",
        f"  predict: POST {base}/v1/models/{{name}}:predict; outcomes: POST "
        f"{base}/v1/models/{{name}}:outcome; rollouts: {base}/v1/rollouts/{{name}}",
        f"  metrics: {base}/metrics; health: {base}/health, {base}/ready; models: {base}/v1/models",
    ]
    try:
        registry = ModelManager(
            registry_url=args.registry_url, artifact_root=args.artifact_root
        ).registry
        try:
            found = []
            for name in registry.list_models():
                champion = registry.aliases(name).get("champion")
                found.append(
                    f"{name} (champion v{champion})"
                    if champion is not None
                    else f"{name} (v{registry.get_version(name).version})"
                )
        finally:
            registry.dispose()
    except Exception as err:  # noqa: BLE001 - the server reports it again on a request
        lines.append(f"  registry: cannot list its models ({type(err).__name__}: {err})")
        return lines
    where = args.registry_url or "the default registry under ML_UTILITIES_HOME"
    shown = ", ".join(found) if found else "none registered yet"
    lines.append(f"  registry: {where}; models (loaded on first request): {shown}")
    return lines


def run_serve(args: argparse.Namespace) -> int:
    """Run the server until interrupted; returns the exit status."""
    import logging
    import os

    from ..config import serve_handoff
    from ..exceptions import ParameterError
    from . import frontend
    from .config import ServiceConfig

    config = _service_config(args)
    # fail before starting workers on a bad configuration
    ServiceConfig().updated(
        {
            k: v
            for k, v in config.items()
            if k not in ("monitor", "recommenders", "recommender_cache_ttl")
        }
    )
    if args.workers < 1:
        raise ParameterError(f"--workers={args.workers}: expected an integer >= 1")
    # for build_app_from_env, here and in the worker processes (which inherit the environment)
    os.environ.update(serve_handoff(config, args.registry_url, args.artifact_root))
    print("\n".join(startup_lines(args)), flush=True)
    logging.basicConfig(level=args.log_level.upper())
    return frontend.run(
        build_app_from_env,
        factory_path="ml_utilities.serving.cli:build_app_from_env",
        host=args.host,
        port=args.port,
        workers=args.workers,
        max_body_size=args.max_body_size,
        keep_alive_timeout=args.keep_alive_timeout,
        header_timeout=args.header_timeout,
        body_timeout=args.body_timeout,
        max_connections=args.max_connections,
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m ml_utilities.serving.cli serve ...`` (the same as ``ml-utilities serve``)."""
    parser = argparse.ArgumentParser(prog="ml-utilities")
    sub = parser.add_subparsers(dest="command", required=True)
    add_serve_command(sub)
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
