"""Action declarations: one YAML file beside the help center, validated with pydantic; every
error names the file and line of the offending value.

What the format takes from where:
- Rasa CALM flows: an action is a declared procedure the model never improvises; parameters are
  slots with a description the clarifying question is built from; the LLM only fills slots.
- OpenAI / MCP tool schemas: parameters are a JSON-schema subset (type, pattern, description),
  exported as a closed object (`additionalProperties: false`, OpenAI's strict mode) for the
  generator's constrained decoding; MCP's readOnly/destructive hints become `changes`, which
  here is enforced (confirmation, no retries), not a hint.
- OpenAPI operations: method plus a path template on a declared server (base URL), path and
  query parameters, and the response's fields; `supportbot.actions.openapi` imports them.

Security rules checked at load: a path template cannot leave the declared host; a secret header
only by ${ENV_VAR}; the customer header is set by the executor, never declared or filled by a
parameter; the fields the customer may be told cannot name a secret or a header; templates
name only allowed fields and parameters."""

from __future__ import annotations

import os
import re
import string
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

LANGUAGES = ("en", "ko")
NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
# A response field: dotted keys; a list on the way means each of its elements ("items.name": the
# name of every item).
FIELD_PATH = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
ENV_REFERENCE = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)\}")
# Names of values nobody may be told, and headers that carry credentials.
SECRET_WORDS = re.compile(r"(token|secret|password|passwd|api_?key|authorization|cookie|credential|cvv|card_number|signature)", re.I)
CREDENTIAL_HEADER = re.compile(r"(authorization|cookie|token|key|secret|auth|password|signature)", re.I)
# What may stand beside ${VAR} in a credential header: an auth scheme, nothing secret.
SCHEME_ONLY = re.compile(r"^\s*(Bearer|Basic|Token|Bot)?\s*$", re.I)


class DeclarationError(ValueError):
    """A declaration file that cannot be used; the message names the file and line."""


class FieldProblem(ValueError):
    """A validator's error about a value below the one it validates: `where` is the path from
    there, so the error names that value's line."""

    def __init__(self, where: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.where = where


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Parameter(_Strict):
    type: Literal["string", "integer", "number", "boolean"] = "string"
    description: str = Field(min_length=1)
    pattern: str | None = None
    required: bool = True
    # Where the value goes in the call; path parameters must appear in the path template.
    location: Literal["path", "query", "body"] = "path"
    # How a value is found in a message: by `pattern` (an order number), or by the generator with
    # the JSON schema constraining its output (free text such as an address; without a generator
    # the customer is asked, and the answer to that question is the value).
    extract: Literal["pattern", "generator"] = "pattern"
    # The customer's own records to offer when the value is missing or ambiguous: a list action
    # of the same file, a label template over its allowed fields, and which records qualify.
    candidates_from: str | None = None
    candidate_label: str | None = None
    candidate_filter: dict[str, list[str]] = Field(default_factory=dict)
    # The question that asks for the value, per language ("What is the new delivery address?");
    # without one the description is used, which reads well only in the language it is written in.
    ask: dict[str, str] = Field(default_factory=dict)

    @field_validator("ask")
    @classmethod
    def _ask_languages(cls, ask: dict[str, str]) -> dict[str, str]:
        for language, text in ask.items():
            if language not in LANGUAGES:
                raise FieldProblem((language,), f"ask language {language!r} is not one of {LANGUAGES}")
            if not text.strip() or PLACEHOLDER.search(text):
                raise FieldProblem((language,), f"ask.{language} must be a plain question (no {{placeholders}})")
        return ask

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"pattern is not a valid regular expression: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _extractable(self) -> Parameter:
        if self.extract == "pattern" and self.pattern is None and self.type == "string":
            raise ValueError("extract: pattern needs a pattern (or use extract: generator for free text)")
        return self

    def matches(self, value: str) -> bool:
        return self.pattern is None or re.fullmatch(self.pattern, value) is not None


class Request(_Strict):
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
    path: str = Field(min_length=1)
    timeout_s: float | None = Field(default=None, gt=0, le=60)

    @field_validator("path")
    @classmethod
    def _stays_on_host(cls, path: str) -> str:
        # The rendered URL is base_url + path: anything that could change scheme, host, port or
        # user (an absolute URL, "//host", "@", a backslash, "..") is refused here, and the
        # executor checks the host of every rendered URL again.
        if not path.startswith("/") or path.startswith("//"):
            raise ValueError("path must start with a single '/' (it is appended to api.base_url)")
        fixed = PLACEHOLDER.sub("x", path)
        if "://" in path or "@" in fixed or "\\" in path or ".." in path or "#" in fixed or "?" in fixed:
            raise ValueError(
                f"path {path!r} could reach another host or resource than api.base_url "
                "(no scheme, '@', '\\', '..', '?' or '#'; query values are parameters with location: query)"
            )
        if "{" in fixed or "}" in fixed:
            raise ValueError(f"path {path!r} has an unbalanced placeholder")
        return path

    @property
    def safe(self) -> bool:
        return self.method == "GET"


class Response(_Strict):
    # The kind of record, for citations: "[order L-104233]".
    record: str = Field(pattern=NAME.pattern)
    id_field: str
    # When the response holds a list of records under this key.
    list: str | None = None
    fields: tuple[str, ...] = Field(min_length=1)

    @field_validator("fields")
    @classmethod
    def _no_secrets(cls, fields: tuple[str, ...]) -> tuple[str, ...]:
        for field in fields:
            if not FIELD_PATH.match(field):
                raise ValueError(f"field {field!r} is not a field path (lower-case keys joined by '.')")
            if SECRET_WORDS.search(field) or field.split(".")[0] in ("headers", "header"):
                raise ValueError(f"field {field!r} names a secret or a header: the customer may never be told it")
        return fields


class Action(_Strict):
    name: str = Field(pattern=NAME.pattern)
    description: str = Field(min_length=1)
    examples: dict[str, tuple[str, ...]]
    parameters: dict[str, Parameter] = Field(default_factory=dict)
    request: Request
    changes: bool = False
    response: Response
    replies: dict[str, str]
    # Read back before a change runs ("Cancel Lumio Plus S-2001? Reply yes to confirm.").
    confirm: dict[str, str] = Field(default_factory=dict)
    list_intro: dict[str, str] = Field(default_factory=dict)

    @field_validator("examples")
    @classmethod
    def _examples(cls, examples: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        for language, texts in examples.items():
            if language not in LANGUAGES:
                raise FieldProblem((language,), f"examples language {language!r} is not one of {LANGUAGES}")
            if len(texts) < 2 or any(not text.strip() for text in texts):
                raise FieldProblem((language,), f"examples.{language} needs at least two non-empty example requests")
        if "en" not in examples:
            raise ValueError("examples need English ('en') requests")
        return examples

    @field_validator("parameters")
    @classmethod
    def _parameter_names(cls, parameters: dict[str, Parameter]) -> dict[str, Parameter]:
        for name in parameters:
            if not NAME.match(name):
                raise FieldProblem((name,), f"parameter name {name!r} must be lower_snake_case")
            if re.search(r"customer|user_?id|account_?id|principal", name):
                raise FieldProblem((name,), 
                    f"parameter {name!r} would choose whose data is read: the customer comes only "
                    "from the authenticated session"
                )
        return parameters

    @model_validator(mode="after")
    def _consistent(self) -> Action:
        placeholders = set(PLACEHOLDER.findall(self.request.path))
        for name in placeholders - set(self.parameters):
            raise FieldProblem(("request", "path"), f"request.path names {{{name}}}, which is not a declared parameter")
        for name, parameter in self.parameters.items():
            if parameter.location == "path" and name not in placeholders:
                raise FieldProblem(("parameters", name), f"parameter {name!r} has location: path but request.path has no {{{name}}}")
            if parameter.location == "body" and self.request.method == "GET":
                raise FieldProblem(("parameters", name, "location"), f"parameter {name!r} has location: body on a GET request")
        if self.changes and self.request.safe:
            raise ValueError("changes: true on a GET request: a change must use POST, PUT, PATCH or DELETE")
        if not self.changes and not self.request.safe:
            raise ValueError(f"{self.request.method} changes something: declare changes: true (it then needs confirmation)")
        if self.changes and set(self.confirm) != set(self.replies):
            raise ValueError("changes: true needs a confirm text in every language it has replies for")
        if self.response.id_field not in self.response.fields:
            raise FieldProblem(("response", "id_field"), f"response.id_field {self.response.id_field!r} must be one of response.fields")
        return self

    @model_validator(mode="after")
    def _templates(self) -> Action:
        if "en" not in self.replies:
            raise ValueError("replies need an English ('en') template")
        sayable = set(self.response.fields) | set(self.parameters)
        for kind, texts in (("replies", self.replies), ("confirm", self.confirm), ("list_intro", self.list_intro)):
            allowed = set(self.parameters) if kind == "confirm" else sayable
            for language, text in texts.items():
                if language not in LANGUAGES:
                    raise FieldProblem((kind, language), f"{kind} language {language!r} is not one of {LANGUAGES}")
                try:
                    names = template_fields(text)
                except ValueError as exc:
                    raise FieldProblem((kind, language), str(exc)) from exc
                for name in names:
                    if name not in allowed:
                        raise FieldProblem((kind, language), 
                            f"{kind}.{language} names {{{name}}}, which is not "
                            + ("a parameter" if kind == "confirm" else "an allowed response field or a parameter")
                        )
        return self

    def json_schema(self, names: list[str] | None = None) -> dict[str, Any]:
        """The parameters as a closed JSON schema (OpenAI strict mode: every property required,
        nullable when the message may not hold it), for the generator's guided decoding."""
        chosen = names if names is not None else list(self.parameters)
        properties: dict[str, Any] = {}
        for name in chosen:
            parameter = self.parameters[name]
            value: dict[str, Any] = {"type": parameter.type, "description": parameter.description}
            if parameter.pattern and parameter.type == "string":
                value["pattern"] = parameter.pattern
            properties[name] = {"anyOf": [value, {"type": "null"}]}
        return {"type": "object", "properties": properties, "required": chosen, "additionalProperties": False}


class Api(_Strict):
    base_url: str
    headers: dict[str, str] = Field(default_factory=dict)
    # The header the executor fills with the authenticated customer's id.
    customer_header: str = "X-Customer-Id"
    timeout_s: float = Field(default=3.0, gt=0, le=60)

    @field_validator("base_url")
    @classmethod
    def _base(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url {url!r} must be an absolute http(s) URL")
        if parts.username or parts.password or parts.query or parts.fragment:
            raise ValueError("base_url may not carry credentials, a query or a fragment (secrets go in headers by ${ENV_VAR})")
        return url.rstrip("/")

    @model_validator(mode="after")
    def _headers(self) -> Api:
        for name, value in self.headers.items():
            if name.lower() == self.customer_header.lower():
                raise FieldProblem(("headers", name), f"header {name!r} is the customer header: the executor sets it from the authenticated customer")
            if name.lower() == "idempotency-key":
                raise FieldProblem(("headers", name), "Idempotency-Key is set by the executor for each confirmed change")
            literal = ENV_REFERENCE.sub("", value)
            if CREDENTIAL_HEADER.search(name) and not (ENV_REFERENCE.search(value) and SCHEME_ONLY.match(literal)):
                raise FieldProblem(("headers", name), 
                    f"header {name!r} carries a credential: write it as ${{ENV_VAR}} (e.g. 'Bearer ${{SHOP_TOKEN}}'), never in the file"
                )
        return self


class ActionFile(_Strict):
    version: Literal[1] = 1
    api: Api
    actions: tuple[Action, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _cross_references(self) -> ActionFile:
        by_name = {action.name: action for action in self.actions}
        if len(by_name) != len(self.actions):
            raise ValueError("two actions share a name")
        for index, action in enumerate(self.actions):
            for name, parameter in action.parameters.items():
                if parameter.candidates_from is None:
                    continue
                where = ("actions", index, "parameters", name)
                source = by_name.get(parameter.candidates_from)
                if source is None or source.response.list is None or source.changes:
                    raise FieldProblem((*where, "candidates_from"),
                                       f"{action.name}.parameters.{name}.candidates_from must name a read-only list action of this file")
                try:
                    label_fields = template_fields(parameter.candidate_label or "")
                except ValueError as exc:
                    raise FieldProblem((*where, "candidate_label"), str(exc)) from exc
                for key, fields in (("candidate_label", label_fields), ("candidate_filter", set(parameter.candidate_filter))):
                    for field in fields:
                        if field not in source.response.fields:
                            raise FieldProblem((*where, key, field) if key == "candidate_filter" else (*where, key),
                                               f"{action.name}.parameters.{name}: {field!r} is not an allowed field of {source.name}")
        return self

    def action(self, name: str) -> Action:
        for action in self.actions:
            if action.name == name:
                return action
        raise KeyError(name)

    def resolved_headers(self, environ: dict[str, str] | None = None) -> dict[str, str]:
        """Headers with ${VAR} filled from the environment; a missing variable is an error."""
        environ = dict(os.environ if environ is None else environ)

        def fill(match: re.Match[str]) -> str:
            if match.group(1) not in environ:
                raise DeclarationError(f"environment variable {match.group(1)} (named in api.headers) is not set")
            return environ[match.group(1)]

        return {name: ENV_REFERENCE.sub(fill, value) for name, value in self.api.headers.items()}


def template_fields(text: str) -> set[str]:
    """The placeholders of a template; anything but a plain field path is refused (no attribute
    access, indexing or format specs: "{order.__class__}", "{x!r}", "{x:>99}")."""
    names = set()
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise ValueError(f"template {text!r}: {exc}") from exc
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if spec or conversion or not FIELD_PATH.match(name):
            raise ValueError(f"template placeholder {{{name}}} must be a plain field name")
        names.add(name)
    return names


# --- Loading with line numbers ----------------------------------------------------------------


class _LineLoader(yaml.SafeLoader):
    """Safe YAML that remembers where each value started."""


def _located(node: yaml.Node, lines: dict[tuple[Any, ...], int], path: tuple[Any, ...]) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            lines[(*path, key, "__key__")] = key_node.start_mark.line + 1
            _located(value_node, lines, (*path, key))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _located(item, lines, (*path, index))


def _line_of(loc: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> int:
    path = tuple(loc)
    while path:
        # A key's line ("ko:") rather than its value's (a block list starts on the next line).
        if (*path, "__key__") in lines:
            return lines[(*path, "__key__")]
        if path in lines:
            return lines[path]
        path = path[:-1]
    return lines.get((), 1)


def parse_actions(text: str, source: str = "<actions>", *, base_url: str | None = None) -> ActionFile:
    """Validate a declaration file's text. `base_url` replaces api.base_url (a demo shop on a
    port chosen at start)."""
    try:
        node = yaml.compose(text, Loader=_LineLoader)
        data = yaml.load(text, Loader=_LineLoader)  # noqa: S506 (SafeLoader subclass)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        context = getattr(exc, "context_mark", None)
        if mark is not None and context is not None and mark.index >= len(text.rstrip()):
            mark = context  # "unclosed [" found only at the end: name where it opened
        where = f"{source}:{mark.line + 1}" if mark else source
        raise DeclarationError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(data, dict) or node is None:
        raise DeclarationError(f"{source}:1: an actions file is a mapping with 'api' and 'actions'")
    lines: dict[tuple[Any, ...], int] = {}
    _located(node, lines, ())
    # Actions are written as a list; errors name the action by position, lines by node marks.
    if base_url is not None and isinstance(data.get("api"), dict):
        data["api"] = {**data["api"], "base_url": base_url}
    try:
        return ActionFile.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = tuple(part for part in error["loc"] if not (isinstance(part, str) and part.startswith("function-")))
            problem = (error.get("ctx") or {}).get("error")
            if isinstance(problem, FieldProblem):
                loc = (*loc, *problem.where)
            where = ".".join(str(part) for part in loc) or "(file)"
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{source}:{_line_of(loc, lines)}: {where}: {message}")
        raise DeclarationError("\n".join(problems)) from None


def load_actions(path: Path | str, *, base_url: str | None = None) -> ActionFile:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DeclarationError(f"cannot read actions from {path}: {exc.strerror}") from exc
    return parse_actions(text, str(path), base_url=base_url)


def sample_actions_path() -> Path:
    return Path(__file__).resolve().parent.parent / "sample" / "actions.yaml"
