"""The identify stage: who the customer is, for account actions. It runs first, before the
session is opened, so a refused identity token ends the turn with nothing stored: no customer
message and no empty reply in the conversation.

The customer comes only from the request's credentials (a customer key's customer_id, or the
widget's signed identity token: `supportbot.actions.identity.resolve_identity`), never from the
message. It is there only when account actions are configured."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from services.gateway.domain import TurnEvent
from services.gateway.pipeline.context import TurnContext
from supportbot.actions.identity import IdentityRefused, IdentitySettings, resolve_identity
from supportbot.core.auth import current_principal
from supportbot.core.errors import PermissionDenied


class Identify:
    name = "identify"

    def __init__(self, settings: IdentitySettings) -> None:
        self.settings = settings

    async def run(self, turn: TurnContext) -> AsyncGenerator[TurnEvent, None]:
        try:
            turn.identity = resolve_identity(current_principal(), turn.request.identity_token, self.settings)
        except IdentityRefused as exc:
            # Refused rather than read as anonymous: the page sent a token it believes is good.
            raise PermissionDenied(str(exc)) from exc
        return
        yield  # type: ignore[unreachable]  # a stage is an async generator, even one that streams nothing


class KeepAccountHolder:
    """After the session is opened: the customer this turn authenticated is kept with it, so an
    agent's drafts (agent assist) act for the one who wrote the latest message, as the bot's
    turn does. A turn without an identity clears it: on a shared browser the widget keeps its
    session after its signed-in customer logs out, and whoever writes next must not have the
    agent's drafts read that customer's account."""

    name = "keep_account_holder"

    async def run(self, turn: TurnContext) -> AsyncGenerator[TurnEvent, None]:
        identity = turn.identity
        turn.active_session.account_holder = (
            {"customer_id": identity.customer_id, "source": identity.source} if identity is not None else None)
        return
        yield  # type: ignore[unreachable]  # a stage is an async generator, even one that streams nothing
