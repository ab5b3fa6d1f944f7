"""The actions file loader: the sample loads, and every malformed or hostile field is refused with
a message that names the line; the OpenAPI import of the demo shop loads."""

from __future__ import annotations

import pytest

from services.shop.app import openapi_document
from supportbot.actions.declarations import (
    DeclarationError,
    load_actions,
    parse_actions,
    sample_actions_path,
)
from supportbot.actions.openapi import import_openapi

SAMPLE = sample_actions_path().read_text(encoding="utf-8")


def mutated(old: str, new: str, count: int = 1) -> str:
    assert old in SAMPLE, old
    return SAMPLE.replace(old, new, count)


def line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


def test_the_sample_loads_with_every_action_the_issue_names() -> None:
    actions = load_actions(sample_actions_path())
    names = {action.name for action in actions.actions}
    assert {"order_status", "list_orders", "cancel_subscription", "start_return", "change_delivery_address"} <= names
    assert all("ko" in action.examples and "ko" in action.replies for action in actions.actions)
    assert [a.name for a in actions.actions if a.changes] == ["cancel_subscription", "start_return", "change_delivery_address"]


def test_base_url_can_be_replaced_for_a_shop_on_another_port() -> None:
    assert parse_actions(SAMPLE, base_url="http://127.0.0.1:9999").api.base_url == "http://127.0.0.1:9999"


# (what is changed, to what, the text on the offending line, words of the message)
MALFORMED = [
    ("path: /v1/orders/{order_id}\n", "path: //evil.example/{order_id}\n", "//evil.example", "single '/'"),
    ("path: /v1/orders/{order_id}\n", "path: /v1/orders/{order_id}@evil.example\n", "@evil.example", "another host"),
    ("path: /v1/orders/{order_id}\n", "path: https://evil.example/{order_id}\n", "https://evil", "single '/'"),
    ("path: /v1/orders/{order_id}\n", "path: /v1/../../admin/{order_id}\n", "/v1/../..", "another host"),
    ("path: /v1/orders/{order_id}\n", "path: /v1/orders/{order_id}?as=admin\n", "?as=admin", "another host"),
    ("path: /v1/orders/{order_id}\n", "path: /v1/orders/{order}\n", "{order}", "not a declared parameter"),
    ("fields: [order_id, status, shipping_address]", "fields: [order_id, status, api_token]", "api_token", "names a secret"),
    ("fields: [order_id, status, shipping_address]", "fields: [order_id, headers.authorization]", "headers.authorization", "secret or a header"),
    ("fields: [order_id, status, shipping_address]", "fields: [order_id, Status!]", "Status!", "not a field path"),
    ("Authorization: Bearer ${SUPPORTBOT_SHOP_SERVICE_TOKEN}", "Authorization: Bearer sk_live_123", "sk_live_123", "ENV_VAR"),
    ("Authorization: Bearer ${SUPPORTBOT_SHOP_SERVICE_TOKEN}", "X-Customer-Id: c-ana", "X-Customer-Id: c-ana", "customer header"),
    ("base_url: http://127.0.0.1:8090", "base_url: ftp://shop", "ftp://shop", "http(s)"),
    ("base_url: http://127.0.0.1:8090", "base_url: http://user:pw@shop", "user:pw", "credentials"),
    ("pattern: \"S-\\\\d{4}\"", "pattern: \"S-(\\\\d{4}\"", "S-(", "regular expression"),
    ("      order_id:\n        type: string\n        pattern: \"L-\\\\d{6}\"\n        description: The order number, like L-104233\n",
     "      customer_id:\n        type: string\n        pattern: \"c-.*\"\n        description: whose\n", "customer_id:", "choose whose data"),
    ("    changes: true\n", "    changes: false\n", "name: cancel_subscription", "declare changes: true"),
    ("method: GET\n      path: /v1/orders/{order_id}", "method: FETCH\n      path: /v1/orders/{order_id}", "FETCH", "GET"),
    ("        type: string\n        pattern: \"L-\\\\d{6}\"", "        type: date\n        pattern: \"L-\\\\d{6}\"", "type: date", "string"),
    ("      en: \"Order {order_id} ({items.name}) is {status}.", "      en: \"Order {order_id} ({shipping_address}) is {status}.", "en: \"Order {order_id} ({shipping", "not an allowed response field"),
    ("      en: \"Order {order_id} ({items.name}) is {status}.", "      en: \"Order {order_id.__class__} is {status}.", "en: \"Order {order_id.__class__}", "plain field name"),
    ("      en: \"Order {order_id} ({items.name}) is {status}.", "      en: \"Order {order_id!r} is {status}.", "en: \"Order {order_id!r}", "plain field name"),
    ("      en: \"Cancel subscription {subscription_id}?", "      en: \"Cancel {plan}?", "en: \"Cancel {plan}", "not a parameter"),
    ("      id_field: order_id\n      fields: [order_id, status, placed_on, delivered_on",
     "      id_field: number\n      fields: [order_id, status, placed_on, delivered_on", "id_field: number", "id_field"),
    ("        - 제 구독 정보 보여주세요\n        - 루미오 플러스 구독 언제 갱신돼요?\n        - 제가 어떤 구독을 쓰고 있나요?\n"
     "        - 내 멤버십 다음 결제일이 언제예요?\n        - 구독 S-2003 상태가 어떻게 돼요?\n"
     "        - 제 구독 요금 언제 결제돼요?\n        - 아직 플러스 구독 중인가요?\n        - 내 구독 아직 유효한지 확인해 줘\n"
     "        - 다음 달 구독료 언제 빠져나가요?\n",
     "        - 제 구독 정보 보여주세요\n", "ko:\n        - 제 구독 정보", "at least two"),
    ("      ko:\n        - 제 주문 어디쯤 왔나요?", "      jp:\n        - 제 주문 어디쯤 왔나요?", "jp:", "not one of"),
    ("candidates_from: list_orders", "candidates_from: cancel_subscription", "candidates_from: cancel", "read-only list action"),
    ("candidate_filter: {status: [active]}", "candidate_filter: {api_secret: [x]}", "candidate_filter: {api", "not an allowed field"),
    ("    description: Status, items and tracking number", "    descriptio: Status, items and tracking number", "descriptio:", "Extra inputs"),
    ("timeout_s: 3", "timeout_s: -1", "timeout_s: -1", "greater than 0"),
    ("          ko: 새 배송지 주소를 알려 주세요.", "          jp: 새 배송지 주소를 알려 주세요.", "jp: 새 배송지", "ask language"),
    ("          en: What is the new delivery address?", "          en: What is {address}?", "en: What is {address}", "plain question"),
]


@pytest.mark.parametrize(("old", "new", "where", "words"), MALFORMED, ids=[m[3] + "/" + m[2][:20] for m in MALFORMED])
def test_a_malformed_field_is_refused_naming_its_line(old: str, new: str, where: str, words: str) -> None:
    text = mutated(old, new)
    with pytest.raises(DeclarationError) as error:
        parse_actions(text, "actions.yaml")
    message = str(error.value)
    assert words in message
    assert f"actions.yaml:{line_of(text, where)}:" in message


def test_two_actions_with_one_name_are_refused() -> None:
    with pytest.raises(DeclarationError, match="share a name"):
        parse_actions(mutated("name: list_orders", "name: order_status"))


def test_not_yaml_and_not_a_mapping_name_the_line() -> None:
    with pytest.raises(DeclarationError, match=r"x.yaml:3: not valid YAML"):
        parse_actions("version: 1\napi:\n  base_url: [unclosed\n", "x.yaml")
    with pytest.raises(DeclarationError, match="x.yaml:1: an actions file is a mapping"):
        parse_actions("- just a list\n", "x.yaml")


def test_yaml_tags_that_would_run_code_are_refused() -> None:
    with pytest.raises(DeclarationError, match="not valid YAML"):
        parse_actions("!!python/object/apply:os.system ['echo hi']\n", "x.yaml")


def test_a_missing_file_says_which() -> None:
    with pytest.raises(DeclarationError, match="cannot read actions from /nonexistent.yaml"):
        load_actions("/nonexistent.yaml")


def test_secret_headers_are_read_from_the_environment_only() -> None:
    actions = parse_actions(SAMPLE)
    assert actions.resolved_headers({"SUPPORTBOT_SHOP_SERVICE_TOKEN": "abc"}) == {"Authorization": "Bearer abc"}
    with pytest.raises(DeclarationError, match="SUPPORTBOT_SHOP_SERVICE_TOKEN"):
        actions.resolved_headers({})


def test_parameters_export_as_a_closed_json_schema() -> None:
    schema = parse_actions(SAMPLE).action("change_delivery_address").json_schema(["address"])
    assert schema["additionalProperties"] is False and schema["required"] == ["address"]
    assert {"type": "null"} in schema["properties"]["address"]["anyOf"]


def test_the_shops_openapi_document_imports_as_a_loadable_starting_point() -> None:
    result = import_openapi(openapi_document(), base_url="http://shop.example")
    imported = parse_actions(result.to_yaml())
    assert imported.api.base_url == "http://shop.example"
    assert imported.api.headers == {"Authorization": "Bearer ${SERVICE_TOKEN}"}
    cancel = imported.action("cancel_subscription")
    assert cancel.changes and cancel.request.method == "POST" and cancel.parameters["subscription_id"].pattern == r"S-\d{4}"
    orders = imported.action("list_orders")
    assert orders.response.list == "orders" and "tracking_number" in orders.response.fields
    assert imported.action("start_return").parameters["order_id"].location == "body"
    assert any("SERVICE_TOKEN" in note for note in result.notes)


def test_openapi_import_drops_fields_naming_secrets_and_customer_parameters() -> None:
    document = {
        "openapi": "3.0.3", "servers": [{"url": "https://api.example.com"}],
        "paths": {"/users/{userId}/orders/{orderId}": {"get": {
            "operationId": "getOrder",
            "parameters": [{"name": "userId", "in": "path", "required": True, "schema": {"type": "string"}},
                           {"name": "orderId", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[0-9]+$"}}],
            "responses": {"200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Order"}}}}},
        }}},
        "components": {"schemas": {"Order": {"type": "object", "properties": {
            "orderId": {"type": "string"}, "status": {"type": "string"}, "paymentToken": {"type": "string"}}}}},
    }
    # An operation whose path names the customer cannot be imported: the customer is never a value.
    with pytest.raises(ValueError, match=r"skipped, its path names the customer \(\{userId\}\)"):
        import_openapi(document)
    operation = document["paths"]["/users/{userId}/orders/{orderId}"]
    operation["get"]["parameters"][0]["in"] = "query"
    document["paths"] = {"/orders/{orderId}": operation}
    result = import_openapi(document)
    action = parse_actions(result.to_yaml()).action("get_order")
    assert "payment_token" not in action.response.fields and action.response.fields == ("order_id", "status")
    assert any("payment_token" in note for note in result.notes) and any("'userId' would choose the customer" in n for n in result.notes)
    assert "user_id" not in action.parameters


def test_openapi_import_refuses_what_is_not_openapi_3() -> None:
    with pytest.raises(ValueError, match="OpenAPI 3"):
        import_openapi({"swagger": "2.0"})
