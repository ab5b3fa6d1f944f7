"""The shop's data on SQLite. Every read and change takes the customer it acts for: a record of
another customer is not found, exactly like one that does not exist. Changes carrying an
idempotency key run once; a repeat returns the first answer."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
import threading
from dataclasses import dataclass
from typing import Any, cast

SCHEMA = """
CREATE TABLE IF NOT EXISTS customers (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL, language TEXT NOT NULL DEFAULT 'en'
);
CREATE TABLE IF NOT EXISTS orders (
  id TEXT PRIMARY KEY, customer_id TEXT NOT NULL REFERENCES customers(id),
  status TEXT NOT NULL CHECK (status IN ('processing', 'shipped', 'delivered', 'cancelled')),
  placed_on TEXT NOT NULL, delivered_on TEXT, shipping_address TEXT NOT NULL,
  carrier TEXT, tracking_number TEXT, total_cents INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS order_items (
  order_id TEXT NOT NULL REFERENCES orders(id), sku TEXT NOT NULL, name TEXT NOT NULL,
  quantity INTEGER NOT NULL, price_cents INTEGER NOT NULL, PRIMARY KEY (order_id, sku)
);
CREATE TABLE IF NOT EXISTS subscriptions (
  id TEXT PRIMARY KEY, customer_id TEXT NOT NULL REFERENCES customers(id), plan TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('active', 'cancelled')), renews_on TEXT, ends_on TEXT
);
CREATE TABLE IF NOT EXISTS returns (
  id TEXT PRIMARY KEY, customer_id TEXT NOT NULL REFERENCES customers(id),
  order_id TEXT NOT NULL REFERENCES orders(id), reason TEXT NOT NULL, status TEXT NOT NULL,
  created_on TEXT NOT NULL, label_url TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS idempotency (
  customer_id TEXT NOT NULL, key TEXT NOT NULL, request_hash TEXT NOT NULL,
  status INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (customer_id, key)
);
"""


class ShopError(Exception):
    status = 400

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class NotFound(ShopError):
    status = 404


class Conflict(ShopError):
    status = 409


class IdempotencyMismatch(ShopError):
    status = 422


@dataclass(frozen=True)
class Outcome:
    status: int
    body: dict[str, Any]


class ShopStore:
    def __init__(self, path: str, *, return_window_days: int = 30, today: dt.date | None = None) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA foreign_keys = ON")
        if path != ":memory:":
            self._db.execute("PRAGMA journal_mode = WAL")
        self._db.executescript(SCHEMA)
        # One connection, one writer at a time: a change and its idempotency record commit together.
        self._lock = threading.Lock()
        self.return_window_days = return_window_days
        self._today = today

    def today(self) -> dt.date:
        return self._today or dt.date.today()

    def close(self) -> None:
        self._db.close()

    def healthy(self) -> bool:
        try:
            with self._lock:
                self._db.execute("SELECT 1 FROM customers LIMIT 1").fetchone()
        except sqlite3.Error:
            return False
        return True

    # --- reads ---------------------------------------------------------------------------------

    def _order_row(self, customer_id: str, order_id: str) -> sqlite3.Row:
        row = self._db.execute(
            "SELECT * FROM orders WHERE id = ? AND customer_id = ?", (order_id, customer_id)
        ).fetchone()
        if row is None:
            raise NotFound(f"no order {order_id}", "order_not_found")
        return cast(sqlite3.Row, row)

    def _order(self, row: sqlite3.Row) -> dict[str, Any]:
        items = self._db.execute(
            "SELECT sku, name, quantity, price_cents FROM order_items WHERE order_id = ? ORDER BY sku", (row["id"],)
        ).fetchall()
        return {
            "order_id": row["id"], "status": row["status"], "placed_on": row["placed_on"],
            "delivered_on": row["delivered_on"], "shipping_address": row["shipping_address"],
            "carrier": row["carrier"], "tracking_number": row["tracking_number"],
            "total": f"{row['total_cents'] / 100:.2f}",
            "items": [
                {"sku": i["sku"], "name": i["name"], "quantity": i["quantity"], "price": f"{i['price_cents'] / 100:.2f}"}
                for i in items
            ],
        }

    def order(self, customer_id: str, order_id: str) -> dict[str, Any]:
        with self._lock:
            return self._order(self._order_row(customer_id, order_id))

    def orders(self, customer_id: str) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM orders WHERE customer_id = ? ORDER BY placed_on DESC, id DESC", (customer_id,)
            ).fetchall()
            return [self._order(row) for row in rows]

    def _subscription(self, row: sqlite3.Row) -> dict[str, Any]:
        return {
            "subscription_id": row["id"], "plan": row["plan"], "status": row["status"],
            "renews_on": row["renews_on"], "ends_on": row["ends_on"],
        }

    def subscriptions(self, customer_id: str) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM subscriptions WHERE customer_id = ? ORDER BY id", (customer_id,)).fetchall()
            return [self._subscription(row) for row in rows]

    def _return(self, row: sqlite3.Row) -> dict[str, Any]:
        return {
            "return_id": row["id"], "order_id": row["order_id"], "reason": row["reason"], "status": row["status"],
            "created_on": row["created_on"], "label_url": row["label_url"],
        }

    def returns(self, customer_id: str) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM returns WHERE customer_id = ? ORDER BY id", (customer_id,)).fetchall()
            return [self._return(row) for row in rows]

    def customer_exists(self, customer_id: str) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM customers WHERE id = ?", (customer_id,)).fetchone() is not None

    # --- changes -------------------------------------------------------------------------------

    def change(self, customer_id: str, idempotency_key: str, request: dict[str, Any], operation: str) -> Outcome:
        """Run `operation` (a method name below) once per idempotency key: a repeat with the same
        request returns the stored outcome, with another request it is refused."""
        request_hash = hashlib.sha256(json.dumps([operation, request], sort_keys=True).encode()).hexdigest()
        with self._lock:
            if idempotency_key:
                stored = self._db.execute(
                    "SELECT request_hash, status, body FROM idempotency WHERE customer_id = ? AND key = ?",
                    (customer_id, idempotency_key),
                ).fetchone()
                if stored is not None:
                    if stored["request_hash"] != request_hash:
                        raise IdempotencyMismatch("this Idempotency-Key was used for another request", "idempotency_key_reused")
                    return Outcome(stored["status"], {**json.loads(stored["body"]), "replayed": True})
            self._db.execute("BEGIN IMMEDIATE")
            try:
                outcome: Outcome = getattr(self, f"_{operation}")(customer_id, **request)
                if idempotency_key:
                    self._db.execute(
                        "INSERT INTO idempotency VALUES (?, ?, ?, ?, ?)",
                        (customer_id, idempotency_key, request_hash, outcome.status, json.dumps(outcome.body)),
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return outcome

    def _change_address(self, customer_id: str, order_id: str, address: str) -> Outcome:
        row = self._order_row(customer_id, order_id)
        if row["status"] != "processing":
            raise Conflict(f"order {order_id} is {row['status']}: the address can only change while it is processing", "order_not_processing")
        self._db.execute("UPDATE orders SET shipping_address = ? WHERE id = ?", (address, order_id))
        return Outcome(200, self._order(self._order_row(customer_id, order_id)))

    def _cancel_subscription(self, customer_id: str, subscription_id: str) -> Outcome:
        row = self._db.execute(
            "SELECT * FROM subscriptions WHERE id = ? AND customer_id = ?", (subscription_id, customer_id)
        ).fetchone()
        if row is None:
            raise NotFound(f"no subscription {subscription_id}", "subscription_not_found")
        if row["status"] != "active":
            raise Conflict(f"subscription {subscription_id} is already cancelled", "subscription_not_active")
        # Cancelling keeps the plan until the end of the period already paid (help center:
        # billing/cancel-subscription).
        self._db.execute(
            "UPDATE subscriptions SET status = 'cancelled', ends_on = renews_on, renews_on = NULL WHERE id = ?",
            (subscription_id,),
        )
        updated = self._db.execute("SELECT * FROM subscriptions WHERE id = ?", (subscription_id,)).fetchone()
        return Outcome(200, self._subscription(updated))

    def _start_return(self, customer_id: str, order_id: str, reason: str) -> Outcome:
        row = self._order_row(customer_id, order_id)
        if row["status"] != "delivered" or not row["delivered_on"]:
            raise Conflict(f"order {order_id} is {row['status']}: only delivered orders can be returned", "order_not_delivered")
        delivered = dt.date.fromisoformat(row["delivered_on"])
        if (self.today() - delivered).days > self.return_window_days:
            raise Conflict(f"order {order_id} was delivered more than {self.return_window_days} days ago", "return_window_closed")
        if self._db.execute("SELECT 1 FROM returns WHERE order_id = ? AND status != 'cancelled'", (order_id,)).fetchone():
            raise Conflict(f"a return for order {order_id} is already open", "return_exists")
        count = self._db.execute("SELECT COUNT(*) FROM returns").fetchone()[0]
        return_id = f"R-{5001 + count}"
        self._db.execute(
            "INSERT INTO returns VALUES (?, ?, ?, ?, 'label_sent', ?, ?)",
            (return_id, customer_id, order_id, reason[:500], self.today().isoformat(),
             f"https://lumio.example/returns/{return_id}/label.pdf"),
        )
        created = self._db.execute("SELECT * FROM returns WHERE id = ?", (return_id,)).fetchone()
        return Outcome(201, self._return(created))

    # --- seed ----------------------------------------------------------------------------------

    def seed_if_empty(self) -> bool:
        with self._lock:
            if self._db.execute("SELECT 1 FROM customers").fetchone():
                return False
            today = self.today()

            def day(offset: int) -> str:
                return (today + dt.timedelta(days=offset)).isoformat()

            self._db.execute("BEGIN IMMEDIATE")
            for customer in SEED_CUSTOMERS:
                self._db.execute("INSERT INTO customers VALUES (?, ?, ?, ?)", customer)
            for order_id, customer_id, status, placed, delivered, address, carrier, tracking, items in seed_orders():
                total = sum(quantity * price for _, _, quantity, price in items)
                self._db.execute(
                    "INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (order_id, customer_id, status, day(placed), None if delivered is None else day(delivered),
                     address, carrier, tracking, total),
                )
                for sku, name, quantity, price in items:
                    self._db.execute("INSERT INTO order_items VALUES (?, ?, ?, ?, ?)", (order_id, sku, name, quantity, price))
            for subscription_id, customer_id, plan, renews in SEED_SUBSCRIPTIONS:
                self._db.execute(
                    "INSERT INTO subscriptions VALUES (?, ?, ?, 'active', ?, NULL)",
                    (subscription_id, customer_id, plan, day(renews)),
                )
            self._db.execute("COMMIT")
            return True


# The local customer key's id (supportbot/core/auth.py) shops too, so `supportbot up` has data.
SEED_CUSTOMERS = [
    ("c-ana", "Ana Lima", "ana@example.com", "en"),
    ("c-ben", "Ben Okafor", "ben@example.com", "en"),
    ("c-jiwoo", "김지우", "jiwoo@example.com", "ko"),
    ("local-customer", "Local Customer", "local@example.com", "en"),
]
HUB = ("LH-200", "Lumio Hub", 1, 7999)
BULB = ("LB-A19", "Lumio Color Bulb A19", 2, 1999)
STRIP = ("LS-2M", "Lumio Light Strip 2 m", 1, 4999)
BULB_ONE = ("LB-A19", "Lumio Color Bulb A19", 1, 1999)


def seed_orders() -> list[tuple[Any, ...]]:
    """(id, customer, status, placed day, delivered day, address, carrier, tracking, items); days
    relative to the seeding day, so return windows and "last week" stay true."""
    return [
        ("L-104233", "c-ana", "shipped", -3, None, "12 Harbour Rd, Leeds LS1 4AB", "UPS", "1Z999AA10123456784", [HUB]),
        ("L-104240", "c-ana", "processing", -1, None, "12 Harbour Rd, Leeds LS1 4AB", None, None, [BULB]),
        ("L-104198", "c-ana", "delivered", -12, -7, "12 Harbour Rd, Leeds LS1 4AB", "DHL", "JD014600006281234567", [BULB_ONE]),
        ("L-100001", "c-ben", "delivered", -20, -15, "4 Elm St, Austin TX 78701", "USPS", "9400111899223197428490", [STRIP]),
        ("L-100002", "c-ben", "processing", -2, None, "4 Elm St, Austin TX 78701", None, None, [HUB, BULB]),
        ("L-100003", "c-ben", "delivered", -70, -64, "4 Elm St, Austin TX 78701", "USPS", "9400111899223197428491", [BULB_ONE]),
        ("L-200101", "c-jiwoo", "shipped", -2, None, "서울특별시 마포구 월드컵북로 12", "CJ대한통운", "6892-1234-5678", [HUB]),
        ("L-200102", "c-jiwoo", "delivered", -9, -6, "서울특별시 마포구 월드컵북로 12", "CJ대한통운", "6892-1234-5679", [BULB]),
        ("L-200103", "c-jiwoo", "processing", 0, None, "서울특별시 마포구 월드컵북로 12", None, None, [STRIP]),
        ("L-300001", "local-customer", "processing", -1, None, "1 Demo Way, Springfield", None, None, [BULB]),
        ("L-300002", "local-customer", "shipped", -4, None, "1 Demo Way, Springfield", "UPS", "1Z999AA10123456785", [HUB]),
    ]


SEED_SUBSCRIPTIONS = [
    ("S-2001", "c-ana", "Lumio Plus Monthly", 18),
    ("S-2002", "c-ben", "Lumio Plus Annual", 200),
    ("S-2003", "c-jiwoo", "Lumio Plus Monthly", 9),
    ("S-2004", "local-customer", "Lumio Plus Monthly", 25),
]
