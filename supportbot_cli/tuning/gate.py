"""The evaluation gate: an adapter is registered for a collection only when, in verified mode,
it answers better than the base model (and than the adapter it would replace) on the headline
figures and worse on none beyond a stated tolerance; the verdict says why, either way.

Verified mode as the gateway runs it (services/gateway/answering.py): the model's answer is
checked sentence by sentence against the sources (supportbot.answers.compose.verify, the
gateway's support threshold 0.6); supported sentences are shown with their citations; when none
is, the extractive answer is quoted instead (a fallback). The figures per answer set:

- headline: key-fact recall of what is shown, the fallback-to-quote rate, faithfulness (share of
  the model's sentences the verifier keeps; with an embedder, the embedding faithfulness of
  supportbot/evaluation/heuristic.py on the kept text);
- the rest: token F1 against the reference answer, abstention accuracy (declining exactly the
  questions the sources do not answer), sentences kept and dropped per answer, tokens per
  answer and latency per answer.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from supportbot.answers.compose import extractive_answer, render, verify
from supportbot.answers.grounding import Evidence
from supportbot.evaluation import heuristic
from supportbot_cli.tuning.dataset import NOT_COVERED_REPLY, Example

# The gateway's support threshold (GatewaySettings.answers.support_threshold).
SUPPORT_THRESHOLD = 0.6


@dataclass(frozen=True)
class Metric:
    name: str
    higher_is_better: bool
    # How much worse the candidate may be and still pass: absolute for shares, relative (a
    # fraction of the reference's value) for costs.
    tolerance: float
    relative: bool = False
    headline: bool = False


# Tolerances: about one question in 40 (the sample's held-out set) for shares; a quarter more
# for tokens and latency, which vary that much between runs on a loaded 2-core machine.
METRICS = (
    Metric("key_fact_recall", True, 0.025, headline=True),
    Metric("fallback_rate", False, 0.025, headline=True),
    Metric("faithfulness", True, 0.025, headline=True),
    Metric("token_f1", True, 0.025),
    Metric("abstention_accuracy", True, 0.025),
    Metric("sentences_kept", True, 0.25, relative=True),
    Metric("sentences_dropped", False, 0.25, relative=True),
    Metric("tokens_per_answer", False, 0.25, relative=True),
    Metric("latency_s", False, 0.25, relative=True),
)


@dataclass
class Generated:
    """What the model wrote for one example, and what it cost."""

    text: str
    completion_tokens: int
    seconds: float


Generate = Callable[[Example], Generated]


def is_declined(text: str) -> bool:
    """The model said the help center does not cover the question (the trained honest reply)."""
    opening = text.strip().lower()[:60]
    return opening.startswith(NOT_COVERED_REPLY.lower()[:30]) or "doesn't cover" in opening


def verified_figures(
    examples: Sequence[Example],
    answers: Sequence[Generated],
    *,
    threshold: float = SUPPORT_THRESHOLD,
    embed: heuristic.Embed | None = None,
) -> dict[str, float | None]:
    """The figures of one answer set in verified mode (see the module's docstring)."""
    facts, f1, faithful, kept, dropped, fallbacks, correct = [], [], [], [], [], [], []
    for example, answer in zip(examples, answers, strict=True):
        evidence = Evidence(example.sources)
        declined = is_declined(answer.text)
        verifier = verify(evidence, answer.text, threshold=threshold)
        fallback = not declined and not verifier.kept
        if declined:
            shown = NOT_COVERED_REPLY
        elif verifier.kept:
            shown = render(verifier.kept)
        else:
            shown = extractive_answer(example.question, evidence).text
        grounded = not declined and bool(shown)
        kept.append(float(len(verifier.kept)))
        dropped.append(float(verifier.dropped))
        fallbacks.append(float(fallback))
        correct.append(float(grounded == example.answerable))
        if verifier.verdicts and not declined:
            if embed is not None and verifier.kept:
                faithful.append(
                    heuristic.faithfulness(
                        shown, [s.text for s in example.sources], embed, threshold
                    )
                )
            else:
                faithful.append(len(verifier.kept) / len(verifier.verdicts))
        if example.answerable and example.key_facts:
            facts.append(heuristic.key_fact_recall(shown, example.key_facts))
        if example.answerable and (example.reference_answer or example.answer):
            f1.append(heuristic.token_f1(shown, example.reference_answer or example.answer))

    def mean(values: list[float]) -> float | None:
        return statistics.fmean(values) if values else None

    return {
        "questions": float(len(answers)),
        "key_fact_recall": mean(facts),
        "fallback_rate": mean(fallbacks),
        "faithfulness": mean(faithful),
        "token_f1": mean(f1),
        "abstention_accuracy": mean(correct),
        "sentences_kept": mean(kept),
        "sentences_dropped": mean(dropped),
        "tokens_per_answer": mean([float(a.completion_tokens) for a in answers]),
        "latency_s": statistics.median([a.seconds for a in answers]) if answers else None,
    }


def extractive_figures(examples: Sequence[Example]) -> dict[str, float | None]:
    """Extractive mode on the same examples (no model): the bar verified mode is compared with."""
    answers = []
    for example in examples:
        started = time.perf_counter()
        text = extractive_answer(example.question, Evidence(example.sources)).text
        answers.append(Generated(text or NOT_COVERED_REPLY, 0, time.perf_counter() - started))
    figures = verified_figures(examples, answers)
    # Quoted sentences are the sources' own: verification keeps them all by construction.
    figures["fallback_rate"] = None
    return figures


# -- the decision -------------------------------------------------------------------------
@dataclass
class Comparison:
    set_name: str
    metric: str
    reference: float | None
    candidate: float | None
    verdict: str  # "better", "same", "worse (within tolerance)", "worse", "not measured"


@dataclass
class Verdict:
    registered: bool
    reasons: list[str]
    against: str
    comparisons: list[Comparison] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _compare(metric: Metric, reference: float | None, candidate: float | None) -> str:
    if reference is None or candidate is None:
        return "not measured"
    gain = candidate - reference if metric.higher_is_better else reference - candidate
    allowed = metric.tolerance * abs(reference) if metric.relative else metric.tolerance
    if gain > allowed:
        return "better"
    if gain >= 0 or abs(gain) <= 1e-12:
        return "same"
    return "worse (within tolerance)" if -gain <= allowed else "worse"


def decide(
    reference: dict[str, dict[str, float | None]],
    candidate: dict[str, dict[str, float | None]],
    *,
    against: str = "base model",
    metrics: Sequence[Metric] = METRICS,
) -> Verdict:
    """Registered when, on every answer set, no figure is worse beyond its tolerance, and on
    some set a headline figure is better beyond its tolerance. `reference` and `candidate` map
    an answer set's name ("held_out", "golden") to its figures."""
    comparisons, worse, better = [], [], []
    for set_name in reference:
        for metric in metrics:
            ref, cand = (
                reference[set_name].get(metric.name),
                candidate.get(set_name, {}).get(metric.name),
            )
            verdict = _compare(metric, ref, cand)
            comparisons.append(Comparison(set_name, metric.name, ref, cand, verdict))
            if verdict == "worse":
                worse.append(f"{metric.name} on {set_name}: {ref:.3f} -> {cand:.3f}")
            if verdict == "better" and metric.headline:
                better.append(f"{metric.name} on {set_name}: {ref:.3f} -> {cand:.3f}")
    if worse:
        return Verdict(
            False,
            [f"worse than the {against} beyond tolerance: " + "; ".join(worse)],
            against,
            comparisons,
        )
    if not better:
        return Verdict(
            False,
            [f"no headline figure is better than the {against}'s beyond tolerance"],
            against,
            comparisons,
        )
    return Verdict(True, [f"better than the {against}: " + "; ".join(better)], against, comparisons)


def decide_all(
    base: dict[str, dict[str, float | None]],
    candidate: dict[str, dict[str, float | None]],
    current: dict[str, dict[str, float | None]] | None = None,
) -> Verdict:
    """Against the base model, and against the adapter registered now when there is one: a
    working adapter is never replaced with a worse one."""
    verdict = decide(base, candidate)
    if current is None or not verdict.registered:
        return verdict
    against_current = decide(current, candidate, against="registered adapter")
    return Verdict(
        against_current.registered,
        verdict.reasons + against_current.reasons,
        "base model and registered adapter",
        verdict.comparisons + against_current.comparisons,
    )


def print_table(
    columns: dict[str, dict[str, dict[str, float | None]]], console: Any = None
) -> None:
    """One table per answer set: a column per answerer (base, adapter, extractive, ...)."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    sets = list(dict.fromkeys(s for figures in columns.values() for s in figures))
    for set_name in sets:
        table = Table(title=f"verified mode, {set_name}")
        table.add_column("figure")
        for name in columns:
            table.add_column(name, justify="right")
        for metric in ("questions", *(m.name for m in METRICS)):
            values = [columns[name].get(set_name, {}).get(metric) for name in columns]
            table.add_row(metric, *("-" if v is None else f"{v:.3f}" for v in values))
        console.print(table)


def write_report(
    path: Path, verdict: Verdict, columns: dict[str, Any], extra: dict[str, Any]
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps({"verdict": verdict.to_json(), "figures": columns, **extra}, indent=2)
    )


# -- answering in this process ------------------------------------------------------------------
class LocalGenerator:
    """Greedy answers from the base model, or the base with an adapter, with transformers in this
    process, prompted exactly as the generator prompts (the adapter is not registered yet, so the
    running generator cannot be asked for it)."""

    def __init__(
        self, base_model: str, adapter: Path | None, *, max_new_tokens: int = 96, threads: int = 0
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from services.generator.settings import DEFAULT_SYSTEM_PROMPT

        if threads:
            torch.set_num_threads(threads)
        self.tokenizer = AutoTokenizer.from_pretrained(base_model)
        model = AutoModelForCausalLM.from_pretrained(base_model, dtype=torch.float32)
        if adapter is not None:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, str(adapter))
        self.model = model.eval()
        self.max_new_tokens = max_new_tokens
        self.system_prompt = DEFAULT_SYSTEM_PROMPT

    def __call__(self, example: Example) -> Generated:
        from supportbot_cli.tuning.train import render

        prompt, _ = render(example, self.tokenizer, self.system_prompt)
        return self.complete(prompt)

    def complete(
        self, prompt: str, *, max_new_tokens: int = 0, stopping_criteria: Any = None
    ) -> Generated:
        """The greedy continuation of a prompt already in the chat template (the question
        writer's prompts, supportbot_cli/tuning/questions.py, as well as the gate's)."""
        import torch

        ids = self.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        started = time.perf_counter()
        with torch.no_grad():
            output = self.model.generate(
                **ids,
                max_new_tokens=max_new_tokens or self.max_new_tokens,
                do_sample=False,
                pad_token_id=self.tokenizer.eos_token_id,
                stopping_criteria=stopping_criteria,
            )
        new = output[0, ids["input_ids"].shape[1] :]
        text = self.tokenizer.decode(new, skip_special_tokens=True)
        return Generated(text.strip(), int(new.shape[0]), time.perf_counter() - started)


def answer_all(
    generate: Generate, examples: Sequence[Example], on_answer: Callable[[], None] = lambda: None
) -> list[Generated]:
    answers = []
    for example in examples:
        answers.append(generate(example))
        on_answer()
    return answers
