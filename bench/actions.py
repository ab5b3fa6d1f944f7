"""Actions benchmark: scripted conversations (English and Korean) through routing, slot filling,
confirmation and the executor (supportbot.actions.stage) against the real demo shop over HTTP, a
fresh shop database per conversation, and false triggers on real questions that must stay
help-center answers.

Several splits, so no figure is reported on what chose it:
- tune: bench/data/action_conversations-tune.jsonl (the 50 conversations the foundation was built
  on, and 12 Korean ones added for questions without a pronoun: "-nocue", "ko-help-") and bench/data/action_negatives-tune.jsonl (every other question of the sample golden sets,
  the off-topic sets, the Python FAQ and LibreOffice en/ko sets). `--sweep` chooses the routing
  (threshold, margin) per language on these only; the chosen values are then written into
  supportbot/actions/routing.py by hand, naming this benchmark.
- report: bench/data/action_conversations-report.jsonl (41 conversations written before any
  change was made; their failures under the code before the change were seen, as the "before"
  figure, and nothing was swept on them) and bench/data/action_negatives-report.jsonl (the other half of
  those sets, plus the held-out Apache en/ko questions, which are in no tune set). Run at the
  defaults in routing.py, never swept.
- heldout: bench/data/action_conversations-heldout.jsonl (40 conversations, 24 English and 16
  Korean) and bench/data/action_negatives-heldout.jsonl (20 English and 20 Korean questions: the
  held-out GIMP en/ko sets of bench/corpora.py and general support questions), written by someone
  who had not read the routing code; run once, at the end, at the defaults in routing.py.
  Hand-written: --write-splits leaves them alone.
- heldout2: bench/data/action_conversations-heldout2.jsonl (40 conversations, 24 English and 16
  Korean) and bench/data/action_negatives-heldout2.jsonl (20 English and 20 Korean questions: the
  sample shop's own policy questions and other help centers' computer and software questions), a
  second held-out split written on 2026-12-02 by someone who had not read the routing, slot,
  pending, combined or stage code nor the other conversation sets (expectations checked against
  the shop's seed and the reply templates only); to be run once, at the defaults in routing.py,
  never swept. Hand-written: --write-splits leaves them alone.
- heldout3: bench/data/action_conversations-heldout3.jsonl (40 conversations, 24 English and 16
  Korean: lookups with and without an order number, clarifications answered by id, item name or
  position, confirmations, refusals, changes of mind, a help-center question in between, another
  customer's order, injections, typos, policy questions that look like requests) and
  bench/data/action_negatives-heldout3.jsonl (20 English and 20 Korean questions: the sample
  shop's policies on orders, returns, subscriptions, delivery and payment, and other help
  centers' software, banking-app, telecom and streaming questions), a third held-out split written
  on 2026-12-02 by a helper session that had not read the routing, slot, pending, combined or stage
  code, their tests, nor the other conversation sets (expectations checked against the shop's seed
  and the reply templates only; turns whose kind the declarations leave open accept a list). To be
  run once, at the defaults in routing.py, never swept. Hand-written: --write-splits leaves them
  alone.
- heldout4: bench/data/action_conversations-heldout4.jsonl (40 conversations, 24 English and 16
  Korean: lookups with and without an order number, a list of all orders, clarifications answered
  by id, item name or position, subscription status, cancellations confirmed, refused and changed
  of mind, returns (one outside the 30-day window, which must end in an error), address changes
  with confirmation, a help-center question in between, another customer's order, injections
  (one asking to skip the confirmation), typos and shorthand, policy questions that look like
  requests) and bench/data/action_negatives-heldout4.jsonl (20 English and 20 Korean questions:
  the sample shop's policies on orders, returns, subscriptions, delivery, payment and warranty,
  and other domains' software, banking-app, telecom, streaming and travel questions), a fourth
  held-out split written on 2026-12-02 by a helper that had not read the routing, slot, pending,
  combined or stage code, their tests, nor the other conversation sets (expectations checked
  against the shop's seed and the reply templates only; every turn has a single expected kind:
  turns whose kind the declarations leave open, a lone candidate or an id outside a candidate
  filter, were left out). To be run once, at the defaults in routing.py, never swept.
  Hand-written: --write-splits leaves them alone.
- combined: bench/data/action_conversations-combined.jsonl (18 conversations, 7 Korean: 11 whose
  first message holds a case question and a policy question, "where is my order and can I still
  return it?", and 7 that look alike but must stay one request or one question), a dev split for
  supportbot.actions.combined only: `--split combined --sweep` chooses its thresholds
  (DEFAULT_COMBINED) on it. No negatives of its own (its must-stay-whole messages are in it).

A turn whose expectation names a `question` must be cut (supportbot.actions.combined) with the
help center answering that part; any other turn must not be cut, in every split.

Prints: task success, wrong-action rate (a conversation that ran an action not asked for), false
triggers per language on the split's negatives, changes made without confirmation, another
customer's data shown, and the latency of each non-model path.

What needs the turn integration and is not measured here: the generator filling free-text
parameters (without a model the customer is asked instead), the help center's answer to the policy
part of a combined message (here only that the part is cut off for it), whole-turn latency over
gRPC with the help-center path, and the channels.

    python -m bench.actions                      # the report split at the defaults in routing.py
    python -m bench.actions --split tune --sweep # choose thresholds on the tune split
    python -m bench.actions --split heldout      # once, at the end
    python -m bench.actions --split combined --sweep  # choose the combined-message thresholds
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import re
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402

from services.shop.server import ShopServer  # noqa: E402
from services.shop.settings import ShopSettings  # noqa: E402
from services.shop.store import seed_orders  # noqa: E402
from supportbot.actions import pending as states  # noqa: E402
from supportbot.actions.combined import DEFAULT_COMBINED, CombinedThresholds, split  # noqa: E402
from supportbot.actions.declarations import load_actions, sample_actions_path  # noqa: E402
from supportbot.actions.executor import ActionExecutor  # noqa: E402
from supportbot.actions.identity import CustomerIdentity  # noqa: E402
from supportbot.actions.routing import (  # noqa: E402
    DEFAULT_ROUTING,
    ActionRouter,
    RoutingThresholds,
    help_center_examples,
)
from supportbot.actions.stage import ActionStage  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data"
SPLITS = ("tune", "report", "heldout", "heldout2", "heldout3", "heldout4", "combined")
SAMPLE = ROOT / "supportbot" / "sample"
TOKEN = "bench-shop-token-" + "b" * 24
THRESHOLDS = [round(x, 2) for x in np.arange(0.30, 0.86, 0.05)]
MARGINS = [0.0, 0.05, 0.10, 0.15]
ANCHORED = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
GENERAL = [0.6, 0.7, 0.8, 0.9, 1.01]
CHANGE = [0.0, 0.05, 0.1, 0.15]
CASE = [round(float(x), 2) for x in np.arange(0.30, 0.96, 0.05)]
QUESTION = [round(float(x), 2) for x in np.arange(-0.30, 0.21, 0.05)]
SHOWN = 15  # rows of the sweep printed per language


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def load_conversations(split: str) -> list[dict[str, Any]]:
    return read_jsonl(DATA / f"action_conversations-{split}.jsonl")


def load_negatives(split: str) -> list[dict[str, Any]]:
    """Real questions that must stay help-center answers (`action` null), and the few of those
    sets that ask about the customer's own case (`action` names the action that answers them)."""
    path = DATA / f"action_negatives-{split}.jsonl"
    return read_jsonl(path) if path.exists() else []


# The sets the negatives come from: (corpus name in bench/corpora.py, language, golden file).
NEGATIVE_SETS = [("sample", "en", SAMPLE / "golden.jsonl"), ("korean", "ko", SAMPLE / "golden-ko.jsonl"),
                 ("off-topic-en", "en", DATA / "off_topic_en.jsonl"), ("off-topic-ko", "ko", DATA / "off_topic_ko.jsonl"),
                 ("python-faq", "en", DATA / "python_faq_golden.jsonl"),
                 ("libreoffice", "en", DATA / "libreoffice_golden.jsonl"),
                 ("libreoffice-ko", "ko", DATA / "libreoffice_ko_golden.jsonl")]
HELD_OUT_NEGATIVE_SETS = [("apache", "en", DATA / "apache_golden.jsonl"), ("apache-ko", "ko", DATA / "apache_ko_golden.jsonl")]
# Questions of those sets that ask about the customer's own case, which an account action answers
# once the customer is signed in (the sets were written before actions existed): they count as
# routed right when they reach that action, never as false triggers. lk22 ("my parcel hasn't come
# yet, when will it come?") was an off-topic question of a software help center; to a signed-in
# shop customer it asks where their order is (relabelled when the Korean own-case rule reached it).
ACTION_REQUESTS = {("sample", "s05"): "order_status", ("korean", "k23"): "order_status",
                   ("libreoffice-ko", "lk22"): "order_status"}


def write_negative_splits() -> None:
    """bench/data/action_negatives-{tune,report}.jsonl: every other question of each set in each
    half; the held-out Apache sets only in the report half."""
    halves: dict[str, list[dict[str, Any]]] = {"tune": [], "report": []}
    for sets, held_out in ((NEGATIVE_SETS, False), (HELD_OUT_NEGATIVE_SETS, True)):
        for name, language, path in sets:
            for index, row in enumerate(read_jsonl(path)):
                half = "report" if held_out or index % 2 else "tune"
                halves[half].append({"set": name, "id": row["id"], "language": language, "question": row["question"],
                                     "action": ACTION_REQUESTS.get((name, row["id"]))})
    for half, rows in halves.items():
        (DATA / f"action_negatives-{half}.jsonl").write_text(
            "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")


class TimedEmbedder:
    """The embedder, with the time spent in it counted (the latency figures separate it out)."""

    def __init__(self, embed) -> None:  # type: ignore[no-untyped-def]
        self.embed = embed
        self.seconds = 0.0

    def __call__(self, texts):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        try:
            return self.embed(texts)
        finally:
            self.seconds += time.perf_counter() - started


def build_routers(actions, *, chosen: dict[str, RoutingThresholds]) -> tuple[dict[str, ActionRouter], list[TimedEmbedder]]:  # type: ignore[no-untyped-def]
    from services.retriever.embedding import DenseEmbedder, UniversalSentenceEncoder

    english, multilingual = TimedEmbedder(DenseEmbedder().embed_documents), TimedEmbedder(UniversalSentenceEncoder().embed_documents)
    routers = {
        "en": ActionRouter(actions.actions, english, help_center_examples(SAMPLE / "helpcenter"), languages=["en"],
                           **chosen["en"].as_kwargs()),
        "ko": ActionRouter(actions.actions, multilingual, help_center_examples(SAMPLE / "helpcenter-ko"), languages=["ko"],
                           **chosen["ko"].as_kwargs()),
    }
    return routers, [english, multilingual]


def first_turn_labels(conversations: list[dict[str, Any]], language: str) -> list[tuple[str, str | None]]:
    labelled = []
    for conversation in conversations:
        if conversation["language"] != language:
            continue
        turn = conversation["turns"][0]
        if turn["expect"] == "error" and not turn.get("action"):
            continue  # a bare "yes": not a routing question
        if isinstance(turn["expect"], list):
            continue  # injections: several outcomes are right
        labelled.append((turn["say"], None if turn["expect"] == "help_center" else turn.get("action")))
    return labelled


def sweep(routers: dict[str, ActionRouter], conversations: list[dict[str, Any]],
          negatives: list[dict[str, Any]]) -> dict[str, RoutingThresholds]:
    """Choose (threshold, margin, anchored threshold) per language on the tune split only: the
    conversations' first turns and the tune negatives."""
    chosen = {}
    for language in ("en", "ko"):
        router = routers[language]
        labelled = first_turn_labels(conversations, language)
        labelled += [(row["question"], row["action"]) for row in negatives if row["language"] == language]
        scored = [(text, router.scores(text), label) for text, label in labelled]
        unlabelled = sum(label is None for _, _, label in scored)
        print(f"\nRouting sweep, {language}: {len(scored)} tune messages ({len(scored) - unlabelled} asking for an action, "
              f"{unlabelled} that must stay help-center answers)")
        print(f"{'threshold':>9} {'margin':>6} {'anchored':>8} {'general':>7} {'change':>6} {'accuracy':>8} {'cost':>5} {'false triggers':>14} {'missed':>6}")
        costs: dict[RoutingThresholds, int] = {}
        lines: list[tuple[int, str]] = []
        for threshold in THRESHOLDS:
            for margin in MARGINS:
                for anchored, general, change in itertools.product(ANCHORED, GENERAL, CHANGE):
                    setting = RoutingThresholds(float(threshold), margin, anchored, general, change,
                                                lead=DEFAULT_ROUTING[language].lead, lead_margin=DEFAULT_ROUTING[language].lead_margin)
                    decisions = [(router.decide(text, s, **setting.as_kwargs()).action, label) for text, s, label in scored]
                    accuracy = sum(action == label for action, label in decisions) / len(decisions)
                    # A policy question answered with an account action (or the wrong action)
                    # costs three times a missed action, which still gets the help center's article.
                    cost = sum(3 if action is not None else 1 for action, label in decisions if action != label)
                    triggers = sum(action is not None and label is None for action, label in decisions)
                    missed = sum(action != label and label is not None for action, label in decisions)
                    lines.append((cost, f"{threshold:9.2f} {margin:6.2f} {anchored:8.2f} {general:7.2f} {change:6.2f} "
                                        f"{accuracy:8.3f} {cost:5d} {triggers:14d} {missed:6d}"))
                    costs[setting] = cost
        for _, line in sorted(lines, key=lambda item: item[0])[:SHOWN]:
            print(line)
        print(f"... {len(lines)} settings in all, the {SHOWN} of lowest cost shown")
        best = plateau_middle(costs)
        chosen[language] = best
        print(f"chosen for {language}: {best} (tune cost {costs[best]}, the middle of the "
              f"{sum(c == costs[best] for c in costs.values())} settings of that cost)")
    return chosen


def plateau_middle(costs: dict[RoutingThresholds, int]) -> RoutingThresholds:
    """The setting in the middle of the lowest-cost plateau: its threshold the median of the
    tied thresholds, then its margin and anchored threshold likewise. The edges of a plateau
    fit the tune messages only just; its middle leaves room on both sides for unseen ones."""
    lowest = min(costs.values())
    tied = [setting for setting, cost in costs.items() if cost == lowest]
    for attribute in ("threshold", "margin", "anchored", "general", "change"):
        values = sorted({getattr(setting, attribute) for setting in tied})
        middle = values[(len(values) - 1) // 2]
        tied = [setting for setting in tied if getattr(setting, attribute) == middle]
    return tied[0]


class Remembered:
    """An embedder that embeds each text once (the combined sweep routes the same parts again
    for every setting)."""

    def __init__(self, embed) -> None:  # type: ignore[no-untyped-def]
        self.embed = embed
        self.vectors: dict[str, np.ndarray] = {}

    def __call__(self, texts):  # type: ignore[no-untyped-def]
        missing = [text for text in dict.fromkeys(texts) if text not in self.vectors]
        if missing:
            self.vectors.update(zip(missing, np.asarray(self.embed(missing)), strict=True))
        return np.asarray([self.vectors[text] for text in texts])


def sweep_combined(routers: dict[str, ActionRouter], conversations: list[dict[str, Any]],
                   negatives: list[dict[str, Any]]) -> dict[str, CombinedThresholds]:
    """Choose the combined-message thresholds (case, question) per language on the combined
    split's first turns: cut where a `question` is expected, with the right action; whole
    elsewhere, as must be every question of `negatives` (the tune split's: help-center and
    off-topic questions). A wrong cut (a message cut that must stay whole, or the wrong action or
    part) costs three times a missed one, which is still answered as one message."""
    changes = [action.name for action in load_actions(sample_actions_path()).actions if action.changes]
    chosen = {}
    for language in ("en", "ko"):
        router = routers[language]
        embed, router.embed = router.embed, Remembered(router.embed)
        try:
            firsts = [c["turns"][0] for c in conversations if c["language"] == language]
            firsts += [{"say": row["question"]} for row in negatives if row["language"] == language]
            print(f"\nCombined sweep, {language}: {len(firsts)} first messages "
                  f"({sum('question' in t for t in firsts)} to cut, {sum('question' not in t for t in firsts)} to keep whole)")
            print(f"{'case':>5} {'question':>8} {'cost':>5} {'right':>5} {'wrong cuts':>10} {'missed':>6}")
            costs: dict[CombinedThresholds, int] = {}
            lines: list[tuple[int, str]] = []
            for case, question in itertools.product(CASE, QUESTION):
                setting = CombinedThresholds(float(case), question)
                right = wrong = missed = 0
                for turn in firsts:
                    cut = split(turn["say"], router, setting, language, changes)
                    expected = turn.get("question")
                    if cut is None:
                        right, missed = (right, missed + 1) if expected else (right + 1, missed)
                    elif expected and cut.question == expected and cut.decision.action == turn.get("action"):
                        right += 1
                    else:
                        wrong += 1
                cost = 3 * wrong + missed
                costs[setting] = cost
                lines.append((cost, f"{case:5.2f} {question:8.2f} {cost:5d} {right:5d} {wrong:10d} {missed:6d}"))
            for _, line in sorted(lines, key=lambda item: item[0])[:SHOWN]:
                print(line)
            lowest = min(costs.values())
            tied = [setting for setting, cost in costs.items() if cost == lowest]
            for attribute in ("case", "question"):
                values = sorted({getattr(setting, attribute) for setting in tied})
                middle = values[(len(values) - 1) // 2]
                tied = [setting for setting in tied if getattr(setting, attribute) == middle]
            chosen[language] = tied[0]
            print(f"chosen for {language}: {tied[0]} (cost {lowest}, the middle of the "
                  f"{sum(c == lowest for c in costs.values())} settings of that cost)")
        finally:
            router.embed = embed
    return chosen


def false_triggers(routers: dict[str, ActionRouter], negatives: list[dict[str, Any]],
                   combined: dict[str, CombinedThresholds] = DEFAULT_COMBINED) -> dict[str, dict[str, Any]]:
    """Negatives routed to an action, whole or as the case part of a combined message."""
    changes = [action.name for action in load_actions(sample_actions_path()).actions if action.changes]
    out: dict[str, dict[str, Any]] = {}
    for language in ("en", "ko"):
        rows = [row for row in negatives if row["language"] == language]
        decisions = []
        for row in rows:
            cut = split(row["question"], routers[language], combined[language], language, changes)
            decisions.append((row, cut.decision if cut is not None else routers[language].route(row["question"])))
        out[language] = {
            "questions": sum(row["action"] is None for row in rows),
            "triggered": [f"{row['set']}/{row['id']}: {row['question']} -> {d.action}" for row, d in decisions
                          if row["action"] is None and d.is_action],
            "case_questions": [f"{row['set']}/{row['id']}: {row['question']} -> {d.action or 'help center'}"
                               for row, d in decisions if row["action"] is not None],
        }
    return out


def others_records(customer: str | None) -> set[str]:
    """Ids and tracking numbers that belong to other customers (for the cross-customer check)."""
    values = set()
    for order_id, owner, _, _, _, _, _, tracking, _ in seed_orders():
        if owner != customer:
            values.add(order_id)
            if tracking:
                values.add(tracking)
    return values


def shop_state(server: ShopServer, customer: str) -> str:
    store = server.store
    return json.dumps([store.orders(customer), store.subscriptions(customer), store.returns(customer)], sort_keys=True)


def matches(turn: dict[str, Any], result) -> bool:  # type: ignore[no-untyped-def]
    expected = turn["expect"] if isinstance(turn["expect"], list) else [turn["expect"]]
    if result.kind not in expected:
        return False
    if result.question != turn.get("question", ""):
        return False  # cut where it must stay whole, or not cut (or cut elsewhere) where expected
    if turn.get("action") and result.kind != "help_center" and result.action != turn["action"]:
        return False
    return all(fragment in result.text for fragment in turn.get("contains", []))


async def run_conversations(routers: dict[str, ActionRouter], embedders: list[TimedEmbedder],
                            conversations: list[dict[str, Any]], verbose: bool,
                            combined: dict[str, CombinedThresholds] = DEFAULT_COMBINED) -> dict[str, Any]:
    actions = load_actions(sample_actions_path())
    latencies: dict[str, list[float]] = defaultdict(list)
    without_embedding: dict[str, list[float]] = defaultdict(list)
    figures = {"success": 0, "wrong_action": 0, "unconfirmed_changes": 0, "cross_customer": 0, "turns": 0, "failures": [],
               "cut": 0, "cut_expected": 0, "cut_wrongly": 0}
    for conversation in conversations:
        customer = conversation["customer"]
        identity = CustomerIdentity(customer, "customer_key") if customer else None
        settings = ShopSettings(database=":memory:", port=0, service_token=TOKEN)
        with ShopServer(settings) as server:
            executor = ActionExecutor(load_actions(sample_actions_path(), base_url=server.url),
                                      environ={"SUPPORTBOT_SHOP_SERVICE_TOKEN": TOKEN}, backoff_s=0.01)
            stage = ActionStage(actions, executor, routers, combined=combined)
            before = shop_state(server, customer) if customer else ""
            state, ok, wrong, confirmed_runs, previous_kind = None, True, False, 0, ""
            forbidden = others_records(customer)
            for turn in conversation["turns"]:
                embedded_before = sum(e.seconds for e in embedders)
                started = time.perf_counter()
                before_state = state
                result = await stage.handle(turn["say"], state, identity)
                elapsed = (time.perf_counter() - started) * 1000
                embedding_ms = (sum(e.seconds for e in embedders) - embedded_before) * 1000
                figures["turns"] += 1
                ran = result.result is not None and result.result.attempts > 0
                declared = actions.action(result.action) if result.action else None
                path = ("change" if declared and declared.changes else "lookup") if ran else result.kind
                latencies[path].append(elapsed)
                without_embedding[path].append(elapsed - embedding_ms)
                state = result.state
                figures["cut_expected"] += bool(turn.get("question"))
                figures["cut"] += bool(result.question) and result.question == turn.get("question")
                figures["cut_wrongly"] += bool(result.question) and result.question != turn.get("question")
                if not matches(turn, result):
                    ok = False
                    cut = f" (help center: {result.question!r})" if result.question else ""
                    figures["failures"].append(f"{conversation['id']}: {turn['say']!r} -> {result.kind} {result.action}{cut} {result.text[:160]!r}")
                if ran and result.action != turn.get("action"):
                    wrong = True
                if ran and declared is not None and declared.changes:
                    # An explicit yes right after the read-back: alone, or opening a few words that
                    # ask for that very change again ("넵 해지해주세요", "yes, cancel it").
                    routed = result.route.action if result.route else None
                    waiting = states.restore(before_state)
                    waited_for = actions.action(waiting.action) if waiting else None
                    said_yes = states.intent_of(waiting, turn["say"], routed, waited_for) == "yes"
                    if said_yes and previous_kind == "confirm":
                        confirmed_runs += 1
                    else:
                        figures["unconfirmed_changes"] += 1
                shown = set(re.findall(r"[A-Z]-\d{6}|[0-9A-Z]{10,}|\d{4}-\d{4}-\d{4}", result.text))
                records = {str(v) for r in (result.result.records if result.result else []) for vs in r.values() for v in vs}
                if (shown | records) & forbidden and result.kind != "confirm":
                    figures["cross_customer"] += 1
                previous_kind = result.kind
                if verbose:
                    cut = f" + help center {result.question!r}" if result.question else ""
                    print(f"  [{conversation['id']}] {turn['say']!r} -> {result.kind}/{result.action}{cut}: {result.text[:120]!r}")
            after = shop_state(server, customer) if customer else ""
            changed = int(before != after)
            if changed > confirmed_runs:
                figures["unconfirmed_changes"] += changed - confirmed_runs
            if changed != conversation["changes"]:
                ok = False
                figures["failures"].append(f"{conversation['id']}: {changed} changes, expected {conversation['changes']}")
            await executor.aclose()
        figures["success"] += ok
        figures["wrong_action"] += wrong
    figures["latency"] = dict(latencies)
    figures["latency_without_embedding"] = dict(without_embedding)
    return figures


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", choices=SPLITS, default="report",
                        help="which conversations and negatives to run (default: report, at the defaults in routing.py)")
    parser.add_argument("--sweep", action="store_true", help="choose the routing thresholds on the tune split first (with "
                        "--split tune), or the combined-message thresholds on the combined split (with --split combined)")
    parser.add_argument("--write-splits", action="store_true", help="rewrite bench/data/action_negatives-*.jsonl from the sets, and stop")
    parser.add_argument("--verbose", action="store_true", help="print every turn")
    args = parser.parse_args()
    if args.write_splits:
        write_negative_splits()
        return
    if args.sweep and args.split not in ("tune", "combined"):
        parser.error("--sweep chooses thresholds on the tune split (routing) or the combined split only: add --split tune or --split combined")
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[attr-defined]  (progress shows when redirected)
    conversations, negatives = load_conversations(args.split), load_negatives(args.split)
    actions = load_actions(sample_actions_path())
    started = time.perf_counter()
    routers, embedders = build_routers(actions, chosen=DEFAULT_ROUTING)
    print(f"split {args.split}: {len(conversations)} conversations ({sum(c['language'] == 'ko' for c in conversations)} Korean), "
          f"{sum(len(c['turns']) for c in conversations)} turns; {len(negatives)} negatives; "
          f"embedders loaded in {time.perf_counter() - started:.1f} s")
    chosen, combined = DEFAULT_ROUTING, DEFAULT_COMBINED
    if args.sweep and args.split == "combined":
        combined = sweep_combined(routers, conversations, load_negatives("tune"))
    elif args.sweep:
        chosen = sweep(routers, conversations, negatives)
        for language, setting in chosen.items():
            routers[language].threshold, routers[language].margin = setting.threshold, setting.margin
            routers[language].anchored_threshold = setting.anchored
            routers[language].general_threshold = setting.general
            routers[language].change_margin = setting.change
    triggers = false_triggers(routers, negatives, combined)
    figures = asyncio.run(run_conversations(routers, embedders, conversations, args.verbose, combined))
    total = len(conversations)
    print(f"\nSplit {args.split}, at {json.dumps({k: v.as_kwargs() for k, v in chosen.items()})}, "
          f"combined messages at {json.dumps({k: vars(v) for k, v in combined.items()})}:")
    print(f"task success rate            {figures['success'] / total:.3f}  ({figures['success']}/{total})")
    print(f"wrong-action rate            {figures['wrong_action'] / total:.3f}  ({figures['wrong_action']}/{total} conversations ran an action not asked for)")
    for language, found in triggers.items():
        count, size = len(found["triggered"]), found["questions"]
        if not size:
            continue
        print(f"false triggers {language}            {count / size:.3f}  ({count}/{size} help-center and off-topic questions: {found['triggered']})")
        print(f"  case questions in those sets, {language}: {found['case_questions']}")
    print(f"combined messages cut        {figures['cut']}/{figures['cut_expected']} as expected, "
          f"{figures['cut_wrongly']} cut that must stay whole (or cut wrongly)")
    print(f"changes without confirmation {figures['unconfirmed_changes']}")
    print(f"another customer's data shown {figures['cross_customer']}")
    print(f"latency per turn by path, ms (load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores):")
    print(f"  {'path':<12} {'n':>3} {'p50':>8} {'p95':>8} | without the message embedding: {'p50':>7} {'p95':>7}")
    for path, values in sorted(figures["latency"].items()):
        rest = figures["latency_without_embedding"][path]
        print(f"  {path:<12} {len(values):>3} {percentile(values, 50):8.1f} {percentile(values, 95):8.1f} | "
              f"{'':>31}{percentile(rest, 50):7.1f} {percentile(rest, 95):7.1f}")
    if figures["failures"]:
        print("\nturns that missed their expectation:")
        for failure in figures["failures"]:
            print(f"  {failure}")
    print("\nNot measured here (needs the turn integration): generator-filled parameters, the help center's answer to "
          "a combined message's policy part, "
          "whole-turn latency with the help-center path over gRPC, channels.")


if __name__ == "__main__":
    main()
