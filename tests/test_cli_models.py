"""``ml-utilities models``, in-process (``main([...])``), on a temporary registry holding two
versions of a small random forest ``genre``: v1 the ``champion``, v2 the ``challenger``."""

from __future__ import annotations

import http.server
import json
import socket
import threading

import numpy as np
import pytest

pytest.importorskip("sqlalchemy")
pytest.importorskip("sklearn")

from ml_utilities.cli import main, parse_prometheus  # noqa: E402

CONFIG = {
    "framework": "sklearn",
    "architecture": "random_forest",
    "task": "classification",
    "hyperparameters": {"n_estimators": 10, "n_jobs": 1},
    "name": "genre",
}
CLASSES = np.array(["calm", "energetic", "sad"])


def make_data(n: int, seed: int, n_features: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose first three features carry the class."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, n_features)).astype(np.float32)
    signal = 2.0 * x[:, 0] - 1.5 * x[:, 1] + x[:, 2] ** 2
    return x, CLASSES[np.digitize(signal + 0.3 * rng.standard_normal(n), [-0.5, 1.5])]


@pytest.fixture(scope="module")
def handles():
    """v1 (240 training rows), v2 (720 rows: better, so its validation passes) and a model of
    8 features instead of 12 (incompatible with the champion)."""
    from ml_utilities.models import ModelManager

    manager = ModelManager()  # training does not open the registry
    return {
        "v1": manager.train_model_sync(*make_data(300, 1), {**CONFIG, "seed": 0}),
        "v2": manager.train_model_sync(*make_data(900, 2), {**CONFIG, "seed": 1}),
        "other-shape": manager.train_model_sync(*make_data(300, 3, 8), {**CONFIG, "seed": 2}),
    }


@pytest.fixture
def registry(tmp_path, handles):
    from ml_utilities.models import ModelRegistry

    reg = ModelRegistry(f"sqlite:///{tmp_path / 'registry.db'}", tmp_path / "artifacts")
    reg.register(handles["v1"], aliases=["champion"])
    reg.register(handles["v2"], aliases=["challenger"])
    yield reg
    reg.dispose()


@pytest.fixture
def cli(registry, tmp_path, capsys):
    """``cli(ACTION, *args)`` runs ``ml-utilities models ACTION --registry-url ... args``:
    ``(exit code, stdout, stderr)``."""
    where = ["--registry-url", registry.url, "--artifact-root", str(tmp_path / "artifacts")]

    def run(action: str, *args: str) -> tuple[int, str, str]:
        code = main(["models", action, *where, *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def one_error_line(err: str) -> str:
    """The error line on stderr: one line, no traceback."""
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("ml-utilities: error:")]
    assert len(lines) == 1, err
    return lines[0]


# -- list and show ---------------------------------------------------------------------------


def test_list_shows_the_aliases(cli):
    code, out, _ = cli("list")
    assert code == 0
    header, row = out.strip().splitlines()
    assert header.split() == ["model", "latest", "champion", "challenger", "rollout"]
    assert row.split() == ["genre", "v2", "v1", "v2", "none"]

    code, out, _ = cli("list", "--json")
    assert code == 0
    (model,) = json.loads(out)
    assert model["name"] == "genre" and model["latest"] == 2 and model["versions"] == 2
    assert (model["champion"], model["challenger"]) == (1, 2)
    assert model["rollout"] is None and model["rollout_state"] == "none"


def test_show_lists_versions_then_the_running_rollout(cli, registry):
    code, out, _ = cli("show", "genre")
    assert code == 0
    lines = out.splitlines()
    v1 = next(line for line in lines if line.startswith("v1 "))
    v2 = next(line for line in lines if line.startswith("v2 "))
    for row, alias in ((v1, "champion"), (v2, "challenger")):
        assert "sklearn" in row and "random_forest" in row and "classification" in row
        assert "accuracy 0." in row and alias in row
    assert "rollout: none" in out and "deployments: none" in out

    code, out, err = cli(
        "deploy", "genre", "2", "--skip-performance", "--steps", "10,50,100", "--window-s", "30"
    )
    assert code == 0, err
    assert "validation: passed" in out and "compatible with the champion v1" in out
    assert "performance: skipped" in out
    assert "rollout 1 started (canary): steps 10% 50% 100%, 30 s per step" in out
    row = registry.get_rollout("genre")
    assert row.running and row.steps == (10.0, 50.0, 100.0) and row.window_s == 30.0
    assert (row.champion, row.challenger, row.weight) == (1, 2, 0.1)

    code, out, _ = cli("show", "genre")
    assert code == 0
    assert "rollout 1 (canary, v2 against v1 behind 'champion'): running, step 1/3 at 10%" in out
    assert "steps [10%] 50% 100%, 30 s per step" in out
    assert "start" in out and "canary at 10%" in out  # the event, with its time
    assert "deployments (the last 1):" in out and "deployed" in out

    code, out, _ = cli("show", "genre", "--json")
    assert code == 0
    data = json.loads(out)
    assert [v["version"] for v in data["versions"]] == [1, 2]
    assert data["aliases"] == {"champion": 1, "challenger": 2}
    assert data["rollout"]["status"] == "running" and data["rollout"]["step_percent"] == 10.0
    assert data["rollout"]["events"][0]["event"] == "start"
    assert [d["status"] for d in data["deployments"]] == ["deployed"]

    code, out, _ = cli("show", "genre", "--version", "champion", "--json")
    assert code == 0
    assert [v["version"] for v in json.loads(out)["versions"]] == [1]


# -- deploy ----------------------------------------------------------------------------------


def test_deploy_runs_the_performance_tests(cli, registry):
    # a p99 limit no model meets: refused by the performance test, after validation passed
    code, out, err = cli("deploy", "genre", "2", "--max-p99-ms", "0.0001")
    assert code == 2
    line = one_error_line(err)
    assert "deployment refused" in line and "performance SLA" in line and "p99" in line
    assert "validation: passed" in out  # what was measured before the refusal
    assert registry.get_rollout("genre") is None
    assert [d.status for d in registry.list_deployments("genre")] == ["refused"]

    code, out, err = cli("deploy", "genre", "2", "--max-p99-ms", "10000", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["status"] == "deployed" and data["version"] == 2
    assert data["validation"]["checks"]["signature"]["compatible"] is True
    metric = data["validation"]["checks"]["metric"]
    assert metric["candidate"]["value"] >= metric["champion"]["value"] - 0.01
    batches = data["performance"]["batches"]
    assert set(batches) == {"1", "32"} and 0 < batches["1"]["p99_ms"] < 10000
    assert data["rollout"]["status"] == "running" and data["rollout"]["step_percent"] == 5.0


def test_deploy_refuses_an_incompatible_model(cli, registry, handles):
    assert registry.register(handles["other-shape"]).version == 3
    code, out, err = cli("deploy", "genre", "3", "--skip-performance")
    assert code == 2
    line = one_error_line(err)
    assert "deployment refused" in line and "not compatible with the champion v1" in line
    assert "input shape [8] != champion's [12]" in line
    assert registry.get_rollout("genre") is None
    assert registry.aliases("genre") == {"champion": 1, "challenger": 2}

    code, out, err = cli("deploy", "genre", "3", "--skip-performance", "--json")
    assert code == 2
    data = json.loads(out)
    assert data["status"] == "refused" and "input shape" in data["reason"]
    assert [d.status for d in registry.list_deployments("genre")] == ["refused", "refused"]


def test_deploy_shadow_and_what_it_refuses_before_any_check(cli, registry):
    code, out, err = cli("deploy", "genre", "1")
    assert code == 2 and "already the champion" in one_error_line(err)

    code, out, err = cli(
        "deploy", "genre", "2", "--shadow", "--steps", "5,25", "--skip-performance"
    )
    assert code == 0, err
    assert "predicts every request of genre in shadow" in out
    row = registry.get_rollout("genre")
    assert row.mode == "shadow" and row.weight == 0.0 and row.steps == (5.0, 25.0)

    code, out, err = cli("deploy", "genre", "challenger", "--skip-performance")
    assert code == 2 and "already running" in one_error_line(err)
    assert len(registry.list_deployments("genre")) == 1  # refused before validating anything


# -- promote and rollback --------------------------------------------------------------------


def test_promote_makes_the_challenger_champion(cli, registry):
    assert cli("deploy", "genre", "2", "--skip-performance")[0] == 0
    code, out, err = cli("promote", "genre", "--version", "1")
    assert code == 2 and "rollout of genre is of v2, not v1" in one_error_line(err)

    code, out, err = cli("promote", "genre")
    assert code == 0, err
    assert "rollout 1 promoted at 5%: champion v1 -> v2" in out
    assert registry.aliases("genre")["champion"] == 2
    row = registry.get_rollout("genre")
    assert row.status == "promoted" and row.weight == 1.0
    assert cli("list")[1].splitlines()[1].split()[-1] == "promoted"

    # no rollout runs now: promote points the champion at --version, and needs it
    code, out, err = cli("promote", "genre")
    assert code == 2 and "--version" in one_error_line(err)
    code, out, _ = cli("promote", "genre", "--version", "1", "--json")
    assert code == 0
    assert json.loads(out) == {
        "model": "genre",
        "alias": "champion",
        "from": 2,
        "to": 1,
        "changed": True,
        "rollout": None,
    }
    assert registry.aliases("genre")["champion"] == 1
    code, out, _ = cli("promote", "genre", "--version", "1")
    assert code == 0 and "already the champion" in out


def test_rollback_ends_the_rollout_and_fails_when_none_runs(cli, registry):
    code, _, err = cli("rollback", "genre")
    assert code == 1 and "no rollout of genre is running" in one_error_line(err)

    assert cli("deploy", "genre", "2", "--skip-performance")[0] == 0
    code, out, err = cli("rollback", "genre", "--reason", "p99 too high")
    assert code == 0, err
    assert "rolled back at 5%" in out and "champion v1" in out and "p99 too high" in out
    row = registry.get_rollout("genre")
    assert row.status == "rolled_back" and row.reason == "p99 too high" and row.weight == 0.0
    assert registry.aliases("genre")["champion"] == 1
    assert cli("list")[1].splitlines()[1].split()[-2:] == ["rolled", "back"]
    code, out, _ = cli("show", "genre")
    assert code == 0 and "): rolled back at " in out and "(step 1/4 at 5%): p99 too high" in out

    code, _, err = cli("rollback", "genre")
    assert code == 1
    assert "no rollout of genre is running (rollout 1 is rolled back)" in one_error_line(err)

    assert cli("deploy", "genre", "2", "--skip-performance")[0] == 0
    code, out, _ = cli("rollback", "genre", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["id"] == 2 and data["status"] == "rolled_back"


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("show", "nope"), "'nope'"),
        (("show", "genre", "--version", "9"), "no version 9"),
        (("show", "genre", "--version", "staging"), "no alias 'staging'"),
        (("deploy", "genre", "9"), "no version 9"),
        (("promote", "nope", "--version", "1"), "'nope'"),
        (("rollback", "nope"), "'nope'"),
        (("monitor", "nope"), "'nope'"),
    ],
)
def test_an_unknown_model_or_version_is_one_line(cli, args, named):
    code, out, err = cli(*args)
    assert code == 1
    assert named in one_error_line(err)
    assert out == "" or out.startswith("deploying")


# -- monitor ---------------------------------------------------------------------------------


def test_monitor_without_url_prints_the_registry_row(cli):
    code, out, _ = cli("monitor", "genre")
    assert code == 0 and out.strip() == "genre: no rollout"

    assert cli("deploy", "genre", "2", "--skip-performance", "--steps", "10,50,100")[0] == 0
    code, out, _ = cli("monitor", "genre")
    assert code == 0
    assert "running, step 1/3 at 10%" in out and "weights v2 0.1, v1 0.9" in out

    code, out, _ = cli("monitor", "genre", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["source"] == "registry" and data["rollout"]["step_percent"] == 10.0

    code, out, _ = cli("monitor", "genre", "--watch", "0.01", "--count", "2", "--json")
    assert code == 0
    assert [json.loads(line)["rollout"]["id"] for line in out.splitlines()] == [1, 1]
    code, _, err = cli("monitor", "genre", "--count", "2")
    assert code == 2 and "--count needs --watch" in one_error_line(err)


class _Canned(http.server.BaseHTTPRequestHandler):
    answers: dict[str, tuple[int, str, bytes]] = {}

    def do_GET(self) -> None:  # noqa: N802 - the http.server hook
        status, kind, body = self.answers.get(self.path, (404, "application/json", b"{}"))
        self.send_response(status)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def canned_server():
    """A server on a loopback port answering ``_Canned.answers[path]``; yields its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Canned)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)
    _Canned.answers = {}


def _server_answers(registry) -> dict[str, tuple[int, str, bytes]]:
    """What ``ml-utilities serve`` answers at ``/v1/rollouts/genre`` (the registry's row with the
    serving process's step stats, made by the same RolloutRouter) and ``/metrics`` (the same
    gauges, in a registry of their own) with v2 at 25% of the traffic."""
    prometheus_client = pytest.importorskip("prometheus_client")
    from ml_utilities._metrics import Metrics
    from ml_utilities.serving.rollout import Decision, RolloutRouter

    row = registry.start_rollout("genre", 2, steps=(25, 50, 100), window_s=120)
    router = RolloutRouter(lambda: registry)
    for _ in range(30):
        router.record(row, 1, 0.004, False, "classification")
    for _ in range(10):
        router.record(row, 2, 0.006, False, "classification")
    router.record(row, 2, 0.5, True)
    router.log_answer(Decision(row, 1, "champion", "r1"), 1, np.array(["calm"]))
    router.record_outcome("r1", "calm")
    rollout = {**row.to_dict(), "stats": router.step_stats(row)}

    exposition = prometheus_client.CollectorRegistry()
    gauges = Metrics(exposition)
    gauges.rollout_weight.labels("genre", "2").set(0.25)
    gauges.rollout_weight.labels("genre", "1").set(0.75)
    gauges.rollout_weight.labels("other", "1").set(1.0)
    gauges.rollout_step.labels("genre").set(25.0)
    gauges.drift_score.labels("genre").set(0.42)
    gauges.drift_alarm.labels("genre").set(1.0)
    gauges.drift_score.labels("other").set(0.01)
    text = prometheus_client.generate_latest(exposition)
    return {
        "/v1/rollouts/genre": (200, "application/json", json.dumps(rollout).encode()),
        "/metrics": (200, "text/plain; version=0.0.4", text),
    }


def test_monitor_url_reads_the_rollout_and_the_metrics(cli, registry, canned_server):
    _Canned.answers = _server_answers(registry)
    code, out, err = cli("monitor", "genre", "--url", canned_server + "/")
    assert code == 0, err
    assert "rollout 1 (canary, v2 against v1): running, step 1/3 at 25%" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith("  v")}
    assert rows["v1"][:6] == ["v1", "champion", "0.75", "30", "0", "4.00"]
    assert rows["v2"][:6] == ["v2", "challenger", "0.25", "11", "1", "6.00"]
    assert "accuracy 1 (1 outcomes)" in out
    assert "drift: score 0.420, alarm on" in out

    code, out, _ = cli("monitor", "genre", "--url", canned_server, "--json")
    assert code == 0
    data = json.loads(out)
    assert data["weights"] == {"1": 0.75, "2": 0.25} and data["step_percent"] == 25.0
    assert data["drift"] == {"score": 0.42, "alarm": True}
    assert data["rollout"]["stats"]["challenger"]["errors"] == 1

    code, out, _ = cli(
        "monitor", "genre", "--url", canned_server, "--watch", "0.01", "--count", "2"
    )
    assert code == 0 and out.count("genre at http://127.0.0.1:") == 2

    # a model the server has no rollout for, and no drift monitor
    code, out, _ = cli("monitor", "other", "--url", canned_server)
    assert code == 0
    assert "rollout: none on this server" in out and "drift: score 0.010, alarm unknown" in out


def test_monitor_url_without_a_server_is_one_line(cli):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    code, _, err = cli("monitor", "genre", "--url", url, "--timeout", "2")
    assert code == 1 and "cannot reach the server" in one_error_line(err)
    code, _, err = cli("monitor", "genre", "--url", "ftp://example.org")
    assert code == 2 and "http://" in one_error_line(err)


def test_parse_prometheus():
    text = (
        "# HELP x A gauge\n# TYPE x gauge\n"
        'x{model="a\\"b}",version="2"} 0.5\n'
        "y 3 1700000000000\n"
        'z{model="c"} NaN\n'
        "not a sample\n"
    )
    samples = parse_prometheus(text)
    assert samples[:2] == [("x", {"model": 'a"b}', "version": "2"}, 0.5), ("y", {}, 3.0)]
    assert samples[2][0] == "z" and np.isnan(samples[2][2]) and len(samples) == 3
