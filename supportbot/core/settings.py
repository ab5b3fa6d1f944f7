"""Typed settings shared by every service; each service subclasses ServiceSettings with its own
environment prefix (SUPPORTBOT_RETRIEVER_, SUPPORTBOT_GENERATOR_, SUPPORTBOT_GATEWAY_)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_RETRIEVER_ADDRESS = "127.0.0.1:50052"
DEFAULT_GENERATOR_ADDRESS = "127.0.0.1:50053"
DEFAULT_GATEWAY_ADDRESS = "127.0.0.1:50051"


def default_data_dir() -> Path:
    """The one directory that holds all local state: indexes, Redis data, models, logs."""
    explicit = os.environ.get("SUPPORTBOT_DATA_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "supportbot"


class ServiceSettings(BaseSettings):
    """What every gRPC service has: where it listens, how it logs, how it shuts down."""

    model_config = SettingsConfigDict(extra="ignore", env_nested_delimiter="__")

    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535)
    # Prometheus metrics over HTTP; 0 disables the endpoint.
    metrics_port: int = Field(default=0, ge=0, le=65535)
    log_level: str = "INFO"
    log_json: bool = True
    # Seconds in-flight RPCs get to finish after SIGTERM.
    grace_period_s: float = Field(default=20.0, ge=0)
    # Clients reconnect (and so re-resolve DNS and find new replicas) after this many seconds;
    # calls still running get the grace time to finish (a long streamed answer included).
    max_connection_age_s: float = Field(default=300.0, gt=0)
    max_connection_age_grace_s: float = Field(default=240.0, ge=0)
    data_dir: Path = Field(default_factory=default_data_dir)
    # Bytes; bounds request and response messages.
    max_message_bytes: int = 64 * 1024 * 1024
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"
