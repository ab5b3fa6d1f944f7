"""Whose account an action uses: a customer key's customer, or a widget visitor's signed token;
never anyone else, and nobody for an anonymous visitor."""

from __future__ import annotations

import time

import jwt
import pytest

from supportbot.actions.identity import (
    CustomerIdentity,
    IdentityRefused,
    IdentitySettings,
    issue_identity_token,
    resolve_identity,
    verify_identity_token,
)
from supportbot.core.auth import Principal

SECRET = "widget-identity-secret-" + "k" * 20
SETTINGS = IdentitySettings(identity_secret=SECRET)
CUSTOMER_KEY = Principal(name="web", role="customer", customer_id="c-ana")
WIDGET = Principal(name="site", role="publishable", customer_id="widget:site")


def test_a_customer_key_names_its_customer() -> None:
    assert resolve_identity(CUSTOMER_KEY, "", SETTINGS) == CustomerIdentity("c-ana", "customer_key")


def test_a_signed_token_names_the_widget_visitor() -> None:
    token = issue_identity_token("c-jiwoo", SECRET)
    assert resolve_identity(WIDGET, token, SETTINGS) == CustomerIdentity("c-jiwoo", "widget_token")


def test_an_anonymous_widget_visitor_gets_no_account_actions() -> None:
    assert resolve_identity(WIDGET, "", SETTINGS) is None
    assert resolve_identity(None, "", SETTINGS) is None


@pytest.mark.parametrize("role", ["agent", "service", "admin"])
def test_roles_that_are_not_customers_have_no_customer(role: str) -> None:
    assert resolve_identity(Principal(name=role, role=role), issue_identity_token("c-ana", SECRET), SETTINGS) is None  # type: ignore[arg-type]


def test_the_shared_publishable_customer_id_is_never_a_customer() -> None:
    # The publishable key's customer_id ("widget:site") is shared by every visitor.
    assert resolve_identity(WIDGET, "", SETTINGS) is None


def _refused(token: str, settings: IdentitySettings = SETTINGS, now: float | None = None) -> str:
    with pytest.raises(IdentityRefused) as error:
        resolve_identity(WIDGET, token, settings, now=now)
    return str(error.value)


def test_a_wrongly_signed_token_is_refused() -> None:
    assert "signature" in _refused(issue_identity_token("c-ana", "another-secret-" + "z" * 30))


def test_an_unsigned_token_is_refused() -> None:
    unsigned = jwt.encode({"sub": "c-ana", "iat": int(time.time()), "exp": int(time.time()) + 60}, None, algorithm="none")
    assert "HS256" in _refused(unsigned)


def test_a_token_signed_with_another_algorithm_is_refused() -> None:
    other = jwt.encode({"sub": "c-ana", "iat": int(time.time()), "exp": int(time.time()) + 60}, SECRET, algorithm="HS512")
    assert "HS256" in _refused(other)


def test_an_expired_token_is_refused() -> None:
    issued = time.time() - 7200
    assert "expired" in _refused(issue_identity_token("c-ana", SECRET, lifetime_s=3600, now=issued))
    # Within the leeway it still counts.
    token = issue_identity_token("c-ana", SECRET, lifetime_s=60, now=1000)
    assert verify_identity_token(token, SETTINGS, now=1000 + 60 + 10).customer_id == "c-ana"
    assert "expired" in _refused(token, now=1000 + 60 + 31)


def test_a_token_without_expiry_or_subject_is_refused() -> None:
    assert "exp" in _refused(jwt.encode({"sub": "c-ana", "iat": int(time.time())}, SECRET, algorithm="HS256"))
    assert "sub" in _refused(jwt.encode({"iat": int(time.time()), "exp": int(time.time()) + 60}, SECRET, algorithm="HS256"))


def test_a_token_living_longer_than_allowed_is_refused() -> None:
    assert "at most" in _refused(issue_identity_token("c-ana", SECRET, lifetime_s=30 * 24 * 3600))


def test_a_subject_that_is_not_a_customer_id_is_refused() -> None:
    assert "subject" in _refused(issue_identity_token("c-ana\r\nX-Customer-Id: c-ben", SECRET))


def test_malformed_tokens_are_refused() -> None:
    for token in ("", "abc", "a.b.c", "x" * 5000):
        if token:
            assert "identity token" in _refused(token)


def test_without_a_secret_no_token_is_accepted() -> None:
    assert "no identity secret" in _refused(issue_identity_token("c-ana", SECRET), IdentitySettings())


def test_a_short_secret_is_refused_at_configuration() -> None:
    with pytest.raises(ValueError, match="at least 32"):
        IdentitySettings(identity_secret="short")


def test_a_token_cannot_switch_a_customer_keys_customer() -> None:
    with pytest.raises(IdentityRefused, match="another customer"):
        resolve_identity(CUSTOMER_KEY, issue_identity_token("c-ben", SECRET), SETTINGS)


def test_the_audience_is_checked_when_configured() -> None:
    settings = IdentitySettings(identity_secret=SECRET, identity_audience="supportbot")
    assert verify_identity_token(issue_identity_token("c-ana", SECRET, audience="supportbot"), settings).customer_id == "c-ana"
    assert "not valid" in _refused(issue_identity_token("c-ana", SECRET, audience="other"), settings)
