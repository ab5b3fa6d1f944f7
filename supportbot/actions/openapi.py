"""An OpenAPI 3 document as the starting point of an actions file: each operation becomes an
action (operationId -> name, summary/description -> description and two draft example requests,
path/query parameters and JSON body properties -> parameters with their patterns, the 2xx JSON
response's scalar properties -> the allowed fields, minus anything that names a secret; a method
other than GET -> changes: true with a draft confirmation). A bearer security scheme becomes an
Authorization header by ${ENV_VAR}; an apiKey header naming the customer becomes the customer
header. What could not be carried over is listed in `notes`.

The result loads with `parse_actions`, but its example requests and replies are drafts: write
real customer phrasings (and Korean ones) before routing on them.

    python -m supportbot.actions.openapi openapi.json > actions.yaml"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from supportbot.actions.declarations import NAME, SECRET_WORDS, parse_actions

_METHODS = ("get", "post", "put", "patch", "delete")
_TYPES = {"string": "string", "integer": "integer", "number": "number", "boolean": "boolean"}


@dataclass
class ImportResult:
    document: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    def to_yaml(self) -> str:
        header = "".join(f"# NOTE: {note}\n" for note in self.notes)
        return header + yaml.safe_dump(self.document, sort_keys=False, allow_unicode=True, width=120)


def _snake(text: str) -> str:
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text)
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:64] or "action"


def _resolve(document: dict[str, Any], node: Any, depth: int = 0) -> Any:
    """Local $refs ("#/components/schemas/Order") replaced by what they point at."""
    if depth > 20:
        return {}
    if isinstance(node, dict):
        if "$ref" in node and isinstance(node["$ref"], str) and node["$ref"].startswith("#/"):
            target: Any = document
            for part in node["$ref"][2:].split("/"):
                target = target.get(part, {}) if isinstance(target, dict) else {}
            return _resolve(document, target, depth + 1)
        return {key: _resolve(document, value, depth + 1) for key, value in node.items()}
    if isinstance(node, list):
        return [_resolve(document, item, depth + 1) for item in node]
    return node


def _scalar_paths(schema: dict[str, Any], prefix: str = "", depth: int = 0) -> list[str]:
    if depth > 4 or not isinstance(schema, dict):
        return []
    if schema.get("type") == "array" or "items" in schema:
        return _scalar_paths(schema.get("items", {}), prefix, depth + 1)
    properties = schema.get("properties")
    if isinstance(properties, dict):
        paths = []
        for key, value in properties.items():
            name = _snake(key)
            paths += _scalar_paths(value, f"{prefix}.{name}" if prefix else name, depth + 1)
        return paths
    return [prefix] if prefix else []


def _list_key(schema: dict[str, Any]) -> str | None:
    """The key of the only array property of an object response ({"orders": [...]})."""
    properties = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(properties, dict):
        return None
    arrays = [key for key, value in properties.items() if isinstance(value, dict) and value.get("type") == "array"]
    return arrays[0] if len(arrays) == 1 and len(properties) == 1 else None


def _pattern(schema: dict[str, Any]) -> str | None:
    pattern = schema.get("pattern")
    if not isinstance(pattern, str):
        return None
    return pattern.removeprefix("^").removesuffix("$")


def _parameter(name: str, schema: dict[str, Any], description: str, location: str, required: bool) -> dict[str, Any]:
    parameter: dict[str, Any] = {
        "type": _TYPES.get(schema.get("type", "string"), "string"),
        "description": description or schema.get("description") or name.replace("_", " "),
    }
    pattern = _pattern(schema)
    if pattern:
        parameter["pattern"] = pattern
    elif parameter["type"] == "string":
        parameter["extract"] = "generator"
    if not required:
        parameter["required"] = False
    parameter["location"] = location
    return parameter


def import_openapi(document: dict[str, Any], *, base_url: str | None = None) -> ImportResult:
    if not isinstance(document, dict) or not str(document.get("openapi", "")).startswith("3"):
        raise ValueError("not an OpenAPI 3 document (its 'openapi' field must be 3.x)")
    notes: list[str] = []
    servers = document.get("servers") or [{}]
    base = base_url or servers[0].get("url", "")
    if not base.startswith(("http://", "https://")):
        raise ValueError("the document names no absolute server URL: pass base_url")
    api: dict[str, Any] = {"base_url": base, "headers": {}, "customer_header": "X-Customer-Id"}
    schemes = (document.get("components") or {}).get("securitySchemes") or {}
    for scheme_name, scheme in schemes.items():
        if scheme.get("type") == "http" and scheme.get("scheme", "").lower() == "bearer":
            variable = _snake(scheme_name).upper() or "API_TOKEN"
            api["headers"]["Authorization"] = f"Bearer ${{{variable}}}"
            notes.append(f"set the environment variable {variable} to the API's token")
        elif scheme.get("type") == "apiKey" and scheme.get("in") == "header":
            if re.search(r"customer|user", scheme.get("name", ""), re.I):
                api["customer_header"] = scheme["name"]
            else:
                variable = re.sub(r"[^A-Z0-9]+", "_", scheme.get("name", "API_KEY").upper()).strip("_")
                api["headers"][scheme["name"]] = f"${{{variable}}}"
                notes.append(f"set the environment variable {variable} to the API key")
    if not api["headers"]:
        del api["headers"]
    actions = []
    for path, operations in (document.get("paths") or {}).items():
        for method in _METHODS:
            operation = (operations or {}).get(method)
            if not isinstance(operation, dict):
                continue
            imported = _action(document, path, method, _resolve(document, operation), notes)
            if imported is not None:
                actions.append(imported)
    if not actions:
        raise ValueError("no operation could be imported: " + "; ".join(notes or ["the document has no paths"]))
    result = ImportResult({"version": 1, "api": api, "actions": actions}, notes)
    # What we hand back must load: anything this importer got wrong fails here, not later.
    parse_actions(result.to_yaml(), "<imported OpenAPI>")
    return result


def _action(document: dict[str, Any], path: str, method: str, operation: dict[str, Any], notes: list[str]) -> dict[str, Any] | None:
    name = _snake(operation.get("operationId") or f"{method}_{path}")
    if not NAME.match(name):
        notes.append(f"{method.upper()} {path}: no usable operationId, skipped")
        return None
    summary = (operation.get("summary") or operation.get("description") or name.replace("_", " ")).strip()
    parameters: dict[str, Any] = {}
    for parameter in operation.get("parameters") or []:
        location = parameter.get("in")
        raw_name = parameter.get("name", "")
        pname = _snake(raw_name)
        if location not in ("path", "query"):
            continue  # headers (Idempotency-Key, the customer) are the executor's
        if re.search(r"customer|user_?id|account_?id", pname):
            if location == "path":
                notes.append(f"{method.upper()} {path}: skipped, its path names the customer ({{{raw_name}}}); "
                             "supportbot sends the authenticated customer in the customer header instead")
                return None
            notes.append(f"{name}: parameter {raw_name!r} would choose the customer, dropped (the customer header replaces it)")
            continue
        if pname != raw_name:
            path = path.replace("{" + raw_name + "}", "{" + pname + "}")
        parameters[pname] = _parameter(pname, parameter.get("schema") or {}, parameter.get("description", ""), location,
                                       bool(parameter.get("required", location == "path")))
    body = ((operation.get("requestBody") or {}).get("content") or {}).get("application/json", {}).get("schema") or {}
    for key, schema in (body.get("properties") or {}).items():
        pname = _snake(key)
        if re.search(r"customer|user_?id|account_?id", pname):
            notes.append(f"{name}: body field {key!r} would choose the customer, dropped")
            continue
        parameters[pname] = _parameter(pname, schema, schema.get("description", ""), "body", key in (body.get("required") or []))
    responses = operation.get("responses") or {}
    success: Any = next((responses[code] for code in sorted(responses) if str(code).startswith("2")), {})
    schema = ((success.get("content") or {}).get("application/json") or {}).get("schema") or {}
    list_key = _list_key(schema)
    record_schema = schema["properties"][list_key].get("items", {}) if list_key else schema
    fields = [f for f in _scalar_paths(record_schema) if not SECRET_WORDS.search(f)]
    dropped = [f for f in _scalar_paths(record_schema) if SECRET_WORDS.search(f)]
    if dropped:
        notes.append(f"{name}: response fields {dropped} name secrets and are never told")
    if not fields:
        notes.append(f"{method.upper()} {path}: no JSON response fields to tell the customer, skipped")
        return None
    id_field = next((f for f in fields if f.endswith("_id") or f == "id"), fields[0])
    record = re.sub(r"_id$", "", id_field) if id_field != "id" else name.split("_")[-1]
    record = _snake(record) or "record"
    changes = method != "get"
    action: dict[str, Any] = {
        "name": name,
        "description": summary,
        "examples": {"en": [summary, name.replace("_", " ")]},
    }
    if parameters:
        action["parameters"] = parameters
    action["request"] = {"method": method.upper(), "path": path}
    if changes:
        action["changes"] = True
    action["response"] = {"record": record, "id_field": id_field, **({"list": list_key} if list_key else {}), "fields": fields}
    if changes:
        asked = ", ".join(f"{{{p}}}" for p in parameters) or "this"
        action["confirm"] = {"en": f"{summary}: {asked}? Reply yes to confirm."}
    action["replies"] = {"en": " ".join(f"{f}: {{{f}}}." for f in fields[:6])}
    return action


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (1, 2):
        print("usage: python -m supportbot.actions.openapi OPENAPI.json|yaml [BASE_URL]", file=sys.stderr)
        return 2
    text = Path(args[0]).read_text(encoding="utf-8")
    document = json.loads(text) if args[0].endswith(".json") else yaml.safe_load(text)
    result = import_openapi(document, base_url=args[1] if len(args) == 2 else None)
    sys.stdout.write(result.to_yaml())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
