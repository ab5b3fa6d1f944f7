"""The demo shop over real HTTP on its SQLite database: authentication, another customer's records
answering exactly like missing ones, idempotent changes (two tabs at once included), the business
rules, and its OpenAPI document."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from services.shop.server import ShopServer
from services.shop.settings import ShopSettings
from services.shop.store import ShopStore

TOKEN = "shop-test-token-" + "x" * 24


@pytest.fixture()
def shop(tmp_path: Path):
    with ShopServer(ShopSettings(database=str(tmp_path / "shop.sqlite3"), port=0, service_token=TOKEN)) as server:
        yield server


def call(shop: ShopServer, method: str, path: str, customer: str = "c-ana", **kwargs) -> httpx.Response:
    headers = {"Authorization": f"Bearer {TOKEN}", "X-Customer-Id": customer, **kwargs.pop("headers", {})}
    return httpx.request(method, shop.url + path, headers=headers, timeout=10, **kwargs)


def test_every_call_needs_the_service_token_and_a_customer(shop: ShopServer) -> None:
    assert httpx.get(shop.url + "/v1/orders", headers={"X-Customer-Id": "c-ana"}).status_code == 401
    wrong = httpx.get(shop.url + "/v1/orders", headers={"Authorization": "Bearer nope", "X-Customer-Id": "c-ana"})
    assert wrong.status_code == 401
    no_customer = httpx.get(shop.url + "/v1/orders", headers={"Authorization": f"Bearer {TOKEN}"})
    assert no_customer.status_code == 400 and no_customer.json()["error"]["code"] == "customer_required"


def test_the_shop_refuses_to_start_without_a_token() -> None:
    with pytest.raises(ValueError, match="SERVICE_TOKEN"):
        ShopServer(ShopSettings(database=":memory:", port=0))


def test_another_customers_order_answers_exactly_like_a_missing_one(shop: ShopServer) -> None:
    mine = call(shop, "GET", "/v1/orders/L-104233")
    assert mine.status_code == 200 and mine.json()["tracking_number"] == "1Z999AA10123456784"
    theirs = call(shop, "GET", "/v1/orders/L-100001")
    missing = call(shop, "GET", "/v1/orders/L-999999")
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["error"]["code"] == missing.json()["error"]["code"]
    assert "L-100001" not in [o["order_id"] for o in call(shop, "GET", "/v1/orders").json()["orders"]]


def test_address_changes_only_while_processing(shop: ShopServer) -> None:
    shipped = call(shop, "POST", "/v1/orders/L-104233/address", json={"address": "9 New St, Leeds LS2 1AA"})
    assert shipped.status_code == 409 and shipped.json()["error"]["code"] == "order_not_processing"
    changed = call(shop, "POST", "/v1/orders/L-104240/address", json={"address": "9 New St, Leeds LS2 1AA"})
    assert changed.status_code == 200
    assert call(shop, "GET", "/v1/orders/L-104240").json()["shipping_address"] == "9 New St, Leeds LS2 1AA"


def test_returns_follow_the_help_centers_30_day_window(shop: ShopServer) -> None:
    assert call(shop, "POST", "/v1/returns", customer="c-ben", json={"order_id": "L-100003"}).json()["error"]["code"] == "return_window_closed"
    assert call(shop, "POST", "/v1/returns", json={"order_id": "L-104240"}).json()["error"]["code"] == "order_not_delivered"
    started = call(shop, "POST", "/v1/returns", json={"order_id": "L-104198", "reason": "too bright"})
    assert started.status_code == 201 and started.json()["status"] == "label_sent"
    again = call(shop, "POST", "/v1/returns", json={"order_id": "L-104198"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "return_exists"
    assert [r["order_id"] for r in call(shop, "GET", "/v1/returns").json()["returns"]] == ["L-104198"]


def test_a_repeated_idempotency_key_returns_the_first_answer_and_changes_nothing_more(shop: ShopServer) -> None:
    key = {"Idempotency-Key": "sb-test-key-0001"}
    first = call(shop, "POST", "/v1/subscriptions/S-2001/cancel", headers=key)
    second = call(shop, "POST", "/v1/subscriptions/S-2001/cancel", headers=key)
    assert first.status_code == second.status_code == 200
    assert second.json()["replayed"] is True and second.json()["ends_on"] == first.json()["ends_on"]
    # Without the key, a second cancel is a conflict: the key is what makes a retry safe.
    assert call(shop, "POST", "/v1/subscriptions/S-2001/cancel").status_code == 409
    other = call(shop, "POST", "/v1/orders/L-104240/address", headers=key, json={"address": "1 Other Rd, York"})
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"


def test_two_tabs_confirming_at_once_make_one_return(shop: ShopServer) -> None:
    key = {"Idempotency-Key": "sb-two-tabs-0001"}
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: call(shop, "POST", "/v1/returns", headers=key, json={"order_id": "L-104198"}), range(4)))
    assert {answer.status_code for answer in answers} == {201}
    assert len({answer.json()["return_id"] for answer in answers}) == 1
    assert len(call(shop, "GET", "/v1/returns").json()["returns"]) == 1


def test_bad_bodies_get_clear_errors(shop: ShopServer) -> None:
    assert call(shop, "POST", "/v1/returns", content=b"{not json").json()["error"]["code"] == "invalid_json"
    assert call(shop, "POST", "/v1/returns", json={"order_id": "../../x"}).json()["error"]["code"] == "invalid_order_id"
    assert call(shop, "POST", "/v1/returns", content=b"x" * 20000).status_code == 413
    bad_key = call(shop, "POST", "/v1/subscriptions/S-2001/cancel", headers={"Idempotency-Key": "a b"})
    assert bad_key.status_code == 400


def test_openapi_document_lists_every_route(shop: ShopServer) -> None:
    document = httpx.get(shop.url + "/openapi.json").json()
    assert document["openapi"].startswith("3.")
    operations = {op["operationId"] for path in document["paths"].values() for op in path.values()}
    assert {"order_status", "list_orders", "cancel_subscription", "start_return", "change_delivery_address"} <= operations


def test_data_survives_a_restart(tmp_path: Path) -> None:
    settings = ShopSettings(database=str(tmp_path / "shop.sqlite3"), port=0, service_token=TOKEN)
    with ShopServer(settings) as server:
        assert call(server, "POST", "/v1/subscriptions/S-2001/cancel").status_code == 200
    with ShopServer(settings) as server:
        statuses = {s["subscription_id"]: s["status"] for s in call(server, "GET", "/v1/subscriptions").json()["subscriptions"]}
    assert statuses == {"S-2001": "cancelled"}


def test_seeded_dates_are_relative_to_the_seeding_day() -> None:
    store = ShopStore(":memory:", today=dt.date(2026, 1, 31))
    store.seed_if_empty()
    assert store.order("c-ana", "L-104198")["delivered_on"] == "2026-01-24"
    assert store.seed_if_empty() is False


def test_python_dash_m_services_shop_serves_and_stops_cleanly(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "SUPPORTBOT_SHOP_PORT": str(port), "SUPPORTBOT_SHOP_DATABASE": str(tmp_path / "s.sqlite3"),
           "SUPPORTBOT_SHOP_SERVICE_TOKEN": TOKEN, "SUPPORTBOT_SHOP_LOG_JSON": "false"}
    process = subprocess.Popen([sys.executable, "-m", "services.shop"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, answer = time.monotonic() + 60, None
        while time.monotonic() < deadline and process.poll() is None and answer is None:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/v1/orders", headers={"Authorization": f"Bearer {TOKEN}", "X-Customer-Id": "c-jiwoo"})
            except httpx.TransportError:
                time.sleep(0.2)
        assert answer is not None, process.stdout.read() if process.stdout else ""
        assert [o["order_id"] for o in answer.json()["orders"]] == ["L-200103", "L-200101", "L-200102"]
    finally:
        process.terminate()
        assert process.wait(timeout=20) == 0


def test_a_failing_database_is_said_plainly_and_changes_nothing(shop: ShopServer, tmp_path: Path) -> None:
    assert call(shop, "GET", "/healthz").json() == {"status": "ok"}
    shop.store.close()  # the database goes away under the running API
    read = call(shop, "GET", "/v1/orders")
    assert read.status_code == 503 and read.json()["error"]["code"] == "storage_unavailable"
    change = call(shop, "POST", "/v1/subscriptions/S-2001/cancel", headers={"Idempotency-Key": "key-db-gone-1"})
    assert change.status_code == 503 and "nothing was changed" in change.json()["error"]["message"]
    assert call(shop, "GET", "/healthz").status_code == 503
    # The file on disk still holds the subscription as it was.
    reopened = ShopStore(str(tmp_path / "shop.sqlite3"))
    assert reopened.subscriptions("c-ana")[0]["status"] == "active"
    reopened.close()
