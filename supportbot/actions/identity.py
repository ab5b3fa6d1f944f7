"""Whose account an action reads or changes: only ever the authenticated customer of the
session, never a parameter and never the model.

- A customer API key names its customer (`Principal.customer_id`, supportbot/core/auth.py).
- The widget runs on a publishable key, which is public and shared by every visitor, so it names
  nobody. The host page passes an identity token its own server signed for the logged-in
  visitor, as Intercom's identity verification does: a JWT, HMAC-SHA256 with a secret shared
  between the company's server and supportbot, with `sub` (the customer id) and `exp`. An
  unsigned, wrongly signed, expired or malformed token is refused; a visitor without one is
  anonymous and gets no account actions.
- Agents, services and admins are not customers: an agent acting for a customer (agent assist,
  `ActionStage.approve`) runs the change for the customer the proposal was made for, never one
  the agent names, and is recorded as the approver."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import jwt
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from supportbot.core.auth import Principal

# Customer ids the shop API accepts in its header; anything else in a token is refused.
_CUSTOMER_ID_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-")


class IdentityRefused(Exception):
    """A presented identity that must not be used; the message says why, for the log and the
    client (it never echoes the token)."""


class IdentitySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SUPPORTBOT_ACTIONS_", extra="ignore")

    # The secret the company's server signs widget identity tokens with (HS256). Empty: widget
    # visitors are anonymous, whatever token they present.
    identity_secret: SecretStr = SecretStr("")
    # Tokens valid longer than this are refused, so a leaked one cannot live for ever.
    identity_max_lifetime_s: int = Field(default=24 * 3600, gt=0)
    # Clock difference tolerated between the company's server and this one.
    identity_leeway_s: int = Field(default=30, ge=0, le=300)
    # When set, tokens must carry this audience ("aud").
    identity_audience: str = ""

    @field_validator("identity_secret")
    @classmethod
    def _long_enough(cls, secret: SecretStr) -> SecretStr:
        if secret.get_secret_value() and len(secret.get_secret_value()) < 32:
            raise ValueError("identity_secret must be at least 32 characters (HS256 keys shorter than the hash are guessable)")
        return secret


IdentitySource = Literal["customer_key", "widget_token", "session"]


@dataclass(frozen=True)
class CustomerIdentity:
    customer_id: str
    # "session": the customer a proposal kept in the session was made for, when an agent approves
    # a proposal stored before its identity's source was (supportbot.actions.stage.approve).
    source: IdentitySource


def verify_identity_token(token: str, settings: IdentitySettings, *, now: float | None = None) -> CustomerIdentity:
    secret = settings.identity_secret.get_secret_value()
    if not secret:
        raise IdentityRefused("identity tokens are not accepted here: no identity secret is configured")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as exc:
        raise IdentityRefused(f"the identity token is malformed: {exc}") from exc
    if header.get("alg") != "HS256":
        # "none" and algorithm confusion (a public key used as an HMAC secret) are refused here,
        # before any verification is attempted.
        raise IdentityRefused(f"identity tokens must be signed with HS256, not {header.get('alg')!r}")
    try:
        claims = jwt.decode(
            token, secret, algorithms=["HS256"], audience=settings.identity_audience or None,
            options={"require": ["exp", "iat", "sub"], "verify_aud": bool(settings.identity_audience), "verify_exp": False},
        )
        # Expiry against our clock (or the test's), with the configured leeway.
        if not isinstance(claims["exp"], int | float) or claims["exp"] < (time.time() if now is None else now) - settings.identity_leeway_s:
            raise jwt.ExpiredSignatureError("Signature has expired")
    except jwt.ExpiredSignatureError as exc:
        raise IdentityRefused("the identity token has expired: the page must fetch a new one") from exc
    except jwt.InvalidSignatureError as exc:
        raise IdentityRefused("the identity token's signature is wrong") from exc
    except jwt.InvalidTokenError as exc:
        raise IdentityRefused(f"the identity token is not valid: {exc}") from exc
    issued, expires = claims["iat"], claims["exp"]
    if not isinstance(issued, int | float) or not isinstance(expires, int | float) or expires - issued > settings.identity_max_lifetime_s:
        raise IdentityRefused(f"identity tokens may live at most {settings.identity_max_lifetime_s} s")
    customer_id = claims["sub"]
    if not isinstance(customer_id, str) or not 0 < len(customer_id) <= 128 or not set(customer_id) <= _CUSTOMER_ID_CHARS:
        raise IdentityRefused("the identity token's subject is not a customer id")
    return CustomerIdentity(customer_id=customer_id, source="widget_token")


def resolve_identity(
    principal: Principal | None, identity_token: str, settings: IdentitySettings, *, now: float | None = None,
) -> CustomerIdentity | None:
    """The customer actions run for, or None (anonymous: no account actions). Raises
    IdentityRefused for a token that is presented but not valid: the caller says so to the
    client rather than silently treating the visitor as anonymous."""
    if principal is None:
        return None
    if principal.role == "customer" and principal.customer_id:
        if identity_token:
            # A customer key already names its customer; a token on top must not switch it.
            token_identity = verify_identity_token(identity_token, settings, now=now)
            if token_identity.customer_id != principal.customer_id:
                raise IdentityRefused("the identity token names another customer than this key")
        return CustomerIdentity(customer_id=principal.customer_id, source="customer_key")
    if principal.role == "publishable":
        return verify_identity_token(identity_token, settings, now=now) if identity_token else None
    return None


def issue_identity_token(customer_id: str, secret: str, *, lifetime_s: int = 3600, audience: str = "", now: float | None = None) -> str:
    """What the company's server does for its logged-in visitor (shown here for the demo page
    and the tests; a company signs with its own code and the shared secret)."""
    issued = int(time.time() if now is None else now)
    claims: dict[str, object] = {"sub": customer_id, "iat": issued, "exp": issued + lifetime_s}
    if audience:
        claims["aud"] = audience
    return jwt.encode(claims, secret, algorithm="HS256")
