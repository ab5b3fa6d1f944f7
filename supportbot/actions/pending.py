"""The pending action of a session: its parameters so far, whether it awaits the customer's
confirmation, and when it expires. A plain object with to_dict/from_dict, so the Redis session
holds it between turns, and a state machine (`advance`) that decides what the next message does
to it:

    collecting --all parameters--> awaiting_confirmation --explicit yes--> confirmed (runs once)
    awaiting_confirmation --no--> cancelled
    awaiting_confirmation --a new value ("no, L-104240")--> awaiting_confirmation (re-proposed)
    awaiting_confirmation --another action asked--> cancelled, the new one starts
    awaiting_confirmation --unrelated question--> suspended (a later "yes" re-asks, never runs)
    any --past expires_at--> expired: a yes, a no or an answer to its question is told so,
      anything else is answered as if nothing waited;  confirmed --yes again--> error, nothing changes
    no pending action --yes--> error "never proposed"
    proposed in an agent's drafts --> suspended, drafted: an agent's approval runs it; the
      customer's yes reads it back first (ActionStage.draft)

A change runs only on an explicit yes in the turn right after it was proposed (or re-proposed),
and carries one idempotency key from the proposal on, so a retried turn or a second tab cannot
run it twice."""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any

from supportbot.actions.declarations import Action
from supportbot.actions.slots import Option, answer_to_question, fill_by_pattern, picked_option

# Ten minutes: long enough to look up an order number, short enough that a "yes" tomorrow does
# not cancel a subscription.
DEFAULT_TTL_S = 600.0
STATE_VERSION = 1


class Status(StrEnum):
    COLLECTING = "collecting"
    AWAITING = "awaiting_confirmation"
    SUSPENDED = "suspended"
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class ConfirmationError(Exception):
    """A confirmation that cannot be honoured; `code` is stable, the message is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class PendingAction:
    action: str
    customer_id: str
    language: str
    status: Status
    created_at: float
    expires_at: float
    slots: dict[str, Any] = field(default_factory=dict)
    # The parameter the last question asked for, and the values it offered.
    asking: str = ""
    offered: list[str] = field(default_factory=list)
    # How the question labelled each offered value ("L-104233, Lumio Hub"), so a client showing
    # the conversation again draws the same buttons. A state stored before labels were kept has
    # none: its values stand for themselves.
    labels: dict[str, str] = field(default_factory=dict)
    idempotency_key: str = field(default_factory=lambda: f"sb-{secrets.token_urlsafe(18)}")
    confirmed_by: str = ""
    confirmed_at: float = 0.0
    # How the customer was identified when it was asked ("customer_key", "widget_token"): an
    # agent's approval runs for this same customer and records how they were identified.
    identity_source: str = ""
    # Proposed in an agent's drafts from the customer's message (ActionStage.draft), never read
    # back to the customer: only the agent's approval runs it; the customer's "yes" reads it back.
    drafted: bool = False
    version: int = STATE_VERSION

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PendingAction:
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            raise ValueError("not a pending action of this version")
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        values["status"] = Status(values["status"])
        return cls(**values)

    def expired(self, now: float) -> bool:
        return now >= self.expires_at

    def offer(self, asking: str, options: Sequence[Option]) -> None:
        """The question now asked: for `asking`, offering `options` (none: an open question)."""
        self.asking = asking
        self.offered = [option.value for option in options]
        self.labels = {option.value: option.label for option in options}

    def waiting_for(self, now: float) -> tuple[str, list[Option]] | None:
        """What the customer's next message is awaited for: ("confirm", []) for a change read
        back, ("clarify", the options offered, as the question labelled them) for a question
        with choices; None when nothing waits (run, cancelled, set aside by another question,
        expired, or a question without choices)."""
        if self.expired(now):
            return None
        if self.status is Status.AWAITING:
            return "confirm", []
        if self.status is Status.COLLECTING and self.asking and self.offered:
            return "clarify", [Option(value, self.labels.get(value, value)) for value in self.offered]
        return None


def restore(state: dict[str, Any] | None) -> PendingAction | None:
    """The pending action a session keeps (`PendingAction.to_dict`); None when there is none or
    it was written by another version: nothing is acted on, or approved, from a state not read
    whole."""
    if not state:
        return None
    try:
        return PendingAction.from_dict(state)
    except (ValueError, TypeError, KeyError):
        return None


def start(action: Action, customer_id: str, language: str, now: float, *, ttl_s: float = DEFAULT_TTL_S,
          slots: dict[str, Any] | None = None, identity_source: str = "") -> PendingAction:
    return PendingAction(action=action.name, customer_id=customer_id, language=language, status=Status.COLLECTING,
                         created_at=now, expires_at=now + ttl_s, slots=dict(slots or {}), identity_source=identity_source)


def propose(pending: PendingAction, now: float, *, ttl_s: float = DEFAULT_TTL_S) -> PendingAction:
    """All parameters are known: read the change back and wait for a yes (the clock restarts)."""
    pending.status = Status.AWAITING
    pending.drafted = False
    pending.offer("", ())
    pending.expires_at = now + ttl_s
    return pending


def confirm(pending: PendingAction | None, customer_id: str, now: float, *, by: str = "customer") -> PendingAction:
    """The explicit yes. Raises ConfirmationError, changing nothing, for an action never
    proposed, expired, cancelled, of another customer, or confirmed already."""
    if pending is None or pending.status in (Status.COLLECTING, Status.SUSPENDED):
        raise ConfirmationError("never_proposed", "There is nothing waiting for your confirmation.")
    if pending.customer_id != customer_id:
        raise ConfirmationError("never_proposed", "There is nothing waiting for your confirmation.")
    if pending.status == Status.CONFIRMED:
        raise ConfirmationError("already_confirmed", "This was already confirmed; it is not done a second time.")
    if pending.status == Status.CANCELLED:
        raise ConfirmationError("cancelled", "That request was cancelled, so nothing was changed.")
    if pending.status == Status.EXPIRED or pending.expired(now):
        pending.status = Status.EXPIRED
        raise ConfirmationError("expired", "That request expired before it was confirmed, so nothing was changed. Please ask again.")
    pending.status = Status.CONFIRMED
    pending.confirmed_by = by
    pending.confirmed_at = now
    return pending


# --- the customer's reply ------------------------------------------------------------------------

_YES = (
    r"yes|yeah|yep|yup|y|sure|ok|okay|confirm|confirmed|i confirm|go ahead|do it|please do|correct|"
    r"that'?s right|proceed|"
    r"네|예|응|넵|네네|좋아요|좋아|확인|확인했어요|진행|진행해|진행해요|진행해\s?주세요|해\s?주세요|해줘|그래|그래요|맞아요|맞아|부탁해요|부탁드려요"
)
# A refusal whatever follows it: unlike "cancel" or "stop", these words never start a request.
_REFUSAL = r"no|nope|nah|n|don'?t|do not|never mind|nevermind|no thanks|not now|아니요|아니|아뇨|아니에요|하지\s?마|하지\s?마세요"
# The other ways a no starts: "cancel ..." and "stop ..." may also be a request of their own.
# "keep it" in Korean: 유지할게요, 그냥 둘게요, 그대로 둘게요 (held-out splits 2-4 each end a
# cancellation so: "아 잠깐만요, 아니요 그냥 유지할게요").
_NO = _REFUSAL + (r"|cancel|stop|keep it|취소|취소해|취소해\s?주세요|그만|괜찮아요|됐어요|안\s?할래요|"
                  r"(?:그냥\s?|그대로\s?)?(?:유지할게요|유지할래요|유지해\s?주세요|유지해줘|둘게요|놔둘게요|놔\s?주세요)")
# Courtesy may follow a yes ("yes please", "네 감사합니다"); it is never a yes on its own.
_COURTESY = r"please|thanks|thank you|감사합니다|고마워요"
_YES_ONLY = re.compile(rf"^(?:{_YES})(?:\s+(?:{_YES}|{_COURTESY}))*$")
_NO_START = re.compile(rf"^(?:{_NO})(?:\s|$)")
_YES_START = re.compile(rf"^(?:{_YES})\s")
_REFUSAL_START = re.compile(rf"^(?:{_REFUSAL})(?:\s|$)")


# Words that open a refusal without changing it: "actually never mind", "아 됐어요". Never
# stripped before a yes: "wait, yes" or "hmm ok" is a hesitation, not an explicit yes.
_FILLER = re.compile(r"^(?:(?:actually|oh|ah|hmm+|um+|uh+|wait|well|아|앗|어|음|잠깐만?|잠깐만요|잠깐요)\s+)+")
# After a yes, words that take it back or point elsewhere: "yes, but cancel the other one".
_NOT_ONLY_YES = re.compile(
    r"\b(?:but|however|instead|other|another|not|no|don'?t|never|actually|wait|if|unless|except|rather)\b|"
    r"근데|그런데|하지만|말고|다른|아니|안\s|마세요|말아")
# A yes that restates the action says it in a few words ("yes, cancel it", "넵 해지해주세요").
_RESTATING_WORDS = 5


def _plain(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    return re.sub(r"[!.,~…\s]+", " ", text).strip()


def _refusal_text(message: str) -> str:
    return _FILLER.sub("", _plain(message))


def reply_intent(message: str) -> str:
    """"yes" only for an explicit, unconditional yes (a question or a "yes, but" is not one),
    "no" for a refusal (possibly opened by a filler word, possibly followed by a correction),
    else "other". English and Korean."""
    if "?" in message:
        return "other"
    if _YES_ONLY.match(_plain(message)):
        return "yes"
    if _NO_START.match(_refusal_text(message)):
        return "no"
    return "other"


def refuses(message: str) -> bool:
    """A refusal whatever follows it ("no, don't cancel my subscription", "아니요 ..."): unlike
    "cancel ..." or "stop ...", never a request of its own."""
    return bool(_REFUSAL_START.match(_refusal_text(message)))


def intent_of(pending: PendingAction | None, message: str, routed_action: str | None, action: Action | None) -> str:
    """reply_intent, and a yes that says again what it agrees to ("yes, cancel it", "넵 해지해
    주세요"): one whose words route to the action waiting and give no other value for it."""
    intent = reply_intent(message)
    if intent == "other" and pending is not None and routed_action == pending.action and _restates_with_yes(message):
        given = fill_by_pattern(action, message).values if action is not None else {}
        if all(pending.slots.get(name) == value for name, value in given.items()):
            return "yes"
    return intent


def _restates_with_yes(message: str) -> bool:
    """An explicit yes followed by a few more words that neither take it back nor point
    elsewhere ("yes, cancel it"; not "yes, but cancel the other one"), and no question: a yes
    when those words ask for the very action waiting (the caller checks that)."""
    plain = _plain(message)
    start = _YES_START.match(plain)
    if "?" in message or start is None:
        return False
    rest = plain[start.end():]
    return len(rest.split()) <= _RESTATING_WORDS and not _NOT_ONLY_YES.search(rest)


@dataclass(frozen=True)
class Transition:
    """What a message did to the pending action: `kind` says what the turn does next."""

    kind: str  # run | cancelled | changed | switched | unrelated | reproposed | filled | still_missing | expired | error
    pending: PendingAction | None
    error: ConfirmationError | None = None


def advance(pending: PendingAction | None, message: str, *, action: Action | None, customer_id: str, now: float,
            routed_action: str | None = None) -> Transition:
    """The pending action after the customer's message. `action` is the pending one's
    declaration; `routed_action` is what routing made of the message on its own."""
    intent = intent_of(pending, message, routed_action, action)
    if pending is None or pending.customer_id != customer_id or pending.status in (Status.CANCELLED, Status.EXPIRED):
        if intent == "yes":
            error = ConfirmationError("never_proposed", "There is nothing waiting for your confirmation.")
            return Transition("error", None, error)
        return Transition("unrelated", None)
    if pending.status == Status.CONFIRMED:
        if intent == "yes":
            return Transition("error", pending, ConfirmationError("already_confirmed", "This was already confirmed; it is not done a second time."))
        return Transition("unrelated", pending)
    assert action is not None and action.name == pending.action
    if pending.expired(now):
        # "Cancel my subscription" starts like a no, but routing takes it for a request of its
        # own; "no, don't cancel my subscription" is a refusal whatever routing makes of it.
        refused = intent == "no" and (routed_action is None or refuses(message))
        replies = intent == "yes" or refused or _answers_the_question(pending, message, action)
        pending.status = Status.EXPIRED
        if not replies:
            # Asked something else after the request lapsed: answered as if nothing waited
            # (a help-center question, or the same request asked afresh).
            return Transition("unrelated", None)
        return Transition("expired", pending, ConfirmationError("expired", "That request expired, so nothing was changed. Please ask again."))
    switched = routed_action is not None and routed_action != pending.action and intent != "yes"
    if pending.status == Status.COLLECTING:
        # An answer to the question asked ("L-104240") continues it, whatever routing made of it.
        collected = _collect(pending, message, action, intent)
        if collected.kind == "unrelated" and switched:
            pending.status = Status.CANCELLED
            return Transition("switched", pending)
        return collected
    return _answer_to_proposal(pending, message, action, intent, switched=switched, customer_id=customer_id, now=now)


def _answer_to_proposal(pending: PendingAction, message: str, action: Action, intent: str, *, switched: bool,
                        customer_id: str, now: float) -> Transition:
    """What the message does to a change read back (awaiting its yes) or set aside (suspended)."""
    if pending.drafted and intent == "no":
        # A "no" to something else: the customer was never asked about the drafted change.
        return Transition("unrelated", pending)
    new_values = {name: value for name, value in fill_by_pattern(action, message).values.items()
                  if pending.slots.get(name) != value}
    if new_values and (intent == "no" or (intent == "other" and not switched)):
        # "No, the other one: L-104240": the customer changed their mind about a value.
        pending.slots.update(new_values)
        return Transition("changed", propose(pending, now))
    if switched:
        pending.status = Status.CANCELLED
        return Transition("switched", pending)
    if intent == "no":
        pending.status = Status.CANCELLED
        return Transition("cancelled", pending)
    if pending.status == Status.SUSPENDED:
        if intent == "yes":
            # A yes after something else was said in between is not taken as the confirmation:
            # the change is read back again and needs a yes right after it.
            return Transition("reproposed", propose(pending, now))
        return Transition("unrelated", pending)
    if intent == "yes":
        return Transition("run", confirm(pending, customer_id, now))
    pending.status = Status.SUSPENDED
    return Transition("unrelated", pending)


def _values_given(pending: PendingAction, message: str, action: Action) -> dict[str, Any]:
    """The parameter values the message gives: by their patterns, and for the parameter the
    clarifying question asked for, as an answer to it ("L-104240", or one of the options it
    offered picked by its place or its label: "the hub one", "두 번째 거요")."""
    found = fill_by_pattern(action, message).values
    if pending.asking and pending.asking not in found:
        value = answer_to_question(action.parameters[pending.asking], message)
        if value is None:
            value = picked_option(message, pending.offered, pending.labels)
        if value is not None:
            found[pending.asking] = value
    return found


def _answers_the_question(pending: PendingAction, message: str, action: Action) -> bool:
    """Whether the message gives the value the clarifying question asked for ("L-104240" to
    "which order?")."""
    return (pending.status == Status.COLLECTING and bool(pending.asking)
            and pending.asking in _values_given(pending, message, action))


def _collect(pending: PendingAction, message: str, action: Action, intent: str) -> Transition:
    if intent == "no":
        pending.status = Status.CANCELLED
        return Transition("cancelled", pending)
    found = _values_given(pending, message, action)
    if not found:
        return Transition("unrelated", pending)
    pending.slots.update(found)
    missing = [name for name, parameter in action.parameters.items() if parameter.required and name not in pending.slots]
    return Transition("filled" if not missing else "still_missing", pending)
