"""Follow-up benchmark: do conversations keep their thread?

Conversations written as customers talk (bench/data/conversations.jsonl, English over the
sample help center and Korean over the Korean one, three or four turns each; a held-out set in
conversations_held_out.jsonl, never used to shape the code) are played on a started stack
(retriever, gateway and web on the embedded defaults: quoted answers, no model), two ways:

- in a session: one gRPC session per conversation, each message sent with the session id;
- through the OpenAI-compatible endpoint as an OpenAI client holds a conversation: every
  request carries the `messages` so far (the customer's and the endpoint's own earlier answers),
  no session id; and, side by side, with the last message only (what the endpoint answered
  before it read the history).

Per set and language it prints key-fact recall of the first questions and of the follow-ups,
and how many follow-ups hold all their key facts (the issue's "11 of 13"). "Before" figures
come from the same script against the code before the change: `--code DIR` runs the services
from another checkout (e.g. `git archive 2054bc2 | tar -x -C /tmp/base`).

    python bench/followups.py                         # dev set, this checkout
    python bench/followups.py --sets dev,held-out     # the held-out set too (once, at the end)
    python bench/followups.py --code /tmp/base        # the services of another checkout
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import httpx  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from supportbot.client import SupportbotClient, ingest_quietly  # noqa: E402
from supportbot.evaluation.heuristic import key_fact_recall  # noqa: E402
from supportbot.sample import HELPCENTER, KOREAN_COLLECTION, KOREAN_HELPCENTER  # noqa: E402
from supportbot_cli.stack import Ports, Stack  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"
SETS = {"dev": DATA / "conversations.jsonl", "held-out": DATA / "conversations_held_out.jsonl"}
console = Console()


@dataclass
class Played:
    """One conversation played one way: the answer and key-fact recall of each turn."""

    conversation: dict
    answers: list[str] = field(default_factory=list)
    rewritten: list[str] = field(default_factory=list)

    def recalls(self) -> list[float]:
        return [key_fact_recall(a, t["key_facts"]) for a, t in zip(self.answers, self.conversation["turns"], strict=True)]


def load(name: str) -> list[dict]:
    return [json.loads(line) for line in SETS[name].read_text().splitlines() if line.strip()]


async def in_session(client: SupportbotClient, conversation: dict) -> Played:
    played = Played(conversation)
    session_id = ""
    for turn in conversation["turns"]:
        session_id, result, _ = await client.ask(
            turn["message"], session_id=session_id, collection="" if session_id else conversation["collection"],
            bypass_answer_cache=True,
        )
        played.answers.append(result.answer)
        played.rewritten.append(result.rewritten_question)
    return played


async def through_openai(http: httpx.AsyncClient, key: str, conversation: dict, *, history: bool) -> Played:
    played = Played(conversation)
    messages: list[dict[str, str]] = []
    for turn in conversation["turns"]:
        messages.append({"role": "user", "content": turn["message"]})
        body = {"model": "supportbot", "messages": messages if history else messages[-1:],
                "collection": conversation["collection"]}
        response = await http.post("/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"})
        response.raise_for_status()
        answer = response.json()["choices"][0]["message"]["content"]
        messages.append({"role": "assistant", "content": answer})
        played.answers.append(answer)
    return played


def summary(played: list[Played]) -> dict[str, float]:
    first = [p.recalls()[0] for p in played]
    follow = [r for p in played for r in p.recalls()[1:]]
    return {
        "conversations": len(played),
        "first_recall": statistics.fmean(first) if first else 0.0,
        "follow_up_recall": statistics.fmean(follow) if follow else 0.0,
        "follow_ups_whole": sum(r == 1.0 for r in follow),
        "follow_ups": len(follow),
    }


async def play(stack: Stack, conversations: list[dict]) -> dict[str, list[Played]]:
    key = stack.key("customer")
    ways: dict[str, list[Played]] = {"session": [], "openai-history": [], "openai-last-message": []}
    async with SupportbotClient(stack.address("gateway"), api_key=key) as client, \
            httpx.AsyncClient(base_url=f"http://{stack.host}:{stack.ports.web}", timeout=120) as http:
        for conversation in conversations:
            ways["session"].append(await in_session(client, conversation))
            ways["openai-history"].append(await through_openai(http, key, conversation, history=True))
            ways["openai-last-message"].append(await through_openai(http, key, conversation, history=False))
    return ways


def report(results: dict[str, dict[str, list[Played]]], verbose: bool) -> dict:
    table = Table(title="Follow-ups: key-fact recall (bench/followups.py)")
    for column in ("set", "language", "played", "first questions", "follow-ups", "follow-ups whole"):
        table.add_column(column, justify="left" if column in ("set", "language", "played") else "right")
    figures: dict = {}
    for set_name, ways in results.items():
        for way, played in ways.items():
            for language in ("en", "ko"):
                subset = [p for p in played if p.conversation["language"] == language]
                if not subset:
                    continue
                s = summary(subset)
                figures[f"{set_name}/{way}/{language}"] = s
                table.add_row(set_name, language, way, f"{s['first_recall']:.3f}", f"{s['follow_up_recall']:.3f}",
                              f"{s['follow_ups_whole']} of {s['follow_ups']}")
    console.print(table)
    if verbose:
        for set_name, ways in results.items():
            for played in ways["session"]:
                for index, (recall, turn) in enumerate(zip(played.recalls(), played.conversation["turns"], strict=True)):
                    if recall < 1.0:
                        console.print(f"[yellow]{set_name} {played.conversation['id']} turn {index + 1}[/yellow] "
                                      f"{turn['message']!r} searched as {played.rewritten[index]!r}; "
                                      f"facts {turn['key_facts']}; answer {played.answers[index][:160]!r}", markup=False)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default="dev", help="comma-separated: dev, held-out")
    parser.add_argument("--code", type=Path, default=None, help="run the services from this checkout instead")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--verbose", action="store_true", help="list the session turns that lost a key fact")
    args = parser.parse_args()
    extra_env = {"SUPPORTBOT_GATEWAY_ANSWER_MODE": "extractive"}
    if args.code:
        # `python -m services.X` imports from the working directory first.
        extra_env["PYTHONPATH"] = str(args.code.resolve())
        os.chdir(args.code)
    stack = Stack(Path(tempfile.mkdtemp(prefix="supportbot-followups-")), services=("retriever", "gateway", "web"),
                  ports=Ports.free(), extra_env=extra_env)
    try:
        with console.status("starting retriever, gateway and web"):
            stack.start()
        with console.status("ingesting the English and Korean sample help centers"):
            admin = stack.key("admin")
            asyncio.run(ingest_quietly([HELPCENTER], "", stack.address("retriever"), admin))
            asyncio.run(ingest_quietly([KOREAN_HELPCENTER], KOREAN_COLLECTION, stack.address("retriever"), admin))
        results = {}
        for name in args.sets.split(","):
            with console.status(f"playing the {name} conversations"):
                results[name] = asyncio.run(play(stack, load(name)))
        figures = report(results, args.verbose)
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2))
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
