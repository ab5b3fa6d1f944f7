"""The act stage: an account action instead of a help-center answer, when the company has declared
actions (SUPPORTBOT_ACTIONS_FILE) and the message asks for one ("where is my order?") or continues
one waiting in the session (a missing order number, a yes to a proposed change).

It runs after the route stage, for the bot's turns, for the customer the identify stage found
(`pipeline/identify.py`: from the request's credentials, never from the message). When an action
answers, the turn's route becomes ACTION: no search and no model, and the record stage stores the
reply with its record citations and writes the action runs to the interaction log. Otherwise the
help center answers as before; a pending action waits in the session either way
(`SessionRecord.pending_action`)."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import OrderedDict
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence

import grpc
import numpy as np

from services.gateway.backends import Embeddings
from services.gateway.domain import ActionReply, AnswerPath, AnswerText, FinishReason, TurnEvent
from services.gateway.pipeline.context import Route, TurnContext
from supportbot.actions.case import remember
from supportbot.actions.declarations import load_actions
from supportbot.actions.identity import IdentitySettings
from supportbot.actions.replies import RecordCitation
from supportbot.actions.slots import stub_caller
from supportbot.actions.stage import ActionStage, ActionTurn
from supportbot.actions.wiring import ActionSettings, build_action_stage
from supportbot.answers.sources import Citation
from supportbot.v1 import generator_pb2_grpc

log = logging.getLogger(__name__)

# The retriever's Embed RPC takes at most this many texts a call (services/retriever/server.py).
EMBED_BATCH = 512
# The routers' examples (about 480 sentences for the two sample help centers) are embedded once,
# at the first turn: a batch gets this long rather than the per-turn retrieval timeout (5 s),
# which a loaded 2-core retriever missed, so every turn went without actions and retried the build
# (tests/stack/test_actions_stack.py measured the build at 28 s on such a machine).
BUILD_BATCH_TIMEOUT_S = 120.0


class RoutingEmbedder:
    """The action router's synchronous `embed(texts)`, over the retriever's Embed RPC: the gateway
    loads no model. The router embeds its example requests once, when built in a worker thread
    (each batch is sent through the event loop and waited for there), and each message as it
    routes on the event loop, which must not wait: the act stage fetches that text first
    (`fetch`). The models are the benchmark's choice (bench/actions.py): the retriever's primary,
    all-MiniLM-L6-v2, for English and its multilingual USE v3 for Korean."""

    def __init__(self, embeddings: Embeddings, loop: asyncio.AbstractEventLoop, *, multilingual: bool,
                 kept: int = 256) -> None:
        self.embeddings = embeddings
        self.loop = loop
        self.multilingual = multilingual
        self.kept = kept
        self._fetched: OrderedDict[str, list[float]] = OrderedDict()

    async def fetch(self, *texts: str) -> None:
        """The vectors of these texts, fetched in one call (those not fetched already)."""
        missing = list(dict.fromkeys(text for text in texts if text not in self._fetched))
        if missing:
            vectors = await self.embeddings.embed(missing, multilingual=self.multilingual)
            self._fetched.update(zip(missing, vectors, strict=True))
            while len(self._fetched) > self.kept:
                self._fetched.popitem(last=False)

    async def embed_all(self, texts: Sequence[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), EMBED_BATCH):
            batch = list(texts[start:start + EMBED_BATCH])
            vectors += await self.embeddings.embed(batch, multilingual=self.multilingual, timeout_s=BUILD_BATCH_TIMEOUT_S)
        return vectors

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        if all(text in self._fetched for text in texts):
            return np.asarray([self._fetched[text] for text in texts], dtype=np.float32)
        try:
            on_loop = asyncio.get_running_loop() is self.loop
        except RuntimeError:  # no loop in this thread: a worker's
            on_loop = False
        if on_loop:
            raise RuntimeError("a message is embedded on the event loop only after fetch()")
        return np.asarray(asyncio.run_coroutine_threadsafe(self.embed_all(texts), self.loop).result(), dtype=np.float32)


def record_citation(record: RecordCitation, index: int) -> Citation:
    """A record an action's answer rests on, as the Citation that session turns, the interaction
    log and clients already read: titled by its marker ("[order L-104233]"), its document the
    action and the record's id, no URL (the record is the company's, not the help center's)."""
    return Citation(index=index, document_id=f"{record.action}:{record.record_id}", title=record.marker)


def record_citations(records: Sequence[RecordCitation], first: int = 1) -> list[Citation]:
    """The records as citations numbered from `first` (after a turn's articles, when it has them)."""
    return [record_citation(record, index) for index, record in enumerate(records, first)]


class Act:
    name = "act"

    def __init__(self, identity: IdentitySettings, build: Callable[[], Awaitable[ActionStage]],
                 embedders: Mapping[str, RoutingEmbedder] | None = None) -> None:
        self.identity = identity
        self.build = build
        self.embedders = dict(embedders or {})
        self._stage: ActionStage | None = None
        self._building = asyncio.Lock()

    @classmethod
    def of(cls, stage: ActionStage, identity: IdentitySettings) -> Act:
        """The stage for actions already built (tests, with their own embedder)."""

        async def built() -> ActionStage:
            return stage

        return cls(identity, built)

    @classmethod
    def configured(cls, settings: ActionSettings, identity: IdentitySettings, embeddings: Embeddings,
                   generator: generator_pb2_grpc.GeneratorServiceStub | None = None) -> Act | None:
        """The stage for the configured actions file; None (no stage at all) without one. The file
        is read now, so a malformed one stops the gateway at start naming its line; the routers are
        built at the first turn, when the retriever that embeds their examples is surely up.
        `generator` (a GeneratorService stub) fills free-text parameters when
        settings.generator_slot_filling is on; a failed or slow fill asks the customer instead."""
        if settings.file is None:
            return None
        generate = (stub_caller(generator, timeout_s=settings.generator_slot_timeout_s)
                    if settings.generator_slot_filling and generator is not None else None)
        load_actions(settings.file, base_url=settings.base_url)
        loop = asyncio.get_running_loop()
        embedders = {
            "en": RoutingEmbedder(embeddings, loop, multilingual=False),
            "ko": RoutingEmbedder(embeddings, loop, multilingual=True),
        }

        async def build() -> ActionStage:
            stage = await asyncio.to_thread(functools.partial(build_action_stage, settings, embedders, generate=generate))
            assert stage is not None  # a file is configured
            return stage

        return cls(identity, build, embedders)

    async def stage(self) -> ActionStage:
        async with self._building:
            if self._stage is None:
                self._stage = await self.build()
            return self._stage

    async def routed(self, message: str) -> ActionStage | None:
        """The stage, ready to route this message (its vector fetched); None while the retriever
        cannot embed: the help center answers meanwhile, and nothing pending is touched."""
        try:
            stage = await self.stage()
            language = stage.language_of(message)
            embedder = self.embedders.get(language)
            if embedder is not None:
                await embedder.fetch(*stage.texts_to_route(message))
        except grpc.aio.AioRpcError as exc:
            log.warning("account actions unavailable this turn: the retriever cannot embed", extra={"error": exc.code().name})
            return None
        return stage

    async def run(self, turn: TurnContext) -> AsyncGenerator[TurnEvent, None]:
        session = turn.active_session
        stage = await self.routed(turn.message)
        if stage is None:
            return
        out = await stage.run(ActionTurn(
            turn.message, session.pending_action, turn.identity, turn_id=turn.turn_id, session_id=session.session_id,
        ))
        session.pending_action = out.state
        # What the actions read is the case an agent sees (GetSessionCase), kept also when the
        # help center answers this turn.
        session.case_records = remember(session.case_records, out.reads, stage.actions, stage.clock())
        turn.action_runs.extend(out.interactions)
        if out.passthrough:
            return
        answer = turn.answer
        turn.action = ActionReply(
            action=out.action, kind=out.kind, options=tuple((o.value, o.label) for o in out.options),
            records=tuple(out.citations),
        )
        if out.question:
            # A policy question came with the case one: the action's reply first, then the help
            # center's answer to that question (the stages after this one; the cite_case stage
            # numbers the records after its articles).
            reply = answer.add(out.text + "\n\n")
            turn.answer_policy_part(out.question, reply, list(out.citations))
            yield AnswerText(reply)
            return
        turn.route = Route.ACTION
        answer.path, answer.finish, answer.language = AnswerPath.ACTION, FinishReason.NOT_GENERATED, turn.language
        # A result rests on the records the company's API returned, as a help-center answer rests
        # on its articles; questions, confirmations and errors state nothing about a record.
        answer.citations = record_citations(out.citations)
        answer.grounded = out.kind == "result" and bool(out.citations)
        yield AnswerText(answer.add(out.text))
