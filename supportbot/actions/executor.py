"""Running an action against the company's API, for the authenticated customer only.

- The customer header comes from the CustomerIdentity, never from a parameter; parameters are
  checked against their patterns and percent-encoded, and the rendered URL must stay on the
  declared host.
- A change runs only with its confirmed PendingAction, and carries its idempotency key.
- A timeout per action; retries (with backoff) only for safe calls (GET); a circuit breaker per
  API stops calling a failing API for a while.
- Responses are bounded (size, JSON only, values trimmed) and reduced to the allowed fields.
- A change whose answer never came back is reported as "unknown", never as done or not done.
- Every run is an ActionInteraction for the interaction log (parameters redacted) and a metric."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

import httpx
from prometheus_client import Counter, Gauge, Histogram

from supportbot.actions.declarations import Action, ActionFile
from supportbot.actions.identity import CustomerIdentity
from supportbot.actions.pending import PendingAction, Status
from supportbot.actions.replies import ActionReply, RecordCitation, records_of, render_reply
from supportbot.interactions import InteractionRecord

try:  # the gateway's redaction has no dependencies of its own; the gateway package may be absent
    from supportbot.core.redaction import redact
except ImportError:  # pragma: no cover (installed without the gateway)
    def redact(text: str) -> str:
        return "[redacted]"

ACTION_RUNS = Counter(
    "supportbot_action_runs_total",
    "Action runs by action and outcome (ok, not_found, rejected, unavailable, unknown, invalid_response, refused, invalid_parameters).",
    ["action", "outcome"],
)
ACTION_DURATION = Histogram(
    "supportbot_action_duration_seconds",
    "From calling the company's API to its answer being read, retries included.",
    ["action"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8),
)
BREAKER_OPEN = Gauge("supportbot_action_breaker_open", "1 while the circuit breaker keeps calls from the API.", ["api"])

MAX_RESPONSE_BYTES = 256 * 1024
MAX_VALUE_CHARS = 300
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u2066-\u2069]")

MESSAGES = {
    "refused": {
        "en": "I can look at your account once you are signed in. Please sign in and ask again.",
        "ko": "로그인하시면 계정 정보를 확인해 드릴 수 있어요. 로그인한 뒤 다시 말씀해 주세요.",
    },
    "not_found": {
        "en": "I couldn't find that {record} on your account. Could you check the number?",
        "ko": "고객님 계정에서 해당 {record}을(를) 찾을 수 없어요. 번호를 다시 확인해 주시겠어요?",
    },
    "rejected": {
        "en": "That couldn't be done: {reason}",
        "ko": "요청을 처리할 수 없었어요: {reason}",
    },
    "unavailable": {
        "en": "I can't reach our order system right now, so nothing was changed. Would you like me to connect you with a person?",
        "ko": "지금 주문 시스템에 연결할 수 없어 아무것도 변경되지 않았어요. 상담원을 연결해 드릴까요?",
    },
    "unknown": {
        "en": "I couldn't confirm whether that went through. A person will check it; would you like me to connect you now?",
        "ko": "요청이 처리되었는지 확인하지 못했어요. 상담원이 확인해 드릴 수 있도록 연결해 드릴까요?",
    },
    "invalid_response": {
        "en": "Our order system answered with something I can't read, so I won't guess. Would you like me to connect you with a person?",
        "ko": "주문 시스템의 응답을 읽을 수 없어 추측하지 않을게요. 상담원을 연결해 드릴까요?",
    },
    "invalid_parameters": {
        "en": "That doesn't look like a valid {what}. Could you check it?",
        "ko": "올바른 {what} 형식이 아닌 것 같아요. 다시 확인해 주시겠어요?",
    },
}
_RECORD_WORDS_KO = {"order": "주문", "subscription": "구독", "return": "반품"}


def message(kind: str, language: str, **values: str) -> str:
    texts = MESSAGES[kind]
    return texts.get(language, texts["en"]).format(**values)


class CircuitBreaker:
    """Closed: calls pass. After `failure_threshold` failures in a row: open, calls fail at once
    for `reset_after_s`. Then half-open: one call tries; success closes, failure opens again."""

    def __init__(self, name: str, *, failure_threshold: int = 5, reset_after_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_after_s = reset_after_s
        self.clock = clock
        self.failures = 0
        self.opened_at: float | None = None
        self._trial_running = False

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half_open" if self.clock() - self.opened_at >= self.reset_after_s else "open"

    def allow(self) -> bool:
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and not self._trial_running:
            self._trial_running = True
            return True
        return False

    def record_success(self) -> None:
        self.failures, self.opened_at, self._trial_running = 0, None, False
        BREAKER_OPEN.labels(self.name).set(0)

    def record_failure(self) -> None:
        self.failures += 1
        self._trial_running = False
        if self.opened_at is not None or self.failures >= self.failure_threshold:
            self.opened_at = self.clock()
            BREAKER_OPEN.labels(self.name).set(1)


@dataclass
class ActionResult:
    action: str
    outcome: str
    text: str
    status_code: int = 0
    records: list[dict[str, Any]] = field(default_factory=list)
    citations: tuple[RecordCitation, ...] = ()
    latency_ms: float = 0.0
    attempts: int = 0

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


@dataclass
class ActionInteraction(InteractionRecord):
    """One action run in the interaction log: what ran, for whom (by how they were identified,
    not who), with which parameters (personal data redacted), how it ended and how long it took."""

    action: str
    turn_id: str = ""
    session_id: str = ""
    timestamp: float = 0.0
    identity_source: str = ""
    parameters: dict[str, str] = field(default_factory=dict)
    changes: bool = False
    confirmed_by: str = ""
    idempotency_key: str = ""
    outcome: str = ""
    status_code: int = 0
    attempts: int = 0
    latency_ms: float = 0.0
    citations: list[dict[str, str]] = field(default_factory=list)

    KIND: ClassVar[str] = "action"

    @classmethod
    def of(cls, result: ActionResult, action: Action, parameters: dict[str, Any], identity: CustomerIdentity | None,
           pending: PendingAction | None, *, turn_id: str = "", session_id: str = "") -> ActionInteraction:
        return cls(
            action=action.name, turn_id=turn_id, session_id=session_id, timestamp=time.time(),
            identity_source=identity.source if identity else "anonymous",
            parameters={name: redact(str(value)) for name, value in parameters.items() if value is not None},
            changes=action.changes, confirmed_by=pending.confirmed_by if pending else "",
            idempotency_key=pending.idempotency_key if pending and action.changes else "",
            outcome=result.outcome, status_code=result.status_code, attempts=result.attempts,
            latency_ms=round(result.latency_ms, 2), citations=[citation.to_dict() for citation in result.citations],
        )

    def to_record(self) -> dict[str, Any]:
        return asdict(self)


class _Garbage(Exception):
    pass


class ActionExecutor:
    def __init__(self, actions: ActionFile, *, client: httpx.AsyncClient | None = None,
                 environ: dict[str, str] | None = None, retries: int = 2, backoff_s: float = 0.1,
                 breaker: CircuitBreaker | None = None, max_response_bytes: int = MAX_RESPONSE_BYTES) -> None:
        self.actions = actions
        self.client = client or httpx.AsyncClient(follow_redirects=False)
        self.headers = actions.resolved_headers(environ)
        self.retries = retries
        self.backoff_s = backoff_s
        base = urlsplit(actions.api.base_url)
        self._origin = (base.scheme, base.hostname, base.port)
        self.breaker = breaker or CircuitBreaker(base.netloc)
        self.max_response_bytes = max_response_bytes

    async def aclose(self) -> None:
        await self.client.aclose()

    def _invalid(self, action: Action, parameters: dict[str, Any]) -> str | None:
        """The first parameter that is missing or breaks its pattern, as the customer would say it."""
        for name, parameter in action.parameters.items():
            value = parameters.get(name)
            if value is None:
                if parameter.required:
                    return parameter.description
                continue
            if parameter.type == "string" and (not isinstance(value, str) or not parameter.matches(value)):
                return parameter.description
            if parameter.type in ("integer", "number") and (isinstance(value, bool) or not isinstance(value, int | float)):
                return parameter.description
        unknown = set(parameters) - set(action.parameters)
        return f"parameter {sorted(unknown)[0]}" if unknown else None

    def _url(self, action: Action, parameters: dict[str, Any]) -> str:
        path = action.request.path
        for name, parameter in action.parameters.items():
            if parameter.location == "path":
                path = path.replace("{" + name + "}", quote(str(parameters[name]), safe=""))
        url = self.actions.api.base_url + path
        parts = urlsplit(url)
        if (parts.scheme, parts.hostname, parts.port) != self._origin or parts.username or parts.password:
            raise ValueError(f"{action.name}: the rendered URL leaves the declared host")
        return url

    async def run(self, action_name: str, parameters: dict[str, Any], identity: CustomerIdentity | None, *,
                  pending: PendingAction | None = None, language: str = "en") -> ActionResult:
        action = self.actions.action(action_name)
        started = time.perf_counter()
        result = await self._run(action, parameters, identity, pending, language)
        result.latency_ms = (time.perf_counter() - started) * 1000
        ACTION_RUNS.labels(action.name, result.outcome).inc()
        if result.attempts:
            ACTION_DURATION.labels(action.name).observe(result.latency_ms / 1000)
        return result

    async def _run(self, action: Action, parameters: dict[str, Any], identity: CustomerIdentity | None,
                   pending: PendingAction | None, language: str) -> ActionResult:
        if identity is None:
            return ActionResult(action.name, "refused", message("refused", language))
        if action.changes and not (
            pending is not None and pending.status == Status.CONFIRMED and pending.action == action.name
            and pending.customer_id == identity.customer_id and pending.slots == parameters
        ):
            # The structural guarantee: no change without the customer's confirmed pending action.
            return ActionResult(action.name, "refused", "This change needs your confirmation first; nothing was changed.")
        invalid = self._invalid(action, parameters)
        if invalid is not None:
            return ActionResult(action.name, "invalid_parameters", message("invalid_parameters", language, what=invalid))
        if not self.breaker.allow():
            return ActionResult(action.name, "unavailable", message("unavailable", language))
        request = self._request(action, parameters, identity, pending)
        attempts = 1 + (self.retries if action.request.safe else 0)
        timeout = action.request.timeout_s or self.actions.api.timeout_s
        outcome: ActionResult | None = None
        for attempt in range(1, attempts + 1):
            outcome = await self._attempt(action, request, timeout, parameters, language)
            outcome.attempts = attempt
            if outcome.outcome not in ("unavailable", "unknown"):
                break
            if attempt < attempts:
                await asyncio.sleep(self.backoff_s * 2 ** (attempt - 1))
        assert outcome is not None
        if outcome.outcome in ("unavailable", "unknown", "invalid_response"):
            self.breaker.record_failure()
        else:
            self.breaker.record_success()
        return outcome

    def _request(self, action: Action, parameters: dict[str, Any], identity: CustomerIdentity,
                 pending: PendingAction | None) -> httpx.Request:
        headers = {**self.headers, "Accept": "application/json", self.actions.api.customer_header: identity.customer_id}
        if action.changes and pending is not None:
            headers["Idempotency-Key"] = pending.idempotency_key
        query = {name: str(parameters[name]) for name, p in action.parameters.items() if p.location == "query" and name in parameters}
        body = {name: parameters[name] for name, p in action.parameters.items() if p.location == "body" and parameters.get(name) is not None}
        return self.client.build_request(
            action.request.method, self._url(action, parameters), headers=headers, params=query or None,
            json=body if action.request.method != "GET" else None,
        )

    async def _attempt(self, action: Action, request: httpx.Request, timeout: float, parameters: dict[str, Any],
                       language: str) -> ActionResult:
        try:
            async with asyncio.timeout(timeout):
                response = await self.client.send(request, stream=True)
                try:
                    body = await self._bounded_json(response)
                finally:
                    await response.aclose()
        except (httpx.ConnectError, httpx.ConnectTimeout):
            return ActionResult(action.name, "unavailable", message("unavailable", language))
        except (TimeoutError, httpx.TimeoutException, httpx.TransportError):
            # The request may have reached the API: for a change that is not "nothing happened".
            kind = "unknown" if action.changes else "unavailable"
            return ActionResult(action.name, kind, message(kind, language))
        except _Garbage:
            kind = "unknown" if action.changes and 200 <= response.status_code < 300 else "invalid_response"
            return ActionResult(action.name, kind, message(kind, language), status_code=response.status_code)
        return self._interpret(action, response.status_code, body, parameters, language)

    async def _bounded_json(self, response: httpx.Response) -> Any:
        content_type = response.headers.get("content-type", "")
        length = response.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_response_bytes:
            raise _Garbage("too large")
        chunks, size = [], 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self.max_response_bytes:
                raise _Garbage("too large")
            chunks.append(chunk)
        if response.status_code >= 500:
            return None
        if "json" not in content_type:
            raise _Garbage("not JSON")
        try:
            return json.loads(b"".join(chunks))
        except (ValueError, RecursionError) as exc:
            raise _Garbage("not JSON") from exc

    def _interpret(self, action: Action, status: int, body: Any, parameters: dict[str, Any], language: str) -> ActionResult:
        record_word = _RECORD_WORDS_KO.get(action.response.record, action.response.record) if language == "ko" else action.response.record
        if status >= 500 or status in (401, 403, 429):
            kind = "unknown" if action.changes and status >= 500 else "unavailable"
            return ActionResult(action.name, kind, message(kind, language), status_code=status)
        if status == 404:
            return ActionResult(action.name, "not_found", message("not_found", language, record=record_word), status_code=status)
        if 400 <= status < 500:
            reason = ""
            if isinstance(body, dict) and isinstance(body.get("error"), dict):
                reason = _clean(body["error"].get("message", ""))[:200]
            return ActionResult(action.name, "rejected", message("rejected", language, reason=reason or f"HTTP {status}"), status_code=status)
        if not 200 <= status < 300 or not isinstance(body, dict | list):
            return ActionResult(action.name, "invalid_response", message("invalid_response", language), status_code=status)
        records = [{path: [_clean(value) for value in values] for path, values in record.items()}
                   for record in records_of(action, _trimmed(body))]
        if not action.response.list and (not records or not records[0].get(action.response.id_field)):
            return ActionResult(action.name, "invalid_response", message("invalid_response", language), status_code=status)
        reply: ActionReply = render_reply(action, records, {k: v for k, v in parameters.items() if v is not None}, language)
        return ActionResult(action.name, "ok", reply.text, status_code=status, records=records, citations=reply.citations)


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return _CONTROL.sub("", value)[:MAX_VALUE_CHARS]
    if isinstance(value, bool | int | float) or value is None:
        return value
    return _CONTROL.sub("", str(value))[:MAX_VALUE_CHARS]


def _trimmed(body: Any, depth: int = 0) -> Any:
    """At most 200 elements a list and 12 levels deep: the rest of a hostile answer is dropped."""
    if depth > 12:
        return None
    if isinstance(body, list):
        return [_trimmed(item, depth + 1) for item in body[:200]]
    if isinstance(body, dict):
        return {str(key)[:64]: _trimmed(value, depth + 1) for key, value in list(body.items())[:200]}
    return body
