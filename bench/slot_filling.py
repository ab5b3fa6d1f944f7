"""Slot-filling benchmark: does the bundled generator fill a free-text parameter (the sample's
change_delivery_address `address`, `extract: generator`) from the customer's message, and never
with a wrong value?

bench/data/slot_filling.jsonl holds 30 messages (15 English, 15 Korean) asking for a new delivery
address: the address at the start, middle or end, with an order number or without, with chatter,
typos, Korean particles attached ("...06236으로"), some with no address at all (nothing may be
filled) and some with two ("from X to Y", "X, not Y": the new one, or nothing). Each message runs
what the action stage runs (supportbot.actions.slots): fill_by_pattern, then fill_by_generator over
a real generator service (services/generator, the default model on this machine's CPU, started
here unless --generator names a running one) through stub_caller.

Each row has a split: dev (16: the request, the schema and the accept rules were changed while
looking at these) and report (14: run, never tuned on).

Prints, per split and language:
- exact: the accepted value is the address (whitespace, case and surrounding punctuation aside);
- wrong: a value accepted that is not the address (the dangerous outcome: it is read back for
  confirmation), split into partial (a piece of the right address) and other;
- nothing: no value, the customer is asked for the address (safe);
- latency p50/p95 of fill_by_generator (one generator call);
- how many generated texts obey the requested JSON schema (an object with exactly the requested
  keys, each null or a string in the parameter's pattern): the check that decoding is constrained.

    python -m bench.slot_filling                  # both splits, starts the generator (1-2 min)
    python -m bench.slot_filling --verbose        # every message, the generated text and verdict
    python -m bench.slot_filling --generator 127.0.0.1:50053 --key KEY   # a running generator
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from supportbot.actions.declarations import Action, load_actions, sample_actions_path  # noqa: E402
from supportbot.actions.slots import GenerateText, fill_by_generator, fill_by_pattern, stub_caller  # noqa: E402
from supportbot.core.auth import API_KEY_METADATA_KEY  # noqa: E402
from supportbot.core.channels import create_channel  # noqa: E402
from supportbot.v1 import generator_pb2, generator_pb2_grpc  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data" / "slot_filling.jsonl"
ACTION = "change_delivery_address"
PARAMETER = "address"
TIMEOUT_S = 60.0


def load_rows() -> list[dict[str, Any]]:
    return [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]


def normalised(text: str) -> str:
    return " ".join(text.casefold().split()).strip(" .,!?;:")


def verdict(expected: str | None, got: str | None) -> str:
    if got is None:
        return "nothing"
    if expected is not None and normalised(got) == normalised(expected):
        return "exact"
    if expected is not None and normalised(got) in normalised(expected):
        return "partial"
    return "other"


def obeys_schema(action: Action, names: list[str], text: str) -> bool:
    """The text is what the request's schema allows: an object with exactly these keys, each
    null or a string that fits its parameter's pattern."""
    try:
        data = json.loads(text)
    except ValueError:
        return False
    if not isinstance(data, dict) or set(data) != set(names):
        return False
    return all(data[n] is None or (isinstance(data[n], str) and action.parameters[n].matches(data[n])) for n in names)


@dataclass
class Outcome:
    row: dict[str, Any]
    value: str | None
    text: str
    seconds: float
    verdict: str
    obeys: bool


class Recording:
    """The generate callable, keeping the last generated text."""

    def __init__(self, generate: GenerateText) -> None:
        self.generate = generate
        self.text = ""
        self.names: list[str] = []

    async def __call__(self, request: generator_pb2.GenerateRequest) -> str:
        self.names = list(json.loads(request.json_schema)["properties"])
        self.text = await self.generate(request)
        return self.text


async def run(rows: list[dict[str, Any]], generate: GenerateText, action: Action) -> list[Outcome]:
    recording = Recording(generate)
    outcomes = []
    for row in rows:
        recording.text, recording.names = "", []
        slots = fill_by_pattern(action, row["message"])
        started = time.perf_counter()
        slots = await fill_by_generator(action, row["message"], slots, recording)
        seconds = time.perf_counter() - started
        value = slots.values.get(PARAMETER)
        obeys = obeys_schema(action, recording.names, recording.text) if recording.names else True
        outcomes.append(Outcome(row, value, recording.text, seconds, verdict(row["address"], value), obeys))
    return outcomes


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


def report(outcomes: list[Outcome], *, verbose: bool) -> None:
    if verbose:
        for o in outcomes:
            print(f"[{o.row['split']}/{o.row['language']}] {o.verdict:8s} {o.seconds * 1000:6.0f} ms  {o.row['kind']}")
            print(f"    message:  {o.row['message']}")
            print(f"    expected: {o.row['address']!r}  accepted: {o.value!r}")
            print(f"    generated{'' if o.obeys else ' (BREAKS THE SCHEMA)'}: {o.text!r}")
    header = f"{'split':7s} {'lang':4s} {'n':>3s} {'exact':>11s} {'wrong':>11s} {'(partial':>9s} {'other)':>7s} {'nothing':>11s} {'p50 ms':>7s} {'p95 ms':>7s} {'schema':>7s}"
    print(header)
    groups: list[tuple[str, str, Callable[[Outcome], bool]]] = []
    for split in ("dev", "report", "all"):
        for language in ("en", "ko", "all"):
            groups.append((split, language, lambda o, s=split, lang=language: (s in ("all", o.row["split"])) and (lang in ("all", o.row["language"]))))
    for split, language, chosen in groups:
        group = [o for o in outcomes if chosen(o)]
        n = len(group)
        if not n:
            continue

        def share(*kinds: str, group: list[Outcome] = group, n: int = n) -> str:
            k = sum(o.verdict in kinds for o in group)
            return f"{k:2d} ({k / n:4.0%})"

        with_address = sum(o.row["address"] is not None for o in group)
        times = [o.seconds * 1000 for o in group]
        print(f"{split:7s} {language:4s} {n:3d} {share('exact'):>11s} {share('partial', 'other'):>11s} "
              f"{sum(o.verdict == 'partial' for o in group):9d} {sum(o.verdict == 'other' for o in group):7d} "
              f"{share('nothing'):>11s} {percentile(times, 0.5):7.0f} {percentile(times, 0.95):7.0f} "
              f"{sum(o.obeys for o in group):3d}/{n:<3d}")
        if split == "all" and language == "all":
            filled = sum(o.verdict == "exact" for o in group)
            print(f"\nof the {with_address} messages that hold an address, {filled} filled exactly; "
                  f"{n - with_address} hold none ({sum(o.row['address'] is None and o.verdict != 'nothing' for o in group)} filled anyway)")


async def main_async(args: argparse.Namespace) -> None:
    action = load_actions(sample_actions_path()).action(ACTION)
    rows = [row for row in load_rows() if args.split in ("all", row["split"])]
    stack = None
    address, key = args.generator, args.key
    if address is None:
        from supportbot.core.settings import default_data_dir
        from supportbot.models import default_model_dir, is_prepared
        from supportbot_cli.stack import Ports, Stack

        model_dir = default_model_dir(default_data_dir())
        if not is_prepared(model_dir):
            raise SystemExit(f"the default model is not prepared in {model_dir}: run `supportbot up` once")
        stack = Stack(Path(tempfile.mkdtemp(prefix="supportbot-bench-slots-")), services=("generator",), ports=Ports.free(),
                      extra_env={"SUPPORTBOT_GENERATOR_MODEL": str(model_dir)})
        started = time.perf_counter()
        stack.start()
        print(f"generator started in {time.perf_counter() - started:.0f} s")
        address, key = stack.address("generator"), stack.key("service")
    try:
        metadata = ((API_KEY_METADATA_KEY, key),) if key else ()
        async with create_channel(address, metadata=metadata) as channel:
            generate = stub_caller(generator_pb2_grpc.GeneratorServiceStub(channel), timeout_s=TIMEOUT_S)
            await run(rows[:1], generate, action)  # warm-up: the first call compiles the schema's grammar
            outcomes = await run(rows, generate, action)
        report(outcomes, verbose=args.verbose)
    finally:
        if stack is not None:
            stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", choices=("dev", "report", "all"), default="all")
    parser.add_argument("--generator", help="host:port of a running generator (default: start one here)")
    parser.add_argument("--key", default="", help="an API key the running generator accepts")
    parser.add_argument("--verbose", action="store_true", help="print every message")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
