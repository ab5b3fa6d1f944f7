"""Gateway benchmarks on a started stack (retriever, generator on vLLM, gateway, Valkey):

1. The gateway's overhead over calling the generator directly with the same prompt: time to
   first token and total time of a turn, as ratios (target: at most 1.10). The sources for the
   direct calls are searched in a pass of their own before any timed turn, and the retriever runs
   without its query-embedding cache, so every gateway turn pays for embedding its question as a
   new customer's does; who goes first alternates (vLLM's prefix cache favours the second).
2. The HTTP API (services/web, Server-Sent Events) vs gRPC to the gateway, same question, same
   answer mode: time to first answer text and total (target: HTTP adds at most 10%).
3. 50 concurrent sessions of 5 turns each: errors, throughput, and whether every turn reached the
   interaction log files (target: no errors, no lost records).
4. The answer cache on a paraphrase replay (verified answers): the golden questions are asked
   once, then their paraphrases without and with the cache, in alternating order after a warm-up
   of both: hit rate, hits on the wrong question, near misses served (target: 0), latency with and
   without. The paraphrases are the report part (bench/data/paraphrases-report.jsonl), which the
   cache's thresholds were not chosen on (bench/answer_cache.py).

Run: python bench/gateway_bench.py [--sessions 50] [--turns 5] [--answer-tokens 32]
         [--cache-questions 20] [--only overhead,web,load,cache]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from supportbot.client import (
    SupportbotClient,  # noqa: E402
    ingest_quietly,  # noqa: E402
)
from supportbot.core.settings import default_data_dir  # noqa: E402
from supportbot.models import default_model_dir, prepare_default_model  # noqa: E402
from supportbot.sample import HELPCENTER, load_golden_set  # noqa: E402
from supportbot.v1 import chat_pb2, generator_pb2  # noqa: E402
from supportbot_cli.stack import Ports, Stack  # noqa: E402

console = Console()
PARAPHRASES = Path(__file__).parent / "data" / "paraphrases-report.jsonl"


async def gateway_turn(client: SupportbotClient, question: str) -> tuple[float, float, list, chat_pb2.ChatResult]:
    started = time.perf_counter()
    first = 0.0
    sources: list = []
    # Generative: the comparison is with the model's own first token, as the direct call has.
    async for event in client.chat(question, answer_mode=chat_pb2.ANSWER_MODE_GENERATIVE, bypass_answer_cache=True):
        if event.kind == "sources":
            sources = event.sources
        elif event.kind == "delta" and not first:
            first = time.perf_counter() - started
        elif event.kind == "result":
            return first, time.perf_counter() - started, sources, event.result
    raise RuntimeError("no result")


async def direct_turn(client: SupportbotClient, question: str, sources: list, tokens: int) -> tuple[float, float]:
    started = time.perf_counter()
    first = 0.0
    request = generator_pb2.GenerateRequest(question=question, sources=sources, max_tokens=tokens)
    async for event in client.generator_stub.Generate(request):
        if event.HasField("delta") and not first:
            first = time.perf_counter() - started
    return first, time.perf_counter() - started


def stage_shares(latencies: chat_pb2.StageLatencies) -> dict[str, float]:
    """Where a gateway turn's time before the first token went, from the stage latencies the
    gateway reports in its result (session: from the message until the session is opened and
    locked; the rest until the first token: routing, the answer-cache lookup, the prompt and the
    generator's own time to first token)."""
    before_answer = latencies.session_ms + latencies.rewrite_ms + latencies.retrieval_ms
    return {
        "session_ms": latencies.session_ms, "rewrite_ms": latencies.rewrite_ms,
        "retrieval_ms": latencies.retrieval_ms, "answer_to_first_token_ms": latencies.first_token_ms - before_answer,
    }


async def overhead(stack: Stack, questions: list[str], tokens: int) -> dict[str, float]:
    gateway_ttft, gateway_total, direct_ttft, direct_total = [], [], [], []
    stages: list[dict[str, float]] = []
    async with SupportbotClient(
        stack.address("gateway"), retriever=stack.address("retriever"), generator=stack.address("generator"),
        # The admin key: the same client searches and generates directly, which customers may not.
        api_key=stack.key("admin"),
    ) as client:
        # The same sources the gateway retrieves for a new session's question, searched before any
        # timed turn (a search just before a gateway turn would leave its query embedded already).
        sources_of = {question: list((await client.search(question, top_k=4)).results) for question in questions}
        warm_up = questions[0]
        await gateway_turn(client, warm_up)
        await direct_turn(client, warm_up, sources_of[warm_up], tokens)
        for index, question in enumerate(questions):
            sources = sources_of[question]
            if not sources:
                continue
            # vLLM caches prompt prefixes: alternate who goes first so neither side gets the
            # cached prompt more often.
            if index % 2:
                d_first, d_total = await direct_turn(client, question, sources, tokens)
                first, total, _, result = await gateway_turn(client, question)
            else:
                first, total, _, result = await gateway_turn(client, question)
                d_first, d_total = await direct_turn(client, question, sources, tokens)
            stages.append(stage_shares(result.latencies))
            gateway_ttft.append(first)
            gateway_total.append(total)
            direct_ttft.append(d_first)
            direct_total.append(d_total)
    return {
        "turns": len(gateway_ttft),
        "gateway_ttft_ms": 1000 * statistics.median(gateway_ttft),
        "direct_ttft_ms": 1000 * statistics.median(direct_ttft),
        "gateway_total_ms": 1000 * statistics.median(gateway_total),
        "direct_total_ms": 1000 * statistics.median(direct_total),
        "stages_ms": {name: statistics.median(stage[name] for stage in stages) for name in stages[0]} if stages else {},
    }


async def http_turn(http, key: str, question: str, mode: str) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    first = 0.0
    body = {"message": question, "answerMode": f"ANSWER_MODE_{mode.upper()}", "bypassAnswerCache": True}
    async with http.stream("POST", "/v1/chat", json=body, headers={"authorization": f"Bearer {key}"}) as response:
        event = ""
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: ") and event == "delta" and not first:
                first = time.perf_counter() - started
    return first, time.perf_counter() - started


async def grpc_turn(client: SupportbotClient, question: str, mode: str) -> tuple[float, float]:
    started = time.perf_counter()
    first = 0.0
    async for event in client.chat(
        question, answer_mode=chat_pb2.AnswerMode.Value(f"ANSWER_MODE_{mode.upper()}"), bypass_answer_cache=True
    ):
        if event.kind == "delta" and not first:
            first = time.perf_counter() - started
    return first, time.perf_counter() - started


async def http_vs_grpc(stack: Stack, questions: list[str], mode: str) -> dict[str, float]:
    import httpx

    # The agent key: generative answers are not a customer key's to ask for (the operator's
    # customer_answer_modes), and both modes are timed on the same path.
    key = stack.key("agent")
    figures: dict[str, list[float]] = {"http_ttft": [], "grpc_ttft": [], "http_total": [], "grpc_total": []}
    async with SupportbotClient(stack.address("gateway"), api_key=key) as client, \
            httpx.AsyncClient(base_url=f"http://{stack.host}:{stack.ports.web}", timeout=300) as http:
        await grpc_turn(client, questions[0], mode)
        await http_turn(http, key, questions[0], mode)  # warm-up of both paths
        for index, question in enumerate(questions):
            # Alternate who goes first: vLLM's prefix cache favours the second.
            order = ("http", "grpc") if index % 2 else ("grpc", "http")
            for path in order:
                first, total = await (http_turn(http, key, question, mode) if path == "http" else grpc_turn(client, question, mode))
                figures[f"{path}_ttft"].append(first)
                figures[f"{path}_total"].append(total)
    return {name: 1000 * statistics.median(values) for name, values in figures.items()} | {"turns": len(questions)}


async def concurrent_sessions(stack: Stack, questions: list[str], sessions: int, turns: int) -> dict[str, float]:
    errors: list[str] = []
    turn_ids: list[str] = []

    async def one_session(index: int) -> None:
        async with SupportbotClient(stack.address("gateway"), api_key=stack.key("customer")) as client:
            session_id = ""
            for turn in range(turns):
                question = questions[(index * turns + turn) % len(questions)]
                try:
                    session_id, result, _ = await client.ask(question, session_id=session_id)
                    turn_ids.append(result.turn_id)
                except Exception as exc:  # noqa: BLE001 - every failure is counted and shown
                    errors.append(f"{type(exc).__name__}: {exc}")

    started = time.perf_counter()
    await asyncio.gather(*(one_session(i) for i in range(sessions)))
    elapsed = time.perf_counter() - started
    logged: set[str] = set()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        logged = {
            json.loads(line)["turn_id"]
            for path in (stack.data_dir / "interactions").glob("*.jsonl")
            for line in path.read_text().splitlines()
        }
        if set(turn_ids) <= logged:
            break
        await asyncio.sleep(0.5)
    import urllib.request

    with urllib.request.urlopen(f"http://{stack.host}:{stack.ports.gateway_metrics}/metrics", timeout=10) as response:
        exposition = response.read().decode()
    series = [line for line in exposition.splitlines() if line and not line.startswith("#")]
    return {
        "metric_series": len(series),
        "support_series": sum(1 for line in series if line.startswith(("supportbot_chat", "supportbot_agent", "supportbot_handoffs",
                                                                       "supportbot_feedback", "supportbot_sessions",
                                                                       "supportbot_retrieval", "supportbot_suggested"))),
        "turns": len(turn_ids),
        "errors": len(errors),
        "first_error": errors[0] if errors else "",
        "seconds": elapsed,
        "turns_per_s": len(turn_ids) / elapsed,
        "missing_log_records": len(set(turn_ids) - logged),
    }


async def timed_ask(client: SupportbotClient, question: str, **options: object) -> tuple[float, chat_pb2.ChatResult]:
    started = time.perf_counter()
    _, result, _ = await client.ask(question, answer_mode=chat_pb2.ANSWER_MODE_VERIFIED, **options)  # type: ignore[arg-type]
    return time.perf_counter() - started, result


async def answer_cache_replay(stack: Stack, questions: dict[str, str], records: list[dict], limit: int) -> dict[str, float]:
    chosen = [r for r in records if r.get("paraphrases") and r["golden_id"] in questions][:limit]
    asked = {r["golden_id"] for r in chosen}
    near_misses = [q for r in records if r["golden_id"] in asked for q in r.get("near_misses", [])]
    # Every turn that can fill the cache, by the golden question it means: a paraphrase's own
    # answer, cached on a miss, may answer a later paraphrase of the same question.
    golden_of_turn: dict[str, str] = {}
    without, with_cache, hit_times = [], [], []
    hits = wrong = served = 0
    async with SupportbotClient(stack.address("gateway"), api_key=stack.key("customer")) as client:
        for record in chosen:
            _, result = await timed_ask(client, questions[record["golden_id"]])
            golden_of_turn[result.turn_id] = record["golden_id"]
        # Warm-up of both sides: the model path on a question outside the replay, and a hit.
        outside = next(q for golden, q in questions.items() if golden not in asked)
        await timed_ask(client, outside, bypass_answer_cache=True)
        await timed_ask(client, questions[chosen[0]["golden_id"]])
        pairs = [(record, paraphrase) for record in chosen for paraphrase in record["paraphrases"]]
        for index, (record, paraphrase) in enumerate(pairs):
            # vLLM's prefix cache favours whichever side asks second: alternate.
            for side in (("without", "with") if index % 2 == 0 else ("with", "without")):
                seconds, result = await timed_ask(client, paraphrase, bypass_answer_cache=side == "without")
                if side == "without":
                    without.append(seconds)
                    continue
                with_cache.append(seconds)
                golden_of_turn[result.turn_id] = record["golden_id"]
                if result.cached:
                    hits += 1
                    hit_times.append(seconds)
                    wrong += golden_of_turn.get(result.cached_from_turn_id) != record["golden_id"]
        for question in near_misses:
            _, result = await timed_ask(client, question)
            served += result.cached
    return {
        "questions": len(chosen), "paraphrases": len(with_cache), "hits": hits, "wrong": wrong,
        "near_misses": len(near_misses), "near_misses_served": served,
        "without_ms": 1000 * statistics.median(without), "with_ms": 1000 * statistics.median(with_cache),
        "hit_ms": 1000 * statistics.median(hit_times) if hit_times else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--answer-tokens", type=int, default=32)
    parser.add_argument("--overhead-questions", type=int, default=20)
    parser.add_argument("--cache-questions", type=int, default=20)
    parser.add_argument("--only", default="overhead,web,load,cache", help="Comma-separated sections to run.")
    args = parser.parse_args()
    sections = set(args.only.split(","))
    prepare_default_model(default_data_dir())
    questions = [item["question"] for item in load_golden_set() if item["answerable"]]
    stack = Stack(
        Path(tempfile.mkdtemp(prefix="supportbot-gateway-bench-")),
        services=("retriever", "generator", "gateway", "web"),
        ports=Ports.free(),
        extra_env={
            "SUPPORTBOT_GENERATOR_MODEL": str(default_model_dir(default_data_dir())),
            "SUPPORTBOT_GATEWAY_MAX_ANSWER_TOKENS": str(args.answer_tokens),
            # Each turn embeds its question, as a new customer's does: a repeated question must not
            # find its embedding cached by an earlier search or turn of the bench.
            "SUPPORTBOT_RETRIEVER_QUERY_CACHE_SIZE": "0",
            # The cache replay asks verified answers with a customer key, as a customer of an
            # operator who offers them does (customers get extractive answers by default).
            "SUPPORTBOT_GATEWAY_CUSTOMER_ANSWER_MODES": "verified",
        },
    )
    try:
        with console.status("starting the stack"):
            stack.start()
            asyncio.run(ingest_quietly([HELPCENTER], "", stack.address("retriever"), stack.key("admin")))
        over = web = load = cache = None
        if "overhead" in sections:
            with console.status("gateway vs direct generator"):
                over = asyncio.run(overhead(stack, questions[: args.overhead_questions], args.answer_tokens))
        if "web" in sections:
            with console.status("HTTP/SSE vs gRPC"):
                web = {mode: asyncio.run(http_vs_grpc(stack, questions[: args.overhead_questions], mode))
                       for mode in ("extractive", "generative")}
        if "load" in sections:
            with console.status(f"{args.sessions} sessions x {args.turns} turns"):
                load = asyncio.run(concurrent_sessions(stack, questions, args.sessions, args.turns))
        if "cache" in sections:
            with console.status("answer cache: paraphrase replay"):
                golden = {item["id"]: item["question"] for item in load_golden_set() if not item.get("follow_up_of")}
                records = [json.loads(line) for line in PARAPHRASES.read_text().splitlines() if line.strip()]
                cache = asyncio.run(answer_cache_replay(stack, golden, records, args.cache_questions))
    finally:
        stack.stop()
    report(args, over, web, load, cache)


def report(args: argparse.Namespace, over: dict | None, web: dict | None, load: dict | None, cache: dict | None) -> None:
    if cache:
        console.print(
            f"Answer cache, verified answers, {cache['questions']} golden questions asked once, then "
            f"{cache['paraphrases']} paraphrases: {cache['hits']} hits ({cache['hits'] / cache['paraphrases']:.0%}), "
            f"{cache['wrong']} on the wrong question; {cache['near_misses_served']} of {cache['near_misses']} near misses "
            f"served from the cache. Median turn: {cache['without_ms']:.0f} ms without the cache, {cache['with_ms']:.0f} ms "
            f"with it ({cache['with_ms'] / cache['without_ms']:.2f}x), {cache['hit_ms']:.0f} ms on a hit "
            f"({cache['hit_ms'] / cache['without_ms']:.3f}x)."
        )
    if over is not None:
        overhead_table(args, over)
    if web is not None:
        web_table(web)
    if load is not None:
        console.print(
            f"{args.sessions} concurrent sessions x {args.turns} turns: {load['turns']} turns in {load['seconds']:.0f} s "
            f"({load['turns_per_s']:.1f} turns/s), {load['errors']} errors, {load['missing_log_records']} turns missing from the log; "
            f"the gateway's metrics endpoint then holds {load['metric_series']} series ({load['support_series']} of them support metrics)"
            + (f"; first error: {load['first_error']}" if load["first_error"] else "")
        )


def overhead_table(args: argparse.Namespace, over: dict) -> None:
    table = Table(title=f"Gateway overhead, median of {over['turns']} turns ({args.answer_tokens} answer tokens)")
    for column in ("", "gateway", "generator directly", "ratio"):
        table.add_column(column, justify="right")
    table.add_row("time to first token (ms)", f"{over['gateway_ttft_ms']:.0f}", f"{over['direct_ttft_ms']:.0f}", f"{over['gateway_ttft_ms'] / over['direct_ttft_ms']:.2f}")
    table.add_row("total (ms)", f"{over['gateway_total_ms']:.0f}", f"{over['direct_total_ms']:.0f}", f"{over['gateway_total_ms'] / over['direct_total_ms']:.2f}")
    console.print(table)
    stages = Table(title="The gateway's time to first token by stage (median of the turns, as the gateway reports them)")
    stages.add_column("stage")
    stages.add_column("ms", justify="right")
    for name, ms in over.get("stages_ms", {}).items():
        stages.add_row(name.removesuffix("_ms").replace("_", " "), f"{ms:.0f}")
    console.print(stages)


def web_table(web: dict) -> None:
    table = Table(title="HTTP/SSE (services/web) vs gRPC to the gateway, same questions, median")
    for column in ("answer mode", "", "HTTP/SSE", "gRPC", "ratio"):
        table.add_column(column, justify="right")
    for mode, figures in web.items():
        for label, name in (("time to first text (ms)", "ttft"), ("total (ms)", "total")):
            http_ms, grpc_ms = figures[f"http_{name}"], figures[f"grpc_{name}"]
            table.add_row(mode, label, f"{http_ms:.1f}", f"{grpc_ms:.1f}", f"{http_ms / grpc_ms:.2f}")
    console.print(table)


if __name__ == "__main__":
    main()
