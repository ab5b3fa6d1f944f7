"""Generator benchmarks in one run on this machine, same model, same grounded prompts (golden
questions with their retrieved sources), figures printed side by side:

- single-stream tokens/s and time to first token;
- throughput with 1, 4 and 16 concurrent requests (continuous batching);
- the same workload with Hugging Face transformers' generate() called sequentially;
- eager vs compiled start-up time and throughput (--skip-compiled leaves the slow one out);
- tokens saved by early stopping on the golden questions: turn-boundary stop strings against the
  fair baseline (stop at the end-of-turn token only) and against no stopping at all.

Run: python bench/generator_bench.py [--tokens 64] [--skip-compiled]
Targets: 16 concurrent requests >= 4x single-stream throughput and >= 3x the transformers baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

console = Console()


def grounded_prompts(tokenizer, limit: int) -> list[str]:  # type: ignore[no-untyped-def]
    from bench.common import sample_knowledge_base
    from services.generator.prompting import build_grounded_messages
    from services.generator.settings import DEFAULT_SYSTEM_PROMPT
    from services.retriever.server import source_message
    from supportbot.sample import conversational_query, load_golden_set

    kb = sample_knowledge_base("edge")
    golden = load_golden_set()
    by_id = {item["id"]: item for item in golden}
    prompts = []
    for item in [g for g in golden if g["answerable"]][:limit]:
        hits = kb.search(conversational_query(item, by_id), top_k=4).hits
        built = build_grounded_messages(
            system_prompt=DEFAULT_SYSTEM_PROMPT,
            question=item["question"],
            sources=[source_message(h.chunk, h.score, h.dense_score) for h in hits],
            history=[],
            budget_tokens=3000,
            count=lambda text: len(tokenizer.encode(text, add_special_tokens=False)),
        )
        prompts.append(tokenizer.apply_chat_template(built.messages, tokenize=False, add_generation_prompt=True))
    kb.store.close()
    return prompts


async def run_one(engine, prompt: str, params) -> tuple[float, int, float]:  # type: ignore[no-untyped-def]
    """(time to first token, tokens, seconds)."""
    started = time.perf_counter()
    first = None
    tokens = 0
    async for output in engine.generate(prompt, params, uuid.uuid4().hex):
        tokens += len(output.outputs[0].token_ids)
        if first is None and tokens:
            first = time.perf_counter() - started
    return first or 0.0, tokens, time.perf_counter() - started


async def throughput(engine, prompts: list[str], concurrency: int, params, rounds: int) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    total = 0
    for round_index in range(rounds):
        batch = [prompts[(round_index * concurrency + i) % len(prompts)] for i in range(concurrency)]
        results = await asyncio.gather(*(run_one(engine, p, params) for p in batch))
        total += sum(tokens for _, tokens, _ in results)
    return total / (time.perf_counter() - started)


async def engine_figures(eager: bool, prompts: list[str], tokens: int, with_stops: bool) -> dict:
    from vllm import SamplingParams
    from vllm.sampling_params import RequestOutputKind

    from services.generator.engine import build_engine
    from services.generator.settings import GeneratorSettings

    started = time.perf_counter()
    engine = build_engine(GeneratorSettings(enforce_eager=eager, max_num_seqs=32))
    figures: dict = {"startup_s": None}
    # Fixed-length generations make every configuration do the same work.
    fixed = SamplingParams(max_tokens=tokens, ignore_eos=True, temperature=0, output_kind=RequestOutputKind.DELTA)
    await run_one(engine, prompts[0], fixed)  # warm-up
    figures["startup_s"] = time.perf_counter() - started
    singles = [await run_one(engine, p, fixed) for p in prompts[:4]]
    figures["ttft_ms"] = 1000 * sum(s[0] for s in singles) / len(singles)
    figures["single_tps"] = sum(s[1] for s in singles) / sum(s[2] for s in singles)
    for concurrency in (1, 4, 16):
        figures[f"tps_{concurrency}"] = await throughput(engine, prompts, concurrency, fixed, rounds=2 if concurrency < 16 else 1)
    if with_stops:
        from services.generator.engine import stop_token_ids
        from services.generator.settings import DEFAULT_STOP_STRINGS, DEFAULT_STOP_TOKENS

        boundary_ids = stop_token_ids(engine.tokenizer, DEFAULT_STOP_TOKENS)

        def params(stop: list[str] | None, ignore_eos: bool):  # type: ignore[no-untyped-def]
            return SamplingParams(
                max_tokens=256, temperature=0, stop=stop, stop_token_ids=boundary_ids if stop else None,
                ignore_eos=ignore_eos, output_kind=RequestOutputKind.DELTA,
            )

        async def total_tokens(stop: list[str] | None, ignore_eos: bool) -> int:
            results = await asyncio.gather(*(run_one(engine, p, params(stop, ignore_eos)) for p in prompts))
            return sum(r[1] for r in results)

        # With the chat template the model ends its turn with its end-of-turn token; the stop
        # strings are the safety net for models (or templates) that run on into the next speaker.
        figures["stopping"] = {
            "end-of-turn token + turn-boundary stops": await total_tokens(DEFAULT_STOP_STRINGS, False),
            "end-of-turn token only": await total_tokens(None, False),
            "turn-boundary stops only (end-of-turn ignored)": await total_tokens(DEFAULT_STOP_STRINGS, True),
            "no early stopping (runs to max_tokens=256)": await total_tokens(None, True),
        }
    engine.shutdown()
    return figures


def transformers_tps(model_dir: str, prompts: list[str], tokens: int) -> float:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()

    def generate(prompt: str) -> int:
        inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        output = model.generate(**inputs, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False)
        return output.shape[1] - inputs["input_ids"].shape[1]

    with torch.inference_mode():
        # Warm-up, as the engine gets: the first call pays for lazy initialisation and allocation.
        generate(prompts[0])
        generated, started = 0, time.perf_counter()
        for prompt in prompts[:4]:
            generated += generate(prompt)
    return generated / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=64, help="tokens per request in the throughput runs")
    parser.add_argument("--prompts", type=int, default=32, help="golden questions used")
    parser.add_argument("--skip-compiled", action="store_true")
    args = parser.parse_args()

    from transformers import AutoTokenizer

    from services.generator.settings import GeneratorSettings

    model_dir = GeneratorSettings().resolved_model()
    prompts = grounded_prompts(AutoTokenizer.from_pretrained(model_dir), args.prompts)
    results = {"eager": asyncio.run(engine_figures(True, prompts, args.tokens, with_stops=True))}
    if not args.skip_compiled:
        results["compiled"] = asyncio.run(engine_figures(False, prompts, args.tokens, with_stops=False))
    baseline = transformers_tps(model_dir, prompts, args.tokens)

    table = Table(title=f"Generator on vLLM (CPU), SmolLM2-135M, {args.tokens} tokens per request")
    table.add_column("figure")
    for mode in results:
        table.add_column(mode, justify="right")
    rows = [
        ("start-up incl. first request (s)", "startup_s", "{:.0f}"),
        ("time to first token, single stream (ms)", "ttft_ms", "{:.0f}"),
        ("single-stream tokens/s", "single_tps", "{:.1f}"),
        ("throughput, 1 concurrent (tokens/s)", "tps_1", "{:.1f}"),
        ("throughput, 4 concurrent (tokens/s)", "tps_4", "{:.1f}"),
        ("throughput, 16 concurrent (tokens/s)", "tps_16", "{:.1f}"),
    ]
    for label, key, fmt in rows:
        table.add_row(label, *(fmt.format(results[m][key]) for m in results))
    console.print(table)
    eager = results["eager"]
    console.print(f"transformers generate(), sequential: {baseline:.1f} tokens/s")
    console.print(f"16 concurrent / 1 concurrent (eager): {eager['tps_16'] / eager['tps_1']:.1f}x (target >= 4x)")
    console.print(f"16 concurrent (eager) / transformers: {eager['tps_16'] / baseline:.1f}x (target >= 3x)")
    stopping = Table(title=f"Early stopping: tokens generated for {len(prompts)} golden questions (max 256)")
    stopping.add_column("stopping")
    stopping.add_column("tokens", justify="right")
    # The fair baseline is a generation that stops where the model ends its turn; running to
    # max_tokens (ignore_eos) is the upper bound nobody deploys.
    stopping.add_column("saved vs end-of-turn only", justify="right")
    stopping.add_column("saved vs no stopping", justify="right")
    fair = eager["stopping"]["end-of-turn token only"]
    unstopped = eager["stopping"]["no early stopping (runs to max_tokens=256)"]
    for label, count in eager["stopping"].items():
        stopping.add_row(label, str(count), f"{100 * (fair - count) / fair:.1f}%", f"{100 * (unstopped - count) / unstopped:.0f}%")
    console.print(stopping)


if __name__ == "__main__":
    main()
