"""GeneratorService over gRPC on vLLM's async engine: continuous batching across concurrent
requests, text streamed as deltas, aborted in the engine as soon as the caller goes away."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
from prometheus_client import Counter, Gauge, Histogram

from services.generator.adapters import AdapterRegistry, RegisteredAdapter
from services.generator.engine import build_engine, kernel_settings, stop_token_ids
from services.generator.prompting import build_grounded_messages, control_token_filter, raw_messages
from services.generator.settings import GeneratorSettings
from supportbot.answers.citations import parse_citations
from supportbot.answers.repetition import RepetitionDetector
from supportbot.answers.wire import citation_messages
from supportbot.core.auth import AuthInterceptor, KeyRing
from supportbot.core.errors import InvalidArgument, ResourceExhausted
from supportbot.core.language import detect_language
from supportbot.core.server import GrpcService
from supportbot.v1 import common_pb2, generator_pb2, generator_pb2_grpc

log = logging.getLogger(__name__)

TIME_TO_FIRST_TOKEN = Histogram(
    "supportbot_generator_time_to_first_token_seconds",
    "Time from request to the first streamed text.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32),
)
TOKENS_PER_SECOND = Histogram(
    "supportbot_generator_tokens_per_second",
    "Generated tokens per second of each request, after its first token.",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
)
QUEUE_DEPTH = Gauge("supportbot_generator_queue_depth", "Requests waiting beyond the running batch.")
IN_FLIGHT = Gauge("supportbot_generator_in_flight_requests", "Requests the engine is working on.")
FINISHED = Counter("supportbot_generator_finished_total", "Finished requests by reason.", ["reason"])
GENERATED_TOKENS = Counter("supportbot_generator_generated_tokens_total", "Tokens generated.")
REPETITION_STOPS = Counter(
    "supportbot_generator_repetition_stops_total",
    "Generations stopped early because the text began repeating itself.",
)
SAVED_TOKENS = Counter(
    "supportbot_generator_repetition_saved_tokens_total",
    "Tokens of max_tokens not generated because a repeating generation was stopped early.",
)

_FINISH_NAMES = {
    common_pb2.FINISH_REASON_END_OF_TURN: "end_of_turn",
    common_pb2.FINISH_REASON_STOP_STRING: "stop_string",
    common_pb2.FINISH_REASON_LENGTH: "length",
    common_pb2.FINISH_REASON_ABORTED: "aborted",
    common_pb2.FINISH_REASON_REPETITION: "repetition",
}


def finish_reason(output: Any) -> common_pb2.FinishReason:
    if output.finish_reason == "length":
        return common_pb2.FINISH_REASON_LENGTH
    if output.finish_reason == "stop":
        # No stop reason: the model's end-of-turn (EOS) token. A string or a token id: one of
        # the turn-boundary stops.
        return common_pb2.FINISH_REASON_END_OF_TURN if output.stop_reason is None else common_pb2.FINISH_REASON_STOP_STRING
    return common_pb2.FINISH_REASON_ABORTED


def ending(request: generator_pb2.GenerateRequest, last: Any, *, repeated: bool, produced: bool) -> common_pb2.FinishReason:
    """Why a request that ran to its end ended. Raises INVALID_ARGUMENT for a structured request
    the engine ended itself before its first token: its grammar backend could not compile the
    schema (xgrammar failed on the sample address's `{5,300}` pattern, bench/slot_filling.py),
    which is said rather than answered as empty text."""
    if repeated:
        return common_pb2.FINISH_REASON_REPETITION
    reason = finish_reason(last) if last is not None else common_pb2.FINISH_REASON_END_OF_TURN
    if request.json_schema and reason == common_pb2.FINISH_REASON_ABORTED and not produced:
        FINISHED.labels("aborted").inc()
        raise InvalidArgument(
            "the engine could not decode under this json_schema (its grammar backend supports a subset of JSON "
            "schema: drop lookaheads and large repeat counts from patterns, or bound strings with maxLength)")
    return reason


class GeneratorServicer(generator_pb2_grpc.GeneratorServiceServicer):
    def __init__(self, settings: GeneratorSettings, engine: Any) -> None:
        self.settings = settings
        self.engine = engine
        self.tokenizer = engine.tokenizer
        self.in_flight = 0
        self.capacity = engine.vllm_config.scheduler_config.max_num_seqs + settings.max_queued_requests
        self.adapters = {name: index + 1 for index, name in enumerate(sorted(settings.lora_adapters))}
        self.lora_enabled = bool(getattr(engine.vllm_config, "lora_config", None))
        self.registry = AdapterRegistry(
            settings.adapters_dir(), base_model=settings.resolved_model(), max_rank=settings.max_lora_rank
        )
        # vLLM tells adapters apart by an integer id: one per registered version, after the
        # configured adapters' ids, so a new version is loaded afresh rather than mistaken for
        # the old one.
        self.collection_lora_ids: dict[str, int] = {}
        self.unservable: set[str] = set()
        self.stop_token_ids = stop_token_ids(self.tokenizer, settings.stop_tokens)
        self.clean = control_token_filter(
            [*getattr(self.tokenizer, "all_special_tokens", []), *settings.stop_tokens,
             *(t.content for t in getattr(self.tokenizer, "added_tokens_decoder", {}).values() if t.special)]
        )

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    # -- request preparation ----------------------------------------------------------------
    def _max_tokens(self, requested: int) -> int:
        if requested < 0 or requested > self.settings.max_tokens_limit:
            raise InvalidArgument(
                f"max_tokens must be between 1 and {self.settings.max_tokens_limit}, got {requested}"
            )
        return requested or min(self.settings.default_max_tokens, self.settings.max_tokens_limit)

    def _check_size(self, request: generator_pb2.GenerateRequest) -> None:
        size = len(request.question) + sum(len(s.text) + len(s.title) for s in request.sources)
        size += sum(len(m.content) for m in request.history) + sum(len(m.content) for m in request.messages)
        if size > self.settings.max_request_chars:
            raise InvalidArgument(
                f"the request carries {size} characters of text, over the limit of {self.settings.max_request_chars}"
            )

    def prepare(self, request: generator_pb2.GenerateRequest) -> tuple[str, list[common_pb2.Source], int, int]:
        """The templated prompt; blocking (tokenizing), so the RPC runs it in a thread."""
        self._check_size(request)
        max_tokens = self._max_tokens(request.max_tokens)
        budget = self.settings.max_model_len - max_tokens - self.settings.template_overhead_tokens
        if request.messages:
            messages = raw_messages(request.messages, self.clean)
            sources: list[common_pb2.Source] = []
            history_used = 0
        else:
            language = request.language or detect_language(request.question)
            instruction = self.settings.language_instructions.get(language, "")
            built = build_grounded_messages(
                system_prompt=f"{self.settings.system_prompt} {instruction}".strip(),
                question=request.question,
                sources=request.sources,
                history=request.history,
                budget_tokens=budget,
                count=self.count_tokens,
                clean=self.clean,
            )
            messages, sources, history_used = built.messages, built.sources, built.history_used
        prompt = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        prompt_tokens = self.count_tokens(prompt)
        if prompt_tokens + max_tokens > self.settings.max_model_len:
            raise InvalidArgument(
                f"the prompt has {prompt_tokens} tokens; with max_tokens={max_tokens} it exceeds the "
                f"model's context of {self.settings.max_model_len} tokens"
            )
        return prompt, sources, history_used, max_tokens

    def sampling_params(self, request: generator_pb2.GenerateRequest, max_tokens: int) -> Any:
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind, StructuredOutputsParams

        structured = None
        if request.json_schema:
            try:
                schema = json.loads(request.json_schema)
            except json.JSONDecodeError as exc:
                raise InvalidArgument(f"json_schema is not valid JSON: {exc.msg} at position {exc.pos}") from exc
            if not isinstance(schema, dict):
                raise InvalidArgument("json_schema must be a JSON object")
            structured = StructuredOutputsParams(json=schema)
        if not 0.0 <= request.temperature <= 2.0:
            raise InvalidArgument(f"temperature must be between 0 and 2, got {request.temperature}")
        repetition_penalty = request.repetition_penalty or 1.0
        if not 1.0 <= repetition_penalty <= 2.0:
            raise InvalidArgument(f"repetition_penalty must be between 1 and 2, got {request.repetition_penalty}")
        use_stops = not request.disable_stop_strings and structured is None
        return SamplingParams(
            max_tokens=max_tokens,
            temperature=request.temperature,
            repetition_penalty=repetition_penalty,
            stop=list(self.settings.stop_strings) if use_stops else None,
            stop_token_ids=list(self.stop_token_ids) if use_stops else None,
            include_stop_str_in_output=False,
            structured_outputs=structured,
            output_kind=RequestOutputKind.DELTA,
        )

    def lora_request(self, adapter: str, collection: str = "") -> tuple[Any, str]:
        """The engine's LoRARequest for a request (None: the base model) and the name of the
        adapter that answers ("" for the base)."""
        if adapter:
            from vllm.lora.request import LoRARequest

            if adapter not in self.adapters:
                known = ", ".join(sorted(self.adapters)) or "none configured"
                raise InvalidArgument(f"unknown adapter {adapter!r} (adapters: {known})")
            return LoRARequest(adapter, self.adapters[adapter], str(self.settings.lora_adapters[adapter])), adapter
        registered = self.collection_adapter(collection)
        if registered is None:
            return None, ""
        from vllm.lora.request import LoRARequest

        lora_id = self.collection_lora_ids.setdefault(registered.name, len(self.adapters) + len(self.collection_lora_ids) + 1)
        return LoRARequest(registered.name, lora_id, str(registered.path)), registered.name

    def collection_adapter(self, collection: str) -> RegisteredAdapter | None:
        if not collection or self.settings.collection_adapters == "off":
            return None
        try:
            registered = self.registry.current(collection)
        except ValueError:  # not a collection name: nothing registered under it
            return None
        if registered is not None and not self.lora_enabled:
            if registered.name not in self.unservable:
                self.unservable.add(registered.name)
                log.warning(
                    "collection %s has adapter %s, but the engine started without LoRA: restart the generator to serve it",
                    collection, registered.name,
                )
            return None
        return registered

    # -- RPCs -------------------------------------------------------------------------------
    async def Generate(  # noqa: N802 (gRPC method name)
        self, request: generator_pb2.GenerateRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[generator_pb2.GenerateResponse]:
        started = time.perf_counter()
        prompt, sources, history_used, max_tokens = await asyncio.to_thread(self.prepare, request)
        params = self.sampling_params(request, max_tokens)
        lora, adapter_name = self.lora_request(request.adapter, request.collection)
        if self.in_flight >= self.capacity:
            raise ResourceExhausted(f"the generator is at capacity ({self.in_flight} requests in flight); retry shortly")

        request_id = f"{request.request_id or 'gen'}-{uuid.uuid4().hex[:12]}"
        self.in_flight += 1
        IN_FLIGHT.set(self.in_flight)
        QUEUE_DEPTH.set(max(0, self.in_flight - self.engine.vllm_config.scheduler_config.max_num_seqs))
        # Free text streams line by line and sentence by sentence, each once it is known not to
        # repeat an earlier one; a repetition ends the request (REPETITION), so a looping small
        # model frees its batch slot at once instead of running to max_tokens.
        detector = None if request.allow_repetition or request.json_schema else RepetitionDetector()
        text_parts: list[str] = []
        streamed = 0
        first_token_at: float | None = None
        last: Any = None
        completion_tokens = prompt_tokens = 0
        finished = repeated = False
        try:
            async for output in self.engine.generate(prompt, params, request_id, lora_request=lora):
                if output.prompt_token_ids is not None:
                    prompt_tokens = len(output.prompt_token_ids)
                completion = output.outputs[0]
                completion_tokens += len(completion.token_ids)
                GENERATED_TOKENS.inc(len(completion.token_ids))
                last = completion
                if not completion.text:
                    continue
                if first_token_at is None:
                    first_token_at = time.perf_counter()
                    TIME_TO_FIRST_TOKEN.observe(first_token_at - started)
                text_parts.append(completion.text)
                if detector is None:
                    yield generator_pb2.GenerateResponse(delta=generator_pb2.TextDelta(text=completion.text))
                    continue
                repeated = detector.feed(completion.text)
                if detector.settled > streamed:
                    yield generator_pb2.GenerateResponse(
                        delta=generator_pb2.TextDelta(text=detector.text[streamed : detector.settled])
                    )
                    streamed = detector.settled
                if repeated:
                    break
            finished = True
        finally:
            self.in_flight -= 1
            IN_FLIGHT.set(self.in_flight)
            if not finished or repeated:
                # The caller went away, or the text loops: stop spending compute on it now.
                await self.engine.abort(request_id)
                if repeated:
                    REPETITION_STOPS.inc()
                    SAVED_TOKENS.inc(max(0, max_tokens - completion_tokens))
                    log.info("generation stopped on repetition", extra={"engine_request_id": request_id})
                else:
                    FINISHED.labels("aborted").inc()
                    log.info("generation aborted", extra={"engine_request_id": request_id})

        ended = time.perf_counter()
        reason = ending(request, last, repeated=repeated, produced=bool(text_parts))
        FINISHED.labels(_FINISH_NAMES.get(reason, "other")).inc()
        if first_token_at is not None and completion_tokens > 1 and ended > first_token_at:
            TOKENS_PER_SECOND.observe((completion_tokens - 1) / (ended - first_token_at))
        text = "".join(text_parts)
        if detector is not None:
            detector.finish()
            text = detector.clean_text
            if len(text) > streamed:
                yield generator_pb2.GenerateResponse(delta=generator_pb2.TextDelta(text=text[streamed:]))
        yield generator_pb2.GenerateResponse(
            result=generator_pb2.GenerateResult(
                text=text,
                citations=citation_messages(parse_citations(text, sources)),
                finish_reason=reason,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                time_to_first_token_ms=((first_token_at or ended) - started) * 1000,
                total_ms=(ended - started) * 1000,
                sources_used=len(sources),
                history_messages_used=history_used,
                adapter=adapter_name,
            )
        )

    async def Info(  # noqa: N802
        self, request: generator_pb2.InfoRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> generator_pb2.InfoResponse:
        import vllm

        config = self.engine.vllm_config
        kernels = kernel_settings(self.engine)
        eos = self.tokenizer.eos_token_id
        return generator_pb2.InfoResponse(
            model=config.model_config.served_model_name or config.model_config.model,
            engine="vllm",
            engine_version=vllm.__version__,
            device=str(config.device_config.device_type),
            dtype=str(config.model_config.dtype).removeprefix("torch."),
            max_model_len=config.model_config.max_model_len,
            kernels=generator_pb2.KernelSettings(**kernels),
            stopping=generator_pb2.StopSettings(
                stop_strings=list(self.settings.stop_strings),
                stop_token_ids=([eos] if isinstance(eos, int) else []) + self.stop_token_ids,
                default_max_tokens=self.settings.default_max_tokens,
            ),
            max_tokens_limit=self.settings.max_tokens_limit,
            max_queued_requests=self.settings.max_queued_requests,
            adapters=sorted(self.adapters),
            kv_cache_bytes=int(config.cache_config.kv_cache_memory_bytes or 0),
            collection_adapters=[a.name for a in self.registry.collections()] if self.lora_enabled else [],
            lora_enabled=self.lora_enabled,
        )


async def build_service(settings: GeneratorSettings) -> GrpcService:
    engine = build_engine(settings)
    servicer = GeneratorServicer(settings, engine)

    def register(server: grpc.aio.Server) -> list[str]:
        generator_pb2_grpc.add_GeneratorServiceServicer_to_server(servicer, server)
        return [generator_pb2.DESCRIPTOR.services_by_name["GeneratorService"].full_name]

    async def on_stop() -> None:
        engine.shutdown()

    interceptors = []
    if settings.api_keys_file is not None:
        # Generation is for supportbot's own services (and admins): a reachable port is not
        # free GPU for whoever finds it.
        interceptors.append(AuthInterceptor(KeyRing.load(settings.api_keys_file), {}, default_roles=("service", "admin")))
    return GrpcService("generator", settings, register, on_stop, interceptors)
