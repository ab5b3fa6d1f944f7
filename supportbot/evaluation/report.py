"""The report folder of one evaluation run: results.json, report.md, report.html and plots."""

from __future__ import annotations

import html
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from supportbot.evaluation.scoring import (
    BASE_MODEL,
    CURVE_KS,
    LATENCY_STAGES,
    RETRIEVAL_METRICS,
    Evaluation,
)

RESULTS_FILE = "results.json"

# The judge-free scores every turn can have, shown per answer path and per adapter.
GROUP_METRICS = ("key_fact_recall", "faithfulness_embedding", "answer_relevancy_embedding", "answer_token_f1", "abstention_accuracy")


def results_document(evaluation: Evaluation, run: dict[str, Any], baseline: dict[str, Any] | None) -> dict[str, Any]:
    document = {
        "run": run,
        "passed": evaluation.passed,
        "failures": evaluation.failures,
        "aggregates": {name: asdict(a) for name, a in evaluation.aggregates.items()},
        "retrieval_at_k": {"k": list(CURVE_KS), **evaluation.retrieval_curve},
        "operational": evaluation.operational,
        "items": [asdict(item) for item in evaluation.items],
    }
    if baseline is not None:
        document["baseline"] = compare(document, baseline)
    return document


def load_baseline(path: Path) -> dict[str, Any]:
    """A previous run's results.json, given as the file or its report folder."""
    file = path / RESULTS_FILE if path.is_dir() else path
    try:
        document: dict[str, Any] = json.loads(file.read_text())
        document["aggregates"]  # noqa: B018 - the one part a comparison needs
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"{file} is not the results.json of an earlier `supportbot eval` run ({exc})") from exc
    return document


def compare(current: dict[str, Any], baseline: dict[str, Any]) -> dict[str, Any]:
    metrics = {}
    for name in sorted(set(current["aggregates"]) | set(baseline["aggregates"])):
        now = current["aggregates"].get(name, {}).get("mean")
        before = baseline["aggregates"].get(name, {}).get("mean")
        metrics[name] = {
            "baseline": before, "current": now,
            "delta": now - before if now is not None and before is not None else None,
        }
    return {"run": baseline.get("run", {}).get("id", ""), "started": baseline.get("run", {}).get("started", ""), "metrics": metrics}


def _number(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _status(passed: bool | None) -> str:
    return {True: "pass", False: "FAIL", None: ""}[passed]


class _Document:
    """One report, written as Markdown and as HTML from the same calls."""

    def __init__(self) -> None:
        self.markdown: list[str] = []
        self.html: list[str] = []

    def heading(self, text: str, level: int = 2) -> None:
        self.markdown.append(f"{'#' * level} {text}\n")
        self.html.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def paragraph(self, text: str) -> None:
        self.markdown.append(f"{text}\n")
        self.html.append(f"<p>{html.escape(text)}</p>")

    def table(self, header: list[str], rows: list[list[str]]) -> None:
        if not rows:
            self.paragraph("(nothing to show)")
            return
        self.markdown.append("| " + " | ".join(header) + " |")
        self.markdown.append("|" + "---|" * len(header))
        self.markdown.extend("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in row) + " |" for row in rows)
        self.markdown.append("")
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
        self.html.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")

    def image(self, path: str, caption: str) -> None:
        self.markdown.append(f"![{caption}]({path})\n")
        self.html.append(f'<figure><img src="{html.escape(path)}" alt="{html.escape(caption)}"><figcaption>{html.escape(caption)}</figcaption></figure>')


_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;"
    "vertical-align:top;font-size:14px}th{background:#f3f3f3}img{max-width:100%}"
)


def write_report(folder: Path, document: dict[str, Any]) -> list[Path]:
    """Writes everything into `folder` and returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / RESULTS_FILE).write_text(json.dumps(document, indent=2, ensure_ascii=False))
    plots = _plots(folder, document)
    report = _Document()
    run = document["run"]
    report.heading(f"supportbot evaluation {run['id']}", 1)
    verdict = "passed" if document["passed"] else f"FAILED: {', '.join(document['failures'])} under threshold"
    report.paragraph(
        f"{run['started']} · {run['turns']} turns, {run['summaries']} summaries, {run['golden_matched']} matched to the "
        f"golden set · judge: {run['judge_model'] or 'none'} · embeddings: {run['embedding_model']} · {verdict}"
    )
    report.heading("Aggregates")
    baseline = document.get("baseline", {}).get("metrics", {})
    header = ["metric", "mean", "items", "errors", "threshold", "status"] + (["baseline", "Δ"] if baseline else [])
    rows = []
    for name, aggregate in document["aggregates"].items():
        row = [name, _number(aggregate["mean"]), str(aggregate["count"]), str(aggregate["errors"]),
               _number(aggregate["threshold"], 2), _status(aggregate["passed"])]
        if baseline:
            compared = baseline.get(name, {})
            delta = compared.get("delta")
            row += [_number(compared.get("baseline")), "–" if delta is None else f"{delta:+.3f}"]
        rows.append(row)
    report.table(header, rows)
    if baseline:
        report.paragraph(f"Baseline: run {document['baseline']['run']} of {document['baseline']['started']}.")
    report.heading("Retrieval at k = 1..10")
    curve = document["retrieval_at_k"]
    report.table(["k", *RETRIEVAL_METRICS], [[str(k), *(_number(curve[m][i]) for m in RETRIEVAL_METRICS)] for i, k in enumerate(curve["k"])])
    report.heading("Operations")
    operational = document["operational"]
    report.table(["measure", "value"], [
        ["turns / sessions", f"{operational['turns']} / {operational['sessions']}"],
        ["grounded-answer rate", _number(operational["grounded_answer_rate"])],
        ["handoff rate", _number(operational["handoff_rate"])],
        ["thumbs-up rate", f"{_number(operational['thumbs_up_rate'])} of {operational['rated_turns']} rated"],
        ["completion tokens mean / p50 / p95", " / ".join(_number(operational["completion_tokens"][k], 1) for k in ("mean", "p50", "p95"))],
        ["finish reasons", ", ".join(f"{k}: {v}" for k, v in operational["finish_reasons"].items()) or "–"],
        ["answer paths", ", ".join(f"{k}: {v}" for k, v in operational.get("answer_paths", {}).items()) or "–"],
        ["generated sentences dropped by verification", str(operational.get("generated_sentences_dropped", 0))],
    ])
    for grouping, label in (("by_answer_path", "answer path"), ("by_adapter", "adapter")):
        groups = operational.get(grouping, {})
        # One row says nothing a reader has not seen in the aggregates above.
        if grouping == "by_adapter" and len(groups) < 2 and BASE_MODEL in groups:
            continue
        shown = [m for m in GROUP_METRICS if any(m in g["scores"] for g in groups.values())]
        report.table([label, "turns", "share", *shown], [
            [name, str(g["turns"]), _number(g["share"]), *(_number(g["scores"].get(m)) for m in shown)]
            for name, g in groups.items()
        ])
    actions = operational.get("actions", {})
    if actions:
        report.table(["account action", "runs", "success", "outcomes", "changes made", "API p50 / p95 ms"], [
            [name, str(a["runs"]), _number(a["success_rate"]), ", ".join(f"{k}: {v}" for k, v in a["outcomes"].items()),
             str(a["changes"]), f"{_number(a['latency_ms']['p50'], 1)} / {_number(a['latency_ms']['p95'], 1)}"]
            for name, a in actions.items()
        ])
    report.table(["stage (ms)", "p50", "p90", "p99"], [
        [stage, *(_number(operational["latency_ms"][stage][p], 1) for p in ("p50", "p90", "p99"))] for stage in LATENCY_STAGES
    ])
    report.heading("Plots")
    for path, caption in plots:
        report.image(path, caption)
    report.heading("Items")
    report.table(["id", "golden", "question", "answer", "scores", "errors"], [
        [item["id"][:12], item["golden_id"], item["question"][:160], item["answer"][:240],
         ", ".join(f"{k} {v:.2f}" for k, v in sorted(item["scores"].items())),
         "; ".join(f"{k}: {v[:80]}" for k, v in item["errors"].items())]
        for item in document["items"]
    ])
    (folder / "report.md").write_text("\n".join(report.markdown))
    (folder / "report.html").write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>supportbot evaluation {html.escape(run['id'])}</title>"
        f"<style>{_STYLE}</style></head><body>{''.join(report.html)}</body></html>"
    )
    return [folder / RESULTS_FILE, folder / "report.md", folder / "report.html", *(folder / p for p, _ in plots)]


def _plots(folder: Path, document: dict[str, Any]) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    per_metric: dict[str, list[float]] = {}
    for item in document["items"]:
        for name, value in item["scores"].items():
            per_metric.setdefault(name, []).append(value)
    if per_metric:
        names = sorted(per_metric)
        columns = 4
        rows = -(-len(names) // columns)
        figure, axes = plt.subplots(rows, columns, figsize=(4 * columns, 2.6 * rows), squeeze=False)
        for axis, name in zip(axes.flat, names, strict=False):
            axis.hist(per_metric[name], bins=10, range=(0, 1), color="#4c72b0")
            axis.set_title(name, fontsize=9)
        for axis in list(axes.flat)[len(names):]:
            axis.set_visible(False)
        figure.tight_layout()
        figure.savefig(folder / "metric_distributions.png", dpi=80)
        plt.close(figure)
        made.append(("metric_distributions.png", "Distribution of each metric over the items (0..1)"))
    latencies = {
        stage: [item["latency_ms"][stage] for item in document["items"] if stage in item["latency_ms"]]
        for stage in LATENCY_STAGES
    }
    if any(latencies.values()):
        figure, axis = plt.subplots(figsize=(8, 3.5))
        stages = [s for s in LATENCY_STAGES if latencies[s]]
        axis.boxplot([latencies[s] for s in stages], tick_labels=stages, showfliers=True)
        axis.set_ylabel("ms")
        axis.set_title("Latency by stage")
        figure.tight_layout()
        figure.savefig(folder / "latency_by_stage.png", dpi=80)
        plt.close(figure)
        made.append(("latency_by_stage.png", "Latency by stage, per turn"))
    curve = document["retrieval_at_k"]
    if any(v is not None for m in RETRIEVAL_METRICS for v in curve[m]):
        figure, axis = plt.subplots(figsize=(7, 3.5))
        for name in RETRIEVAL_METRICS:
            axis.plot(curve["k"], [v if v is not None else float("nan") for v in curve[name]], marker="o", label=name)
        axis.set_xlabel("k")
        axis.set_ylim(0, 1.05)
        axis.legend(fontsize=8)
        axis.set_title("Retrieval metrics at k")
        figure.tight_layout()
        figure.savefig(folder / "retrieval_at_k.png", dpi=80)
        plt.close(figure)
        made.append(("retrieval_at_k.png", "Retrieval metrics at k = 1..10"))
    return made
