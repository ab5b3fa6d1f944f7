"""An OpenAI-compatible chat endpoint (`POST /v1/chat/completions`, `GET /v1/models`) answered by the
full RAG turn, so tools that speak the OpenAI API (LangChain, LlamaIndex, Open WebUI, Dify) can use
supportbot as a grounded model.

The last user message is the question. Extensions, all optional: request fields `session_id` (to
go on with a conversation), `collection` and `answer_mode` ("extractive", "verified",
"generative"); in the response, `citations` (the sources the answer cites) and `supportbot`
(session id, turn id, grounded, answer path, handoff, whether the answer came from the cache). OpenAI's Python client sends the request
fields through `extra_body` and keeps the response fields as extra attributes.

Example:
    >>> request, stream = chat_request({"model": "supportbot", "messages": [
    ...     {"role": "user", "content": "How do I reset my password?"}]}, "supportbot")
    >>> request.message, stream
    ('How do I reset my password?', False)
"""

from __future__ import annotations

import time
from typing import Any

import grpc

from services.web.transcoding import HttpError
from supportbot.v1 import chat_pb2

_ERROR_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
    404: "not_found_error", 429: "rate_limit_error",
}


def error_body(error: HttpError) -> dict[str, Any]:
    """OpenAI's error shape, which its clients turn into their typed exceptions."""
    return {"error": {
        "message": error.message, "type": _ERROR_TYPES.get(error.http_status, "api_error"),
        "code": error.code.name.lower(), "param": None,
    }}


def _text(content: Any) -> str:
    """A message's text: a string, or the text parts of a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") == "text")
    return ""


def chat_request(body: Any, model_name: str) -> tuple[chat_pb2.ChatRequest, bool]:
    def refuse(message: str) -> HttpError:
        return HttpError(grpc.StatusCode.INVALID_ARGUMENT, message)

    if not isinstance(body, dict):
        raise refuse("the body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise refuse("messages must be a non-empty list of {role, content} objects")
    model = body.get("model", model_name)
    if model != model_name:
        raise HttpError(grpc.StatusCode.NOT_FOUND, f"unknown model {str(model)[:80]!r}: this server has {model_name!r}")
    if messages[-1].get("role") != "user":
        raise refuse("the last message must be the customer's (role 'user')")
    mode = body.get("answer_mode", "")
    if mode and f"ANSWER_MODE_{str(mode).upper()}" not in chat_pb2.AnswerMode.keys():
        raise refuse("answer_mode must be extractive, verified or generative")
    for name in ("session_id", "collection"):
        if not isinstance(body.get(name, ""), str):
            raise refuse(f"{name} must be a string")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise refuse("stream must be true or false")
    request = chat_pb2.ChatRequest(
        message=_text(messages[-1].get("content")), session_id=body.get("session_id", ""),
        collection=body.get("collection", ""), channel="openai",
        answer_mode=chat_pb2.AnswerMode.Value(f"ANSWER_MODE_{mode.upper()}") if mode else 0,
    )
    return request, stream


def citations(result: chat_pb2.ChatResult) -> list[dict[str, Any]]:
    return [
        {"index": c.index, "document_id": c.document_id, "chunk_id": c.chunk_id, "title": c.title, "url": c.url}
        for c in result.citations
    ]


def extension(session_id: str, result: chat_pb2.ChatResult) -> dict[str, Any]:
    return {
        "session_id": session_id, "turn_id": result.turn_id, "grounded": result.grounded,
        "answer_path": chat_pb2.AnswerPath.Name(result.answer_path).removeprefix("ANSWER_PATH_").lower(),
        "handoff": result.handoff, "cached": result.cached,
    }


def completion(model: str, session_id: str, result: chat_pb2.ChatResult) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{result.turn_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{
            "index": 0, "message": {"role": "assistant", "content": result.answer}, "finish_reason": "stop",
            "logprobs": None,
        }],
        "usage": {"prompt_tokens": 0, "completion_tokens": result.completion_tokens, "total_tokens": result.completion_tokens},
        "citations": citations(result),
        "supportbot": extension(session_id, result),
    }


def chunk(model: str, completion_id: str, delta: dict[str, Any], finish_reason: str | None = None,
          **extra: Any) -> dict[str, Any]:
    return {
        "id": completion_id, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}], **extra,
    }
