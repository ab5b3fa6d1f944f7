"""Replies rest on the response: only allowed fields are filled, each record is cited, and a value
the response does not hold is caught."""

from __future__ import annotations

import pytest

from supportbot.actions.declarations import load_actions, sample_actions_path
from supportbot.actions.replies import (
    confirmation_text,
    field_values,
    fill,
    records_of,
    render_reply,
    unsupported_values,
)

ACTIONS = load_actions(sample_actions_path())
STATUS = ACTIONS.action("order_status")
LIST = ACTIONS.action("list_orders")
CANCEL = ACTIONS.action("cancel_subscription")
ORDER = {
    "order_id": "L-104233", "status": "shipped", "placed_on": "2026-11-27", "delivered_on": None,
    "shipping_address": "12 Harbour Rd, Leeds LS1 4AB", "carrier": "UPS", "tracking_number": "1Z999AA10123456784",
    "total": "79.99", "internal_note": "VIP, card ending 4242", "payment_token": "tok_live_abc",
    "items": [{"sku": "LH-200", "name": "Lumio Hub", "quantity": 1, "price": "79.99"}],
}


def test_only_declared_fields_leave_the_response() -> None:
    [record] = records_of(STATUS, ORDER)
    assert set(record) == set(STATUS.response.fields)
    assert "shipping_address" not in record and "payment_token" not in record and "internal_note" not in record


def test_the_reply_fills_allowed_fields_and_cites_the_record() -> None:
    reply = render_reply(STATUS, records_of(STATUS, ORDER), {"order_id": "L-104233"}, "en")
    assert reply.text == ("Order L-104233 (Lumio Hub) is shipped. Carrier: UPS, tracking number 1Z999AA10123456784. "
                          "[order L-104233]")
    assert [c.marker for c in reply.citations] == ["[order L-104233]"]
    assert reply.citations[0].action == "order_status"
    assert "Leeds" not in reply.text and "4242" not in reply.text and "tok_live" not in reply.text


def test_korean_reply_translates_status_codes() -> None:
    reply = render_reply(STATUS, records_of(STATUS, ORDER), {}, "ko")
    assert "배송 중" in reply.text and reply.text.endswith("[order L-104233]")


def test_a_missing_value_is_said_to_be_missing_not_invented() -> None:
    processing = {**ORDER, "status": "processing", "carrier": None, "tracking_number": None}
    text = render_reply(STATUS, records_of(STATUS, processing), {}, "en").text
    assert "Carrier: not available yet, tracking number not available yet" in text


def test_a_list_reply_cites_every_record() -> None:
    body = {"orders": [ORDER, {**ORDER, "order_id": "L-104240", "status": "processing"}]}
    reply = render_reply(LIST, records_of(LIST, body), {}, "en")
    assert reply.text.splitlines()[0] == "Your orders:"
    assert [c.record_id for c in reply.citations] == ["L-104233", "L-104240"]
    assert render_reply(LIST, records_of(LIST, {"orders": []}), {}, "en").text == "Your orders:\nThere are none."


def test_a_template_cannot_reach_beyond_a_plain_field() -> None:
    with pytest.raises(ValueError, match="plain field name"):
        fill("{order_id.__class__.__mro__}", {"order_id": "x"}, "en")
    for template in ("{order_id!r}", "{order_id:>999999}", "{0}", "{}", "{items[0]}"):
        with pytest.raises(ValueError):
            fill(template, {"order_id": "x"}, "en")
    # A dotted path is a key of the flat record, never an attribute.
    assert fill("{items.name}", {"items.name": ["Hub"]}, "en") == "Hub"


def test_field_values_walk_lists_and_skip_structures() -> None:
    assert field_values(ORDER, "items.name") == ["Lumio Hub"]
    assert field_values(ORDER, "items") == []
    assert field_values({"a": [{"b": [1, 2]}, {"b": 3}]}, "a.b") == [1, 2, 3]


def test_confirmation_reads_back_the_parameters_only() -> None:
    assert confirmation_text(CANCEL, {"subscription_id": "S-2001"}, "ko").startswith("구독 S-2001을(를) 해지할까요?")


def test_every_stated_value_is_checked_against_the_response() -> None:
    records = records_of(STATUS, ORDER)
    templates = list(STATUS.replies.values())
    good = render_reply(STATUS, records, {"order_id": "L-104233"}, "en").text
    assert unsupported_values(good, records, {"order_id": "L-104233"}, templates) == []
    bad = good.replace("1Z999AA10123456784", "1Z999AA10123456799") + " It arrives on 2026-12-01."
    assert unsupported_values(bad, records, {"order_id": "L-104233"}, templates) == ["1Z999AA10123456799", "2026-12-01"]
