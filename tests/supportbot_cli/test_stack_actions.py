"""What `supportbot up --actions` tells its services beyond the shop and the act stage: the identity
secret widget tokens are signed with, shared by the gateway (which checks them) and the web server
(whose widget demo page signs one for a demo customer), and the shop's customers to sign in as."""

from __future__ import annotations

import pytest

from services.shop.store import SEED_CUSTOMERS
from services.web.settings import WebSettings
from supportbot.actions.identity import IdentitySettings
from supportbot_cli.stack import Stack

SECRET_VARIABLE = "SUPPORTBOT_ACTIONS_IDENTITY_SECRET"


def services_settings(environment: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> tuple[WebSettings, IdentitySettings]:
    """The web server's and the gateway's identity settings as they read this environment."""
    for name in [name for name in environment if name.startswith("SUPPORTBOT_")]:
        monkeypatch.setenv(name, environment[name])
    return WebSettings(), IdentitySettings()


def test_with_actions_the_web_server_may_sign_in_the_shops_customers_with_the_gateways_secret(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv(SECRET_VARIABLE, raising=False)
    stack = Stack(tmp_path, actions=True)
    web, gateway = services_settings(stack.environment(), monkeypatch)
    assert web.demo_customers == [customer[0] for customer in SEED_CUSTOMERS]
    secret = gateway.identity_secret.get_secret_value()
    assert secret == stack.identity_secret and web.demo_identity_secret.get_secret_value() == secret


def test_an_identity_secret_of_the_environment_is_kept(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv(SECRET_VARIABLE, "the-company-s-own-identity-secret-" + "s" * 8)
    assert Stack(tmp_path, actions=True).environment()[SECRET_VARIABLE] == "the-company-s-own-identity-secret-" + "s" * 8


def test_without_actions_the_web_server_signs_no_one_in(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv(SECRET_VARIABLE, raising=False)
    monkeypatch.delenv("SUPPORTBOT_WEB_DEMO_CUSTOMERS", raising=False)
    web, gateway = services_settings(Stack(tmp_path).environment(), monkeypatch)
    assert web.demo_customers == [] and not gateway.identity_secret.get_secret_value()
