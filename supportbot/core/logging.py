"""Structured JSON logs with a request id that follows a request across services."""

from __future__ import annotations

import contextvars
import logging
import re
import sys
import uuid

from pythonjsonlogger.json import JsonFormatter

REQUEST_ID_METADATA_KEY = "x-request-id"

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")


def current_request_id() -> str:
    return _request_id.get()


_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def set_request_id(request_id: str | None = None) -> str:
    """Binds a request id to the current context: the caller's when it is a plain token of at
    most 128 characters (it goes into every log line), else a new one."""
    value = request_id if request_id and _REQUEST_ID.fullmatch(request_id) else uuid.uuid4().hex
    _request_id.set(value)
    return value


class _RequestIdFilter(logging.Filter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        record.service = self.service
        return True


def configure_logging(service: str, level: str = "INFO", json_format: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_RequestIdFilter(service))
    if json_format:
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(service)s %(request_id)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s [%(service)s %(request_id)s] %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
