"""`supportbot ask` and `supportbot chat`: chat turns through the gateway."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import grpc
import typer
from google.protobuf.json_format import MessageToDict

from supportbot.client import SupportbotClient, gateway_address
from supportbot.v1 import chat_pb2
from supportbot_cli.common import ApiKey, Collection, Gateway, console, errors, key_for, run

app = typer.Typer()


AnswerModeOption = Annotated[
    str | None,
    typer.Option("--mode", help="generative, verified or extractive [default: the gateway's answer mode; "
                 "a customer key gets only the modes the operator allows]."),
]


def _answer_mode(mode: str | None) -> int:
    if not mode:
        return chat_pb2.ANSWER_MODE_UNSPECIFIED
    name = f"ANSWER_MODE_{mode.upper()}"
    if name not in chat_pb2.AnswerMode.keys():
        raise typer.BadParameter("use generative, verified or extractive", param_hint="--mode")
    return chat_pb2.AnswerMode.Value(name)


_PATH_NOTES = {
    chat_pb2.ANSWER_PATH_VERIFIED: "verified against the sources",
    chat_pb2.ANSWER_PATH_EXTRACTIVE: "quoted from the sources",
    chat_pb2.ANSWER_PATH_EXTRACTIVE_FALLBACK: "quoted from the sources",
}


async def _turn(
    client: SupportbotClient, message: str, session_id: str, as_json: bool, *, collection: str = "", mode: int = 0
) -> str:
    """One turn, printed; the session it belongs to. JSON waits for the whole turn (the client's
    `ask`); text prints the answer as it streams, then its sources."""
    collection = "" if session_id else collection
    if as_json:
        started, result, sources = await client.ask(
            message, session_id=session_id, channel="cli", collection=collection, answer_mode=mode
        )
        session_id = started or session_id
        payload = {
            "session_id": session_id,
            **MessageToDict(result, preserving_proto_field_name=True),
            "sources": [MessageToDict(s, preserving_proto_field_name=True) for s in sources],
        }
        print(json.dumps(payload, indent=2))
        return session_id
    final: chat_pb2.ChatResult | None = None
    # The client's `ask` has no way to hand over the text as it streams, so the events are read here.
    async for event in client.chat(message, session_id=session_id, channel="cli", collection=collection, answer_mode=mode):
        if event.kind == "session":
            session_id = event.session_id
        elif event.kind == "delta":
            console.print(event.text, end="", markup=False, highlight=False)
        elif event.kind == "result":
            final = event.result
    assert final is not None, "the gateway ended the turn without a result"
    _print_citations(final)
    return session_id


def _print_citations(result: chat_pb2.ChatResult) -> None:
    console.print()
    for citation in result.citations:
        console.print(f"  [dim][{citation.index}] {citation.title} — {citation.url}[/dim]")
        for section in citation.sections:
            console.print(f"  [dim]      · {section}[/dim]")
    note = _PATH_NOTES.get(result.answer_path)
    if note:
        dropped = f"; {result.sentences_dropped} unsupported sentence(s) left out" if result.sentences_dropped else ""
        console.print(f"  [dim]({note}{dropped})[/dim]")
    if result.handoff:
        console.print("[yellow]A person from our support team will take over this conversation.[/yellow]")


@app.command()
def ask(
    question: str,
    session: Annotated[str | None, typer.Option("--session", help="Continue this session.")] = None,
    collection: Collection = "",
    mode: AnswerModeOption = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    gateway: Gateway = gateway_address(),
    api_key: ApiKey = "",
) -> None:
    """One chat turn through the gateway (a new session asks COLLECTION, or the default)."""
    answer_mode = _answer_mode(mode)

    async def main() -> None:
        async with SupportbotClient(gateway, api_key=key_for(api_key, "customer")) as client:
            session_id = await _turn(client, question, session or "", as_json, collection=collection, mode=answer_mode)
        if not as_json:
            errors.print(f"[dim]session: {session_id}[/dim]")

    run(main())


@app.command()
def chat(
    collection: Collection = "",
    mode: AnswerModeOption = None,
    gateway: Gateway = gateway_address(),
    api_key: ApiKey = "",
) -> None:
    """Interactive terminal chat (Ctrl-D to quit) with the knowledge base COLLECTION."""
    answer_mode = _answer_mode(mode)

    async def main() -> None:
        session_id = ""
        async with SupportbotClient(gateway, api_key=key_for(api_key, "customer")) as client:
            while True:
                try:
                    message = await asyncio.to_thread(console.input, "[bold green]you>[/bold green] ")
                except (EOFError, KeyboardInterrupt):
                    console.print()
                    return
                if not message.strip():
                    continue
                console.print("[bold blue]bot>[/bold blue] ", end="")
                try:
                    session_id = await _turn(client, message, session_id, False, collection=collection, mode=answer_mode)
                except grpc.aio.AioRpcError as error:
                    errors.print(f"[red]{error.code().name}[/red]: {error.details()}")

    run(main())
