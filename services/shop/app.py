"""The shop's HTTP API (Starlette), documented at /openapi.json (OpenAPI 3.1). Every /v1 call
needs the service token (Authorization: Bearer ...) and the customer it acts for (X-Customer-Id);
changes take an Idempotency-Key."""

from __future__ import annotations

import hmac
import json
import re
import sqlite3
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.shop.settings import ShopSettings
from services.shop.store import ShopError, ShopStore

ORDER_ID = r"L-\d{6}"
SUBSCRIPTION_ID = r"S-\d{4}"
CUSTOMER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9_.:-]{8,128}$")
MAX_BODY_BYTES = 16 * 1024


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


class ShopApi:
    def __init__(self, settings: ShopSettings, store: ShopStore) -> None:
        self.settings = settings
        self.store = store
        if not settings.service_token.get_secret_value():
            raise ValueError("SUPPORTBOT_SHOP_SERVICE_TOKEN must be set: the shop API is never open")

    def _customer(self, request: Request) -> str | JSONResponse:
        token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(token.encode(), self.settings.service_token.get_secret_value().encode()):
            return _error(401, "unauthenticated", "a valid service token is required (Authorization: Bearer ...)")
        customer_id = request.headers.get(self.settings.customer_header, "")
        if not CUSTOMER_ID.match(customer_id):
            return _error(400, "customer_required", f"the {self.settings.customer_header} header names the customer")
        return customer_id

    async def _body(self, request: Request) -> dict[str, Any] | JSONResponse:
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            return _error(413, "body_too_large", f"request bodies are at most {MAX_BODY_BYTES} bytes")
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return _error(400, "invalid_json", "the request body is not JSON")
        return body if isinstance(body, dict) else _error(400, "invalid_json", "the request body must be a JSON object")

    def _run(self, call: Any) -> JSONResponse:
        try:
            result = call()
        except ShopError as exc:
            return _error(exc.status, exc.code, str(exc))
        except sqlite3.Error:
            # A change rolls back with its transaction (ShopStore.change), so nothing happened;
            # said as such rather than Starlette's bare 500 page.
            return _error(503, "storage_unavailable", "the shop's database is not available; nothing was changed")
        if hasattr(result, "status"):
            return JSONResponse(result.body, status_code=result.status)
        return JSONResponse(result)

    async def _change(self, request: Request, operation: str, fields: dict[str, Any]) -> JSONResponse:
        customer = self._customer(request)
        if isinstance(customer, JSONResponse):
            return customer
        key = request.headers.get("idempotency-key", "")
        if key and not IDEMPOTENCY_KEY.match(key):
            return _error(400, "invalid_idempotency_key", "Idempotency-Key: 8-128 letters, digits, '_', '.', ':' or '-'")
        return self._run(lambda: self.store.change(customer, key, fields, operation))

    def _read(self, request: Request, read: Any) -> JSONResponse:
        customer = self._customer(request)
        if isinstance(customer, JSONResponse):
            return customer
        return self._run(lambda: read(customer))

    async def list_orders(self, request: Request) -> Response:
        return self._read(request, lambda customer: {"orders": self.store.orders(customer)})

    async def get_order(self, request: Request) -> Response:
        return self._read(request, lambda customer: self.store.order(customer, request.path_params["order_id"]))

    async def change_address(self, request: Request) -> Response:
        body = await self._body(request)
        if isinstance(body, JSONResponse):
            return body
        address = body.get("address")
        if not isinstance(address, str) or not 5 <= len(address.strip()) <= 300:
            return _error(400, "invalid_address", "address: 5-300 characters")
        return await self._change(request, "change_address", {"order_id": request.path_params["order_id"], "address": address.strip()})

    async def list_subscriptions(self, request: Request) -> Response:
        return self._read(request, lambda customer: {"subscriptions": self.store.subscriptions(customer)})

    async def cancel_subscription(self, request: Request) -> Response:
        return await self._change(request, "cancel_subscription", {"subscription_id": request.path_params["subscription_id"]})

    async def list_returns(self, request: Request) -> Response:
        return self._read(request, lambda customer: {"returns": self.store.returns(customer)})

    async def start_return(self, request: Request) -> Response:
        body = await self._body(request)
        if isinstance(body, JSONResponse):
            return body
        order_id, reason = body.get("order_id"), body.get("reason", "not given")
        if not isinstance(order_id, str) or not re.fullmatch(ORDER_ID, order_id):
            return _error(400, "invalid_order_id", "order_id: an order number like L-104233")
        if not isinstance(reason, str) or len(reason) > 500:
            return _error(400, "invalid_reason", "reason: at most 500 characters")
        return await self._change(request, "start_return", {"order_id": order_id, "reason": reason or "not given"})

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(openapi_document(self.settings.customer_header))

    async def healthz(self, request: Request) -> Response:
        # Healthy only while the database answers: a shop that cannot read says so.
        if not self.store.healthy():
            return _error(503, "storage_unavailable", "the shop's database is not available")
        return JSONResponse({"status": "ok"})


def build_app(settings: ShopSettings, store: ShopStore | None = None) -> Starlette:
    if store is None:
        store = ShopStore(settings.database_path(), return_window_days=settings.return_window_days)
        if settings.seed:
            store.seed_if_empty()
    api = ShopApi(settings, store)
    routes = [
        Route("/openapi.json", api.openapi, methods=["GET"]),
        Route("/healthz", api.healthz, methods=["GET"]),
        Route("/v1/orders", api.list_orders, methods=["GET"]),
        Route("/v1/orders/{order_id}", api.get_order, methods=["GET"]),
        Route("/v1/orders/{order_id}/address", api.change_address, methods=["POST"]),
        Route("/v1/subscriptions", api.list_subscriptions, methods=["GET"]),
        Route("/v1/subscriptions/{subscription_id}/cancel", api.cancel_subscription, methods=["POST"]),
        Route("/v1/returns", api.list_returns, methods=["GET"]),
        Route("/v1/returns", api.start_return, methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    app.state.store = store
    return app


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties}


_STRING = {"type": "string"}
_NULLABLE = {"type": ["string", "null"]}
ORDER_SCHEMA = _object({
    "order_id": {"type": "string", "pattern": f"^{ORDER_ID}$"},
    "status": {"type": "string", "enum": ["processing", "shipped", "delivered", "cancelled"]},
    "placed_on": {"type": "string", "format": "date"}, "delivered_on": _NULLABLE,
    "shipping_address": _STRING, "carrier": _NULLABLE, "tracking_number": _NULLABLE, "total": _STRING,
    "items": {"type": "array", "items": _object({"sku": _STRING, "name": _STRING, "quantity": {"type": "integer"}, "price": _STRING})},
})
SUBSCRIPTION_SCHEMA = _object({
    "subscription_id": {"type": "string", "pattern": f"^{SUBSCRIPTION_ID}$"}, "plan": _STRING,
    "status": {"type": "string", "enum": ["active", "cancelled"]}, "renews_on": _NULLABLE, "ends_on": _NULLABLE,
})
RETURN_SCHEMA = _object({
    "return_id": _STRING, "order_id": _STRING, "reason": _STRING, "status": _STRING, "created_on": _STRING, "label_url": _STRING,
})


def openapi_document(customer_header: str = "X-Customer-Id") -> dict[str, Any]:
    """The API as OpenAPI 3.1; `supportbot.actions.openapi` imports it as a starting point."""

    def json_body(schema: dict[str, Any]) -> dict[str, Any]:
        return {"content": {"application/json": {"schema": schema}}}

    errors = {
        "401": {"description": "No or wrong service token"},
        "404": {"description": "No such record for this customer (another customer's record included)"},
    }
    order_id = {"name": "order_id", "in": "path", "required": True, "description": "The order number, like L-104233",
                "schema": {"type": "string", "pattern": f"^{ORDER_ID}$"}}
    idempotency = {"name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string"},
                   "description": "A change with a key already used returns the first answer"}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Lumio shop (supportbot demo)", "version": "1.0.0",
                 "description": f"Orders, subscriptions and returns. Every call: Authorization: Bearer <service token> and {customer_header}."},
        "servers": [{"url": "http://127.0.0.1:8090"}],
        "components": {"securitySchemes": {
            "serviceToken": {"type": "http", "scheme": "bearer"},
            "customer": {"type": "apiKey", "in": "header", "name": customer_header},
        }},
        "security": [{"serviceToken": [], "customer": []}],
        "paths": {
            "/v1/orders": {"get": {
                "operationId": "list_orders", "summary": "List my orders",
                "responses": {"200": {"description": "The customer's orders, newest first",
                                      **json_body(_object({"orders": {"type": "array", "items": ORDER_SCHEMA}}))}, **errors},
            }},
            "/v1/orders/{order_id}": {"get": {
                "operationId": "order_status", "summary": "Status, items and tracking of one order",
                "parameters": [order_id],
                "responses": {"200": {"description": "The order", **json_body(ORDER_SCHEMA)}, **errors},
            }},
            "/v1/orders/{order_id}/address": {"post": {
                "operationId": "change_delivery_address", "summary": "Change the delivery address of a processing order",
                "parameters": [order_id, idempotency],
                "requestBody": {"required": True, **json_body({**_object({"address": {"type": "string", "minLength": 5, "maxLength": 300}}), "required": ["address"]})},
                "responses": {"200": {"description": "The order with its new address", **json_body(ORDER_SCHEMA)},
                              "409": {"description": "The order has shipped"}, **errors},
            }},
            "/v1/subscriptions": {"get": {
                "operationId": "list_subscriptions", "summary": "List my subscriptions",
                "responses": {"200": {"description": "The customer's subscriptions",
                                      **json_body(_object({"subscriptions": {"type": "array", "items": SUBSCRIPTION_SCHEMA}}))}, **errors},
            }},
            "/v1/subscriptions/{subscription_id}/cancel": {"post": {
                "operationId": "cancel_subscription", "summary": "Cancel a subscription at the end of its paid period",
                "parameters": [{"name": "subscription_id", "in": "path", "required": True, "description": "The subscription, like S-2001",
                                "schema": {"type": "string", "pattern": f"^{SUBSCRIPTION_ID}$"}}, idempotency],
                "responses": {"200": {"description": "The cancelled subscription", **json_body(SUBSCRIPTION_SCHEMA)},
                              "409": {"description": "Already cancelled"}, **errors},
            }},
            "/v1/returns": {
                "get": {"operationId": "list_returns", "summary": "List my returns",
                        "responses": {"200": {"description": "The customer's returns",
                                              **json_body(_object({"returns": {"type": "array", "items": RETURN_SCHEMA}}))}, **errors}},
                "post": {
                    "operationId": "start_return", "summary": "Start a return of a delivered order",
                    "parameters": [idempotency],
                    "requestBody": {"required": True, **json_body({**_object({
                        "order_id": {"type": "string", "pattern": f"^{ORDER_ID}$", "description": "The order to return"},
                        "reason": {"type": "string", "maxLength": 500, "description": "Why it goes back"}}), "required": ["order_id"]})},
                    "responses": {"201": {"description": "The return, with its label", **json_body(RETURN_SCHEMA)},
                                  "409": {"description": "Not delivered, outside the 30-day window, or already returned"}, **errors},
                },
            },
        },
    }
