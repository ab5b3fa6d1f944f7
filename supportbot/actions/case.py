"""The customer's case as an agent sees it (issue 24, "agent assist sees the case"): the records
the conversation's account actions read, each with its citation, and the change the bot proposed
and waits on, which an agent may approve in the customer's place.

Plain data for the session (to_dict/from_dict) and pure functions; the gateway stores the records
in the session after each action turn (`remember`) and reads both for its agent RPCs.

    records = remember(session_records, stage_result.reads, actions, now)
    proposal = proposal_of(pending_state, actions, now)   # None: nothing proposed
    proposal.proposal_id                                   # what an approval names

A proposal's id changes whenever what would run changes (another value, a new proposal), so an
agent approves exactly the change they saw, never one the customer altered in the meantime."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from supportbot.actions import pending as states
from supportbot.actions.declarations import ActionFile
from supportbot.actions.executor import ActionResult
from supportbot.actions.replies import RecordCitation, confirmation_text

# The records a session keeps for the agent (the latest read of each): a conversation about one
# customer's orders and subscriptions names a handful; a hostile one cannot grow the session.
MAX_CASE_RECORDS = 20


@dataclass(frozen=True)
class CaseRecord:
    """One record an action read, with only the fields the declaration lets the customer (and so
    the agent) be told, as "path": values."""

    action: str
    record: str
    record_id: str
    fields: dict[str, list[Any]] = field(default_factory=dict)
    read_at: float = 0.0

    @property
    def citation(self) -> RecordCitation:
        return RecordCitation(self.action, self.record, self.record_id)

    @property
    def marker(self) -> str:
        return self.citation.marker

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CaseRecord:
        return cls(action=str(data["action"]), record=str(data["record"]), record_id=str(data["record_id"]),
                   fields={str(k): list(v) for k, v in dict(data.get("fields", {})).items()},
                   read_at=float(data.get("read_at", 0.0)))


def records_read(results: Iterable[ActionResult], actions: ActionFile, now: float) -> list[CaseRecord]:
    """The records of successful action runs that have an id (what a reply can cite)."""
    found = []
    for result in results:
        if not result.ok:
            continue
        action = actions.action(result.action)
        for record in result.records:
            ids = record.get(action.response.id_field) or []
            if ids:
                found.append(CaseRecord(action.name, action.response.record, str(ids[0]), dict(record), now))
    return found


def remember(kept: list[dict[str, Any]], results: Iterable[ActionResult], actions: ActionFile, now: float,
             *, limit: int = MAX_CASE_RECORDS) -> list[dict[str, Any]]:
    """The session's case records with a turn's reads added: a record read again replaces its
    older read (its status may have changed), newest last, at most `limit`."""
    records = {(r.record, r.record_id): r for r in case_records(kept)}
    for record in records_read(results, actions, now):
        records.pop((record.record, record.record_id), None)
        records[(record.record, record.record_id)] = record
    return [record.to_dict() for record in list(records.values())[-limit:]]


def case_records(kept: list[dict[str, Any]]) -> list[CaseRecord]:
    """The session's case records, those of another version left out."""
    restored = []
    for data in kept:
        try:
            restored.append(CaseRecord.from_dict(data))
        except (KeyError, TypeError, ValueError):
            continue  # a record of another version: the next read replaces it
    return restored


class ProposalState(StrEnum):
    WAITING = "waiting"  # read back to the customer, waiting for a yes (or an agent's approval)
    EXPIRED = "expired"  # waited past its time: nothing runs; the customer asks again
    CONFIRMED = "confirmed"  # confirmed (by the customer or an agent) and run


@dataclass(frozen=True)
class Proposal:
    """The change the bot proposed in a conversation, as an agent sees it."""

    proposal_id: str
    action: str
    description: str
    parameters: dict[str, str]
    state: ProposalState
    expires_at: float
    confirmed_by: str = ""
    # Proposed in the agent's drafts from the customer's message: the customer was not asked.
    drafted: bool = False


def proposal_id(pending: states.PendingAction) -> str:
    """Names exactly what would run: the proposal (its idempotency key) and its values."""
    what = json.dumps([pending.idempotency_key, pending.action, pending.slots], sort_keys=True, default=str)
    return "p_" + hashlib.sha256(what.encode()).hexdigest()[:24]


def proposal_of(state: dict[str, Any] | None, actions: ActionFile, now: float) -> Proposal | None:
    """The proposed change in the session's pending-action state; None when none was read back
    to the customer (nothing pending, a lookup, or a question still collecting its values)."""
    pending = states.restore(state)
    if pending is None or pending.status not in (states.Status.AWAITING, states.Status.SUSPENDED, states.Status.CONFIRMED):
        return None
    try:
        action = actions.action(pending.action)
    except KeyError:
        return None  # the actions file changed since: nothing of it can run
    if not action.changes:
        return None
    if pending.status == states.Status.CONFIRMED:
        state_now = ProposalState.CONFIRMED
    else:
        state_now = ProposalState.EXPIRED if pending.expired(now) else ProposalState.WAITING
    values = {name: value for name, value in pending.slots.items() if value is not None}
    return Proposal(
        proposal_id=proposal_id(pending), action=action.name,
        description=confirmation_text(action, values, pending.language),
        parameters={name: str(value) for name, value in values.items()}, state=state_now,
        expires_at=pending.expires_at, confirmed_by=pending.confirmed_by, drafted=pending.drafted,
    )
