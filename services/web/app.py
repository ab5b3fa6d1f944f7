"""The ASGI app: transcoded ChatService routes (JSON, and Server-Sent Events for streams), the
OpenAI-compatible endpoint, `/openapi.json` and `/healthz`. Every request is one gRPC call to the
gateway with the caller's key (`Authorization: Bearer` or `x-api-key`) and request id, so keys,
roles, limits and statuses are the gateway's own."""

from __future__ import annotations

import html
import json
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route as StarletteRoute

from services.web import openai_compat
from services.web.openapi import openapi_document
from services.web.settings import WebSettings
from services.web.transcoding import HttpError, Route, http_routes, to_json
from supportbot.actions.identity import issue_identity_token
from supportbot.core.auth import API_KEY_METADATA_KEY, KeyRing
from supportbot.core.channels import create_channel
from supportbot.core.errors import InvalidArgument, check_collection_name
from supportbot.core.logging import REQUEST_ID_METADATA_KEY, set_request_id
from supportbot.v1 import chat_pb2

log = logging.getLogger(__name__)
CHAT_SERVICE = chat_pb2.DESCRIPTOR.services_by_name["ChatService"]
VERSION = "0.1.0"
WIDGET = Path(__file__).parent / "static" / "widget.js"
DEMO_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Lumio Help Center: widget demo</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:720px;margin:40px auto;padding:0 20px;color:#222}}</style>
</head><body>
<h1>Lumio Help Center</h1>
<p>This page is any page of yours: the chat bubble in the corner comes from one script tag.</p>
<pre>&lt;script src="/widget.js" data-key="{key}"{shown_token} defer&gt;&lt;/script&gt;</pre>
{signed_in}<script src="/widget.js" data-key="{key}" data-title="{title}"{options} defer></script>
</body></html>
"""
DEMO_SIGNED_IN = """<p>Signed in as <b>{customer}</b>, a customer of the demo shop: this server signed the identity token
for them with the identity secret, as your own server signs one for its signed-in visitor. Ask about
your orders or subscription. Others: {others}.</p>
"""
DEMO_SIGN_IN = "<p>Try account actions as a customer of the demo shop: {links}.</p>\n"


def presented_key(request: Request) -> str:
    """The caller's key: `Authorization: Bearer <key>` (what OpenAI clients send) or `x-api-key`."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else request.headers.get(API_KEY_METADATA_KEY, "")


class Origins:
    """Which web pages may use which keys. A browser names its page's origin on every call: a
    publishable key works from its own origins only; any other key only from the origins the
    deployment trusts (a secret key in a web page is a leaked key)."""

    def __init__(self, keys: KeyRing | None, trusted: list[str]) -> None:
        self.keys = keys
        self.trusted = set(trusted)

    def for_cors(self) -> list[str]:
        return sorted(self.trusted | {origin for p in (self.keys.principals() if self.keys else []) for origin in p.origins})

    def allows(self, origin: str) -> bool:
        """Whether a page at `origin` may call at all (CORS): asked on every request, so a key
        added to the keys file works without a restart."""
        return origin.rstrip("/") in self.for_cors()

    def check(self, request: Request, key: str) -> None:
        origin = request.headers.get("origin", "").rstrip("/")
        principal = self.keys.lookup(key) if self.keys is not None and key else None
        if principal is not None and principal.role == "publishable":
            # No Origin: a same-origin GET, or not a browser (the key is public anyway).
            if origin and origin not in principal.origins:
                raise HttpError(grpc.StatusCode.PERMISSION_DENIED, f"this publishable key may not be used from {origin}")
        elif origin and origin not in self.trusted:
            raise HttpError(grpc.StatusCode.PERMISSION_DENIED,
                            f"this key may not be used from a web page at {origin}: web pages use a publishable key")


class KeyedCORSMiddleware(CORSMiddleware):
    """CORS with the allowed origins read from the keys file as it is now."""

    def __init__(self, app: Any, origins: Origins, **options: Any) -> None:
        super().__init__(app, **options)
        self.origins = origins

    def is_allowed_origin(self, origin: str) -> bool:
        return self.origins.allows(origin)


async def read_body(request: Request, limit: int) -> bytes:
    """The body, up to `limit` bytes; JSON only."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise HttpError(grpc.StatusCode.INVALID_ARGUMENT, "send the body as application/json", http_status=415)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HttpError(grpc.StatusCode.RESOURCE_EXHAUSTED, f"the body is over the limit of {limit} bytes", 413)
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > limit:
            raise HttpError(grpc.StatusCode.RESOURCE_EXHAUSTED, f"the body is over the limit of {limit} bytes", 413)
    return bytes(body)


def _event(message: Any) -> dict[str, str]:
    """One Server-Sent Event per message; its `event` is the oneof case (session, sources,
    delta, result) where the message has one."""
    oneofs = message.DESCRIPTOR.oneofs
    kind = message.WhichOneof(oneofs[0].name) if oneofs else None
    return {"event": kind or "message", "data": json.dumps(to_json(message), ensure_ascii=False)}


async def _opened(call: Any) -> Any:
    """A server stream's iterator and its first message (None when it ended empty). The first
    message decides the HTTP status: a refusal becomes a plain error response, not an event."""
    messages = call.__aiter__()
    try:
        return messages, await messages.__anext__()
    except grpc.aio.AioRpcError as error:
        raise HttpError.from_rpc(error) from error
    except StopAsyncIteration:
        return messages, None


@dataclass(frozen=True)
class DemoPage:
    """What the widget demo page adds for its visitor: the identity token of the customer it
    signed in ("" for none), and the paragraph that says so or offers the sign-in."""

    token: str = ""
    html: str = ""


class DemoSignIn:
    """The widget demo page's sign-in as a customer of the demo shop (`?customer=c-ben`), so a
    visitor can try account actions: the token is signed here with the identity secret the
    gateway checks, the way a company's own server signs one for its signed-in visitor; the
    secret never reaches the page. Off (no customers or no secret: account actions are off)."""

    def __init__(self, customers: list[str], secret: str) -> None:
        self.customers = customers if secret else []
        self.secret = secret

    def page(self, customer: str, query: Mapping[str, str]) -> DemoPage:
        """Raises InvalidArgument for a sign-in this server cannot make."""
        if not customer:
            links = ", ".join(self._link(other, query) for other in self.customers)
            return DemoPage(html=DEMO_SIGN_IN.format(links=links) if links else "")
        if not self.customers:
            raise InvalidArgument("signing in as a demo customer needs account actions: start the stack with "
                                  "`supportbot up --actions` (the demo shop and an identity secret)")
        if customer not in self.customers:
            raise InvalidArgument(f"{customer!r} is no customer of the demo shop: one of {', '.join(self.customers)}")
        others = ", ".join(self._link(other, query) for other in self.customers if other != customer)
        return DemoPage(issue_identity_token(customer, self.secret),
                        DEMO_SIGNED_IN.format(customer=html.escape(customer), others=others))

    @staticmethod
    def _link(customer: str, query: Mapping[str, str]) -> str:
        target = urlencode({**query, "customer": customer})
        return f'<a href="?{html.escape(target, quote=True)}">{html.escape(customer)}</a>'


class WebApp:
    def __init__(self, settings: WebSettings) -> None:
        self.settings = settings
        self._channel: grpc.aio.Channel | None = None
        self.openapi = openapi_document(CHAT_SERVICE, VERSION)
        self.routes = {route.name: route for route in http_routes(CHAT_SERVICE)}
        keys = KeyRing.load(settings.api_keys_file) if settings.api_keys_file and settings.api_keys_file.exists() else None
        self.origins = Origins(keys, settings.allowed_origins)
        self.demo_sign_in = DemoSignIn(settings.demo_customers, settings.demo_identity_secret.get_secret_value())

    def caller_metadata(self, request: Request) -> tuple[tuple[str, str], ...]:
        """The metadata of the gateway call: the caller's key, once its origin is allowed."""
        key = presented_key(request)
        self.origins.check(request, key)
        return ((API_KEY_METADATA_KEY, key),) if key else ()

    @property
    def channel(self) -> grpc.aio.Channel:
        """The gateway channel, made on first use: a grpc.aio channel belongs to the event loop
        it was made in, which is the server's (uvicorn starts its own)."""
        if self._channel is None:
            settings = self.settings
            roots = settings.gateway_root_certificates.read_bytes() if settings.gateway_root_certificates else None
            self._channel = create_channel(settings.gateway_address, retry_services=["supportbot.v1.ChatService"],
                                           root_certificates=roots)
        return self._channel

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close(None)
            self._channel = None

    def _call(self, route: Route) -> Any:
        kind = self.channel.unary_stream if route.streaming else self.channel.unary_unary
        return kind(route.grpc_path, request_serializer=route.request_class.SerializeToString,
                    response_deserializer=route.response_class.FromString)

    async def _request(self, route: Route, request: Request) -> Any:
        body = await read_body(request, self.settings.max_body_bytes) if route.body == "*" else b""
        query = {key: request.query_params.getlist(key) for key in request.query_params}
        return route.request(dict(request.path_params), query, body)

    def endpoint(self, route: Route) -> Any:
        async def handle(request: Request) -> Response:
            message = await self._request(route, request)
            metadata = self.caller_metadata(request)
            if not route.streaming:
                try:
                    response = await self._call(route)(message, metadata=metadata, timeout=self.settings.gateway_timeout_s)
                except grpc.aio.AioRpcError as error:
                    raise HttpError.from_rpc(error) from error
                return JSONResponse(to_json(response))
            call = self._call(route)(message, metadata=metadata, timeout=self.settings.gateway_timeout_s)
            messages, first = await _opened(call)
            return EventSourceResponse(self._events(call, messages, first), ping=15)

        return handle

    async def _events(self, call: Any, messages: Any, first: Any) -> AsyncIterator[dict[str, str]]:
        try:
            if first is not None:
                yield _event(first)
                async for message in messages:
                    yield _event(message)
        except grpc.aio.AioRpcError as error:
            yield {"event": "error", "data": json.dumps(HttpError.from_rpc(error).body())}
        finally:
            # The client left mid-answer: the gateway stops generating and keeps the turn.
            call.cancel()

    # -- OpenAI-compatible ------------------------------------------------------------------
    async def chat_completions(self, request: Request) -> Response:
        try:
            body = json.loads(await read_body(request, self.settings.max_body_bytes) or b"null")
        except json.JSONDecodeError as error:
            raise HttpError(grpc.StatusCode.INVALID_ARGUMENT, f"the body is not valid JSON: {error}") from error
        message, stream = openai_compat.chat_request(body, self.settings.model_name)
        call = self._call(self.routes["Chat"])(
            message, metadata=self.caller_metadata(request), timeout=self.settings.gateway_timeout_s
        )
        responses, first = await _opened(call)
        if first is None:
            raise HttpError(grpc.StatusCode.UNAVAILABLE, "the gateway ended the turn without a result")
        session_id = first.session.session_id
        model = self.settings.model_name
        if not stream:
            try:
                async for response in responses:
                    if response.HasField("result"):
                        return JSONResponse(openai_compat.completion(model, session_id, response.result))
            except grpc.aio.AioRpcError as error:
                raise HttpError.from_rpc(error) from error
            raise HttpError(grpc.StatusCode.UNAVAILABLE, "the gateway ended the turn without a result")
        return EventSourceResponse(self._completion_chunks(call, responses, model, session_id, first.session.turn_id), ping=15)

    async def _completion_chunks(self, call: Any, responses: Any, model: str, session_id: str, turn_id: str) -> AsyncIterator[dict[str, str]]:
        completion_id = f"chatcmpl-{turn_id}"

        def data(payload: dict[str, Any]) -> dict[str, str]:
            return {"data": json.dumps(payload, ensure_ascii=False)}

        try:
            yield data(openai_compat.chunk(model, completion_id, {"role": "assistant", "content": ""}))
            async for response in responses:
                if response.HasField("delta"):
                    yield data(openai_compat.chunk(model, completion_id, {"content": response.delta.text}))
                elif response.HasField("result"):
                    yield data(openai_compat.chunk(
                        model, completion_id, {}, "stop", citations=openai_compat.citations(response.result),
                        supportbot=openai_compat.extension(session_id, response.result),
                    ))
            yield {"data": "[DONE]"}
        except grpc.aio.AioRpcError as error:
            yield data(openai_compat.error_body(HttpError.from_rpc(error)))
        finally:
            call.cancel()

    async def models(self, request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [
            {"id": self.settings.model_name, "object": "model", "created": 0, "owned_by": "supportbot"},
        ]})

    # -- the chat widget ----------------------------------------------------------------------
    async def widget_js(self, request: Request) -> Response:
        return Response(WIDGET.read_text(), media_type="text/javascript; charset=utf-8",
                        headers={"cache-control": "public, max-age=300"})

    async def widget_demo(self, request: Request) -> Response:
        """A page with the widget on it, using a publishable key allowed on this very origin."""
        own = f"{request.url.scheme}://{request.url.netloc}"
        keys = self.origins.keys
        key = keys.publishable_key(own) if keys else ""
        if not key:
            return HTMLResponse(f"<p>No publishable key allows {html.escape(own)}: add one to the keys file "
                                "(role publishable, origins).</p>", status_code=404)
        # ?lang=ko&collection=helpcenter-ko shows the widget in Korean over the Korean sample.
        language = request.query_params.get("lang", "")
        collection = request.query_params.get("collection", "")
        try:
            if language not in ("", "en", "ko"):
                raise InvalidArgument("lang is en or ko")
            collection = check_collection_name(collection) if collection else ""
        except InvalidArgument as exc:
            return HTMLResponse(f"<p>{html.escape(str(exc))}</p>", status_code=400)
        try:
            sign_in = self.demo_sign_in.page(request.query_params.get("customer", ""), request.query_params)
        except InvalidArgument as exc:
            return HTMLResponse(f"<p>{html.escape(str(exc))}</p>", status_code=400)
        options = "".join(f' data-{name}="{html.escape(value, quote=True)}"' for name, value in
                          (("lang", language), ("collection", collection), ("identity-token", sign_in.token)) if value)
        title = "Lumio 고객센터" if language == "ko" else "Lumio support"
        return HTMLResponse(DEMO_PAGE.format(key=html.escape(key, quote=True), title=title, options=options,
                                             shown_token=' data-identity-token="eyJ..."' if sign_in.token else "",
                                             signed_in=sign_in.html))

    # -- operations -------------------------------------------------------------------------
    async def openapi_json(self, request: Request) -> Response:
        return JSONResponse(self.openapi)

    async def healthz(self, request: Request) -> Response:
        """Ready when the gateway says it is serving (the probe for a load balancer)."""
        try:
            health = await health_pb2_grpc.HealthStub(self.channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
            serving = health.status == health_pb2.HealthCheckResponse.SERVING
        except grpc.aio.AioRpcError:
            serving = False
        return JSONResponse({"status": "SERVING" if serving else "NOT_SERVING"}, status_code=200 if serving else 503)


def build_app(settings: WebSettings) -> Starlette:
    web = WebApp(settings)
    routes = [
        StarletteRoute("/openapi.json", web.openapi_json, methods=["GET"]),
        StarletteRoute("/healthz", web.healthz, methods=["GET"]),
        StarletteRoute("/v1/chat/completions", web.chat_completions, methods=["POST"]),
        StarletteRoute("/v1/models", web.models, methods=["GET"]),
        StarletteRoute("/widget.js", web.widget_js, methods=["GET"]),
        StarletteRoute("/widget-demo", web.widget_demo, methods=["GET"]),
        *(StarletteRoute(route.template, web.endpoint(route), methods=[route.verb]) for route in web.routes.values()),
    ]
    middleware = [
        Middleware(RequestIdMiddleware),
        Middleware(
            KeyedCORSMiddleware,  # type: ignore[arg-type]  # mypy misreads Starlette's ParamSpec'd factory
            origins=web.origins, allow_methods=["GET", "POST"],
            allow_headers=["authorization", API_KEY_METADATA_KEY, "content-type", REQUEST_ID_METADATA_KEY],
            expose_headers=[REQUEST_ID_METADATA_KEY], max_age=600,
        ),
    ]

    async def http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, HttpError)
        body = openai_compat.error_body(error) if request.url.path == "/v1/chat/completions" else error.body()
        return JSONResponse(body, status_code=error.http_status)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await web.close()

    return Starlette(routes=routes, middleware=middleware, exception_handlers={HttpError: http_error},
                     lifespan=lifespan)


class RequestIdMiddleware:
    """Binds the caller's x-request-id (bounded, else a new one) to the request, so the gateway
    call carries it, and returns it in the response headers."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]}
        request_id = set_request_id(headers.get(REQUEST_ID_METADATA_KEY))

        async def send_with_id(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        await self.app(scope, receive, send_with_id)
