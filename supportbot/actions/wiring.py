"""Building the action stage from typed settings, so the turn that hosts it needs a few lines:

    settings = ActionSettings()                       # SUPPORTBOT_ACTIONS_* variables
    stage = build_action_stage(settings, embedders)   # None while no actions file is configured

`embedders` maps a language to `embed(texts) -> vectors`: the model that routes that language's
messages (the benchmark's choice, bench/actions.py: all-MiniLM-L6-v2 for English, USE-multilingual
for Korean; services.retriever.embedding loads both). Embedding the example requests and the help
center's sentences happens here, once, at start."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from supportbot.actions.declarations import load_actions
from supportbot.actions.executor import ActionExecutor
from supportbot.actions.pending import DEFAULT_TTL_S
from supportbot.actions.routing import DEFAULT_ROUTING, ActionRouter, Embed, help_center_examples
from supportbot.actions.slots import GenerateText
from supportbot.actions.stage import ActionStage


class ActionSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SUPPORTBOT_ACTIONS_", extra="ignore")

    # The company's actions file (supportbot/sample/actions.yaml for the sample help center).
    # None: no account actions; every turn is a help-center turn.
    file: Path | None = None
    # Replaces the file's api.base_url (the demo shop on a port chosen at start).
    base_url: str | None = None
    # Per language, the help-center folder whose titles and sentences form the "neither" class
    # (the questions that must stay help-center answers). A language without one routes with
    # the examples of the actions alone, which triggers more often.
    help_centers: dict[str, Path] = Field(default_factory=dict)
    # How long a proposed change waits for the customer's yes.
    pending_ttl_s: float = Field(default=DEFAULT_TTL_S, gt=0)
    # Fill `extract: generator` parameters (the sample's new address) from the message with the
    # generator's JSON-schema decoding; off, the customer is asked for them. Off by default: with
    # the bundled SmolLM2-135M, `python -m bench.slot_filling` (30 messages, 15 en / 15 ko; 24 hold
    # an address) filled 8 exactly (en 8/15, ko 0/15) and accepted a wrong value for 3 (en 0, ko 3:
    # "152, 06236" for a whole Seoul address), which would be read back for confirmation. Turn it
    # on with a model that measures near 0 wrong values in each language it serves.
    generator_slot_filling: bool = False
    # How long one such fill may take before the customer is asked instead (on a loaded 2-core
    # machine a fill took p50 3.2 s, p95 20 s: the small model loops to its token limit).
    generator_slot_timeout_s: float = Field(default=8.0, gt=0)


def build_action_stage(settings: ActionSettings, embedders: Mapping[str, Embed], *,
                       environ: Mapping[str, str] | None = None, generate: GenerateText | None = None) -> ActionStage | None:
    """The stage for the configured actions file, routing each language with its embedder and
    the thresholds the benchmark chose for it (routing.DEFAULT_ROUTING); None without a file."""
    if settings.file is None:
        return None
    actions = load_actions(settings.file, base_url=settings.base_url)
    routers = {}
    for language, embed in embedders.items():
        folder = settings.help_centers.get(language)
        neither = help_center_examples(folder) if folder is not None else []
        thresholds = DEFAULT_ROUTING.get(language, DEFAULT_ROUTING["en"])
        routers[language] = ActionRouter(actions.actions, embed, neither, languages=[language], **thresholds.as_kwargs())
    if "en" not in routers:
        raise ValueError("the action stage needs an English embedder: messages without Hangul route as English")
    executor = ActionExecutor(actions, environ=dict(os.environ if environ is None else environ))
    return ActionStage(actions, executor, routers, generate=generate, ttl_s=settings.pending_ttl_s)
