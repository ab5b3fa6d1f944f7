"""The supportbot Grafana dashboard, as code (Grafana's grafana-foundation-sdk builders).

Run: python deploy/monitoring/dashboard.py   (writes grafana/dashboards/supportbot.json beside it)
The test suite rebuilds it and fails when the committed JSON differs, and evaluates every panel's
query on a real Prometheus scraping a running stack (tests/stack/test_monitoring.py)."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row
from grafana_foundation_sdk.builders.prometheus import Dataquery as PrometheusQuery
from grafana_foundation_sdk.builders.stat import Panel as Stat
from grafana_foundation_sdk.builders.timeseries import Panel as Timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder

OUTPUT = Path(__file__).resolve().parent / "grafana" / "dashboards" / "supportbot.json"
RATE = "$__rate_interval"


@dataclass(frozen=True)
class PanelSpec:
    row: str
    title: str
    expr: str
    unit: str
    legend: str = ""
    stat: bool = False


PANELS = [
    PanelSpec("Customers", "Deflection (closed without a person, 1h)", "supportbot:deflection:ratio_rate1h", "percentunit", stat=True),
    PanelSpec("Customers", "Turns by outcome", f"sum by (outcome) (rate(supportbot_chat_turns_total[{RATE}]))", "reqps", "{{outcome}}"),
    PanelSpec("Customers", "Unanswered (ungrounded or unavailable) share",
              f'(sum(rate(supportbot_chat_turns_total{{outcome=~"ungrounded|unavailable"}}[{RATE}])) or vector(0)) '
              f"/ sum(rate(supportbot_chat_turns_total[{RATE}]))", "percentunit"),
    PanelSpec("Customers", "Time to first token p50 / p95",
              f"histogram_quantile(0.95, sum by (le) (rate(supportbot_chat_time_to_first_token_seconds_bucket[{RATE}])))", "s", "p95"),
    PanelSpec("Customers", "Whole turn p95",
              f"histogram_quantile(0.95, sum by (le) (rate(supportbot_chat_turn_duration_seconds_bucket[{RATE}])))", "s", "p95"),
    PanelSpec("Customers", "Ratings", f"sum by (rating) (rate(supportbot_feedback_total[{RATE}]))", "reqps", "{{rating}}"),
    PanelSpec("Help center", "Retrieval top score p50",
              f"histogram_quantile(0.5, sum by (le) (rate(supportbot_retrieval_top_score_bucket[{RATE}])))", "none", "p50"),
    PanelSpec("Help center", "Answer paths", f"sum by (answer_path) (rate(supportbot_chat_turns_total[{RATE}]))", "reqps",
              "{{answer_path}}"),
    PanelSpec("Help center", "Answer cache hit ratio (first questions)",
              f'(sum(rate(supportbot_answer_cache_lookups_total{{result="hit"}}[{RATE}])) or vector(0)) '
              f"/ sum(rate(supportbot_answer_cache_lookups_total[{RATE}]))", "percentunit"),
    PanelSpec("Agents", "Agent queue", "sum(supportbot_agent_queue_sessions)", "none", "waiting", stat=True),
    PanelSpec("Agents", "Longest wait in the queue", "max(supportbot_agent_queue_oldest_wait_seconds)", "s", stat=True),
    PanelSpec("Agents", "Handoffs by reason", f"sum by (reason) (rate(supportbot_handoffs_total[{RATE}]))", "reqps", "{{reason}}"),
    PanelSpec("Agents", "Drafts shown", f"sum by (answer_path) (rate(supportbot_suggested_replies_shown_total[{RATE}]))", "reqps",
              "{{answer_path}}"),
    PanelSpec("Services", "gRPC error ratio", "supportbot:grpc_errors:ratio_rate5m", "percentunit"),
    PanelSpec("Services", "Generator tokens/s", f"sum(rate(supportbot_generator_generated_tokens_total[{RATE}]))", "none"),
    PanelSpec("Services", "Generations by finish reason", f"sum by (reason) (rate(supportbot_generator_finished_total[{RATE}]))",
              "reqps", "{{reason}}"),
    PanelSpec("Services", "Repetition stops", f"sum(rate(supportbot_generator_repetition_stops_total[{RATE}]))", "reqps"),
]


def build() -> Dashboard:
    dashboard = (
        Dashboard("supportbot: contact center")
        .uid("supportbot-contact-center")
        .tags(["supportbot", "generated"])
        .refresh("30s")
        .time("now-6h", "now")
    )
    row = ""
    for spec in PANELS:
        if spec.row != row:
            row = spec.row
            dashboard = dashboard.with_row(Row(row))
        query = PrometheusQuery().expr(spec.expr)
        if spec.legend:
            query = query.legend_format(spec.legend)
        panel = (Stat() if spec.stat else Timeseries()).title(spec.title).unit(spec.unit).with_target(query)
        dashboard = dashboard.with_panel(panel)
    return dashboard


def render() -> str:
    return json.dumps(json.loads(JSONEncoder(sort_keys=True, indent=2).encode(build().build())), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(render())
    print(OUTPUT, file=sys.stderr)
