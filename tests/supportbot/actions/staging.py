"""The sample actions staged against a real demo shop, with a deterministic embedder: what the
stage and combined-message tests run their turns on."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from services.shop.server import ShopServer
from services.shop.settings import ShopSettings
from supportbot.actions.declarations import load_actions, sample_actions_path
from supportbot.actions.executor import ActionExecutor
from supportbot.actions.routing import ActionRouter, HashingEmbedder
from supportbot.actions.stage import ActionStage

HELP = ["What is your return policy?", "How do I reset my Lumio bulb?", "Which payment methods do you accept?"]


@contextmanager
def demo_stage(token: str) -> Iterator[ActionStage]:
    """An ActionStage over a shop in memory (its server as `.server`), a router per language."""
    with ShopServer(ShopSettings(database=":memory:", port=0, service_token=token)) as server:
        actions = load_actions(sample_actions_path())
        executor = ActionExecutor(load_actions(sample_actions_path(), base_url=server.url),
                                  environ={"SUPPORTBOT_SHOP_SERVICE_TOKEN": token})
        routers = {language: ActionRouter(actions.actions, HashingEmbedder(), HELP, languages=[language], threshold=0.6, margin=0.05)
                   for language in ("en", "ko")}
        built = ActionStage(actions, executor, routers)
        built.server = server  # type: ignore[attr-defined]
        yield built
