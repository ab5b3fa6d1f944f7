"""Monitoring as code (deploy/monitoring): the alert rules pass promtool's checks and unit tests,
the Grafana dashboard is rebuilt from code and parses as Grafana's model, compose loads both in
its `monitoring` profile, and a real Prometheus (Debian's 2.42) scraping the running stack
returns data for every recording rule and every dashboard query."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from supportbot.v1 import chat_pb2
from tests.conftest import client_as
from tests.paths import REPO

MONITORING = REPO / "deploy" / "monitoring"
sys.path.insert(0, str(MONITORING))

import dashboard  # noqa: E402  (deploy/monitoring/dashboard.py)
import kubernetes as operator_objects  # noqa: E402  (deploy/monitoring/kubernetes.py)


def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is missing: `make install` installs Debian's prometheus"
    return found


def test_rules_pass_promtool_checks_and_unit_tests() -> None:
    checked = subprocess.run([promtool(), "check", "rules", "rules.yml"], cwd=MONITORING, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run([promtool(), "test", "rules", "rules_test.yml"], cwd=MONITORING, capture_output=True, text=True)
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout, tested.stdout + tested.stderr


def test_the_dashboard_json_is_built_from_code_and_parses_as_grafana_s_model() -> None:
    from grafana_foundation_sdk.models.dashboard import Dashboard

    committed = (MONITORING / "grafana" / "dashboards" / "supportbot.json").read_text()
    assert committed == dashboard.render(), "rebuild it: python deploy/monitoring/dashboard.py"
    from grafana_foundation_sdk.models.dashboard import RowPanel

    model = Dashboard.from_json(json.loads(committed))
    assert len([p for p in model.panels if not isinstance(p, RowPanel)]) == len(dashboard.PANELS)
    queries = [p["targets"][0]["expr"] for p in json.loads(committed)["panels"] if p["type"] != "row"]
    assert queries == [spec.expr for spec in dashboard.PANELS]


def test_compose_runs_prometheus_and_grafana_in_the_monitoring_profile() -> None:
    from tests.project.test_deploy import compose_config

    services = compose_config("monitoring")["services"]
    mounts = {volume["target"]: volume for name in ("prometheus", "grafana") for volume in services[name]["volumes"]}
    for target in ("/etc/prometheus/prometheus.yml", "/etc/prometheus/rules.yml", "/etc/grafana/provisioning",
                   "/var/lib/grafana/dashboards"):
        assert Path(mounts[target]["source"]).exists(), target
    assert "prometheus" not in compose_config()["services"]  # only with the profile


def prometheus_query(base: str, expr: str) -> list[dict]:
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.loads(response.read())
    assert body["status"] == "success", body
    return body["data"]["result"]



def test_the_prometheus_operator_component_carries_the_same_rules_and_scrapes_every_service(tmp_path: Path) -> None:
    """deploy/kubernetes/monitoring added to the production overlay, as its comment says."""
    import os

    import yaml

    from supportbot.core.auth import create_local_keys

    assert (operator_objects.OUTPUT.read_text() == operator_objects.render()), \
        "deploy/kubernetes/monitoring/prometheus-rule.yaml is stale: run python deploy/monitoring/kubernetes.py"
    tree = tmp_path / "kubernetes"
    shutil.copytree(REPO / "deploy" / "kubernetes", tree, ignore=shutil.ignore_patterns("api-keys.json", "qdrant-api-key", "redis-password"))
    create_local_keys(tree / "secrets" / "api-keys.json")
    for name in ("qdrant-api-key", "redis-password"):
        (tree / "secrets" / name).write_text(os.urandom(8).hex())
    overlay = tree / "overlays" / "production"
    kustomization = yaml.safe_load((overlay / "kustomization.yaml").read_text())
    kustomization["components"].append("../../monitoring")
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    result = subprocess.run([shutil.which("kubectl") or "kubectl", "kustomize", str(overlay)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    documents = [d for d in yaml.safe_load_all(result.stdout) if d]
    [monitor] = [d for d in documents if d["kind"] == "ServiceMonitor"]
    [rule] = [d for d in documents if d["kind"] == "PrometheusRule"]
    assert rule["metadata"]["namespace"] == monitor["metadata"]["namespace"] == "supportbot"
    assert rule["spec"]["groups"] == yaml.safe_load((MONITORING / "rules.yml").read_text())["groups"]
    selector = monitor["spec"]["selector"]["matchLabels"]
    scraped = {
        d["metadata"]["name"] for d in documents if d["kind"] == "Service"
        and selector.items() <= d["metadata"].get("labels", {}).items()
        and any(p.get("name") == "metrics" for p in d["spec"]["ports"])
    }
    assert {"gateway", "retriever", "generator"} <= scraped


@pytest.fixture()
def prometheus(stack, tmp_path):  # type: ignore[no-untyped-def]
    """A real Prometheus scraping the stack every second, with the rules evaluated every second."""
    import yaml

    from supportbot_cli.stack import free_port

    binary = shutil.which("prometheus")
    assert binary, "prometheus is missing: `make install` installs Debian's prometheus"
    rules = yaml.safe_load((MONITORING / "rules.yml").read_text())
    for group in rules["groups"]:
        group["interval"] = "1s"
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules))
    p = stack.ports
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(tmp_path / "rules.yml")],
        "scrape_configs": [
            {"job_name": f"supportbot-{name}", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
            for name, port in (("gateway", p.gateway_metrics), ("retriever", p.retriever_metrics), ("generator", p.generator_metrics))
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    process = subprocess.Popen(
        [binary, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=(tmp_path / "prometheus.log").open("wb"),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"{base}/-/ready", timeout=2):
                    break
            except OSError:
                time.sleep(0.2)
        time.sleep(3)  # a few scrapes before the traffic, so its increase shows in rate()
        yield base
    finally:
        process.terminate()
        process.wait(30)


@pytest.mark.stack
async def test_every_rule_and_panel_query_returns_data_from_a_real_scrape(stack, sample_ingested, prometheus) -> None:  # type: ignore[no-untyped-def]
    async def traffic() -> None:
        """What moves every metric: answered and handed-off turns, a rating, drafts, closes, the
        answer cache."""
        async with client_as(stack, "customer") as customer, client_as(stack, "agent") as agent:
            session_id, result, _ = await customer.ask("How do I reset my password?")
            await customer.chat_stub.SubmitFeedback(chat_pb2.SubmitFeedbackRequest(
                session_id=session_id, turn_id=result.turn_id, rating=-1), metadata=customer.metadata)
            await agent.chat_stub.SuggestReplies(chat_pb2.SuggestRepliesRequest(session_id=session_id, count=1), metadata=agent.metadata)
            await agent.chat_stub.TakeOverSession(chat_pb2.TakeOverSessionRequest(session_id=session_id), metadata=agent.metadata)
            deflected, _, _ = await customer.ask("How long does standard shipping take?", answer_mode=chat_pb2.ANSWER_MODE_EXTRACTIVE)
            # A model-backed first question: looked up in the answer cache (a hit the second time).
            await customer.ask("Where can I download an invoice for my order?", answer_mode=chat_pb2.ANSWER_MODE_VERIFIED)
            for closed in (session_id, deflected):
                await customer.chat_stub.CloseSession(chat_pb2.CloseSessionRequest(session_id=closed), metadata=customer.metadata)

    # Twice: a series born with its first count has no increase to show until it counts again.
    await traffic()
    time.sleep(3)
    await traffic()
    import yaml

    recorded = [rule["record"] for group in yaml.safe_load((MONITORING / "rules.yml").read_text())["groups"]
                for rule in group["rules"] if "record" in rule]
    queries = {**{name: name for name in recorded},
               **{spec.title: spec.expr.replace(dashboard.RATE, "5m") for spec in dashboard.PANELS}}
    missing: dict[str, str] = {}
    deadline = time.monotonic() + 60
    turns_rate = "sum(rate(supportbot_chat_turns_total[5m]))"
    while True:
        missing = {title: expr for title, expr in queries.items() if not prometheus_query(prometheus, expr)}
        moving = any(float(r["value"][1]) > 0 for r in prometheus_query(prometheus, turns_rate))
        if (not missing and moving) or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert not missing, f"no data for: {sorted(missing)}"
    assert moving, "the turns of the replay do not show in rate()"
    for title, expr in queries.items():
        print(f"{title}: {[r['value'][1] for r in prometheus_query(prometheus, expr)][:4]}")
