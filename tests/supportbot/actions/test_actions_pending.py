"""The pending action's state machine: propose, then an explicit yes (English and Korean) in the
next turn runs it once; no, a change of mind, another action, an unrelated question, expiry, a
confirmation never proposed and a second confirmation each do what they should and change
nothing else. The state survives the Redis session (to_dict/from_dict, through JSON)."""

from __future__ import annotations

import json

import pytest

from supportbot.actions import pending as states
from supportbot.actions.declarations import load_actions, sample_actions_path
from supportbot.actions.slots import Option

ACTIONS = load_actions(sample_actions_path())
CANCEL = ACTIONS.action("cancel_subscription")
ADDRESS = ACTIONS.action("change_delivery_address")
NOW = 1_000_000.0


def proposed(action=CANCEL, slots=None, customer="c-ana", now=NOW) -> states.PendingAction:  # type: ignore[no-untyped-def]
    pending = states.start(action, customer, "en", now, slots=slots or {"subscription_id": "S-2001"})
    return states.propose(pending, now)


def step(pending, message, *, action=CANCEL, routed=None, customer="c-ana", now=NOW + 5):  # type: ignore[no-untyped-def]
    return states.advance(pending, message, action=action, customer_id=customer, now=now, routed_action=routed)


@pytest.mark.parametrize("message", ["yes", "Yes!", "yes please", "Yes, go ahead.", "confirm", "OK", "do it",
                                     "네", "예", "네 진행해 주세요", "확인", "좋아요", "네, 감사합니다"])
def test_an_explicit_yes_runs_it(message: str) -> None:
    transition = step(proposed(), message)
    assert transition.kind == "run"
    assert transition.pending is not None and transition.pending.status == states.Status.CONFIRMED
    assert transition.pending.confirmed_by == "customer"


@pytest.mark.parametrize("message", ["yes?", "yes but which one is cheaper", "thanks", "please", "maybe", "I guess",
                                     "yes, and where is my order?", "어", "글쎄요", "네?"])
def test_anything_less_than_an_explicit_yes_does_not_run_it(message: str) -> None:
    transition = step(proposed(), message)
    assert transition.kind != "run"
    assert transition.pending is None or transition.pending.status != states.Status.CONFIRMED


@pytest.mark.parametrize("message", ["no", "No thanks", "cancel", "don't", "never mind", "아니요", "아뇨 괜찮아요", "취소해 주세요"])
def test_no_cancels(message: str) -> None:
    transition = step(proposed(), message)
    assert transition.kind == "cancelled" and transition.pending.status == states.Status.CANCELLED


def test_a_change_of_mind_updates_the_value_and_asks_again() -> None:
    pending = proposed(ADDRESS, {"order_id": "L-104240", "address": "9 New St, Leeds"})
    transition = step(pending, "no, I meant order L-104251", action=ADDRESS)
    assert transition.kind == "changed" and transition.pending.status == states.Status.AWAITING
    assert transition.pending.slots["order_id"] == "L-104251"
    # The re-proposed change keeps its idempotency key: it is still one change.
    assert transition.pending.idempotency_key == pending.idempotency_key
    assert step(transition.pending, "yes", action=ADDRESS).kind == "run"


def test_another_action_asked_in_between_drops_the_pending_one() -> None:
    transition = step(proposed(), "actually where is my order L-104233?", routed="order_status")
    assert transition.kind == "switched" and transition.pending.status == states.Status.CANCELLED


def test_an_unrelated_question_suspends_it_and_a_later_yes_only_asks_again() -> None:
    pending = proposed()
    unrelated = step(pending, "how long do refunds take")
    assert unrelated.kind == "unrelated" and unrelated.pending.status == states.Status.SUSPENDED
    # "yes" after something else was said is not the confirmation: the change is read back.
    again = step(unrelated.pending, "yes")
    assert again.kind == "reproposed" and again.pending.status == states.Status.AWAITING
    assert step(again.pending, "yes").kind == "run"


def test_an_expired_proposal_cannot_be_confirmed() -> None:
    transition = step(proposed(), "yes", now=NOW + states.DEFAULT_TTL_S + 1)
    assert transition.kind == "expired" and transition.pending.status == states.Status.EXPIRED
    with pytest.raises(states.ConfirmationError) as error:
        states.confirm(transition.pending, "c-ana", NOW + states.DEFAULT_TTL_S + 2)
    assert error.value.code == "expired"


@pytest.mark.parametrize(("message", "routed"), [("no", None), ("아니요", None), ("yes please", None),
                                               ("No, don't cancel my subscription", "cancel_subscription"),
                                               ("아니요, 구독 취소하지 마세요", "cancel_subscription")])
def test_a_reply_to_an_expired_proposal_is_told_it_expired(message: str, routed: str | None) -> None:
    transition = step(proposed(), message, routed=routed, now=NOW + states.DEFAULT_TTL_S + 1)
    assert transition.kind == "expired" and transition.error is not None and transition.error.code == "expired"


def test_an_answer_to_an_expired_question_is_told_it_expired() -> None:
    order_status = ACTIONS.action("order_status")
    asking = states.start(order_status, "c-ana", "en", NOW)
    asking.offer("order_id", [Option("L-104233", "L-104233, Lumio Hub"), Option("L-104240", "L-104240, Lumio Color Bulb A19")])
    late = NOW + states.DEFAULT_TTL_S + 1
    assert step(asking, "L-104240", action=order_status, now=late).kind == "expired"


@pytest.mark.parametrize("message", ["how long do refunds take?", "Cancel my Lumio Plus subscription", "환불은 얼마나 걸려요?"])
def test_something_else_asked_after_expiry_is_answered_as_if_nothing_waited(message: str) -> None:
    transition = step(proposed(), message, routed="cancel_subscription" if "Cancel" in message else None,
                      now=NOW + states.DEFAULT_TTL_S + 1)
    assert transition.kind == "unrelated" and transition.pending is None


def test_a_yes_with_nothing_proposed_is_an_error() -> None:
    transition = step(None, "yes")
    assert transition.kind == "error" and transition.error.code == "never_proposed"
    with pytest.raises(states.ConfirmationError, match="nothing waiting"):
        states.confirm(None, "c-ana", NOW)
    collecting = states.start(CANCEL, "c-ana", "en", NOW)
    with pytest.raises(states.ConfirmationError) as error:
        states.confirm(collecting, "c-ana", NOW)
    assert error.value.code == "never_proposed"


def test_confirming_twice_is_an_error_and_changes_nothing() -> None:
    first = step(proposed(), "yes")
    confirmed_at = first.pending.confirmed_at
    second = step(first.pending, "yes", now=NOW + 9)
    assert second.kind == "error" and second.error.code == "already_confirmed"
    assert second.pending.confirmed_at == confirmed_at and second.pending.status == states.Status.CONFIRMED
    with pytest.raises(states.ConfirmationError) as error:
        states.confirm(first.pending, "c-ana", NOW + 10)
    assert error.value.code == "already_confirmed"


def test_another_customer_cannot_confirm() -> None:
    transition = step(proposed(), "yes", customer="c-ben")
    assert transition.kind == "error" and transition.error.code == "never_proposed"
    with pytest.raises(states.ConfirmationError):
        states.confirm(proposed(), "c-ben", NOW)


def test_a_cancelled_proposal_cannot_be_confirmed() -> None:
    cancelled = step(proposed(), "no").pending
    with pytest.raises(states.ConfirmationError) as error:
        states.confirm(cancelled, "c-ana", NOW)
    assert error.value.code == "cancelled"
    assert step(cancelled, "yes").kind == "error"


def test_collecting_takes_the_answer_to_the_question_asked() -> None:
    pending = states.start(ADDRESS, "c-ana", "en", NOW, slots={"order_id": "L-104240"})
    pending.asking = "address"
    filled = step(pending, "22 Station Road, York YO1 7AA", action=ADDRESS)
    assert filled.kind == "filled" and filled.pending.slots["address"] == "22 Station Road, York YO1 7AA"
    pending = states.start(ADDRESS, "c-ana", "en", NOW)
    pending.asking, pending.offered = "order_id", ["L-104240"]
    partly = step(pending, "l-104240 please", action=ADDRESS)
    assert partly.kind == "still_missing" and partly.pending.slots == {"order_id": "L-104240"}


def test_a_pattern_breaking_answer_fills_nothing() -> None:
    pending = states.start(ADDRESS, "c-ana", "en", NOW, slots={"order_id": "L-104240"})
    pending.asking = "address"
    assert step(pending, "somewhere nice", action=ADDRESS).kind == "unrelated"


def test_the_state_round_trips_through_json() -> None:
    pending = step(proposed(), "how long do refunds take").pending
    restored = states.PendingAction.from_dict(json.loads(json.dumps(pending.to_dict())))
    assert restored == pending and restored.status is states.Status.SUSPENDED


def test_a_stored_state_of_another_version_is_refused() -> None:
    data = proposed().to_dict()
    data["version"] = 99
    with pytest.raises(ValueError, match="version"):
        states.PendingAction.from_dict(data)
    with pytest.raises(ValueError):
        states.PendingAction.from_dict({**proposed().to_dict(), "status": "done-ish"})


def test_what_waits_for_the_customer_is_told_while_it_waits() -> None:
    """What a client showing the conversation again offers as buttons (Session.waiting_action)."""
    assert proposed().waiting_for(NOW + 5) == ("confirm", [])
    asking = states.start(ACTIONS.action("order_status"), "c-ana", "en", NOW)
    assert asking.waiting_for(NOW) is None  # nothing asked yet
    asking.offer("order_id", [Option("L-104233", "L-104233, Lumio Hub"), Option("L-104240", "L-104240, Lumio Color Bulb A19")])
    assert asking.waiting_for(NOW) == ("clarify", [Option("L-104233", "L-104233, Lumio Hub"),
                                                   Option("L-104240", "L-104240, Lumio Color Bulb A19")])
    # Expired, run, or set aside by an unrelated question: nothing waits.
    assert proposed().waiting_for(NOW + states.DEFAULT_TTL_S + 1) is None
    assert step(proposed(), "yes").pending.waiting_for(NOW + 5) is None  # type: ignore[union-attr]
    suspended = step(proposed(), "how long does a refund take?").pending
    assert suspended is not None and suspended.waiting_for(NOW + 5) is None


def test_the_offered_labels_survive_the_session_and_a_state_stored_without_them_still_offers_its_values() -> None:
    asking = states.start(ACTIONS.action("order_status"), "c-ana", "en", NOW)
    asking.offer("order_id", [Option("L-104233", "L-104233, Lumio Hub")])
    stored = json.loads(json.dumps(asking.to_dict()))
    assert states.PendingAction.from_dict(stored).waiting_for(NOW) == ("clarify", [Option("L-104233", "L-104233, Lumio Hub")])
    del stored["labels"]  # written before the labels were kept
    assert states.PendingAction.from_dict(stored).waiting_for(NOW) == ("clarify", [Option("L-104233", "L-104233")])
    assert states.propose(asking, NOW).labels == {}  # read back: nothing offered any more


@pytest.mark.parametrize("message", ["actually never mind", "oh wait, no", "Hmm no thanks", "아 됐어요", "잠깐만 아니요",
                                     "아 잠깐만요, 아니요 그냥 유지할게요", "아 잠깐만 그냥 유지할게요", "그냥 둘게요"])
def test_a_refusal_opened_by_a_filler_word_cancels(message: str) -> None:
    transition = step(proposed(), message)
    assert transition.kind == "cancelled" and transition.pending.status == states.Status.CANCELLED


@pytest.mark.parametrize("message", ["유지 기간이 어떻게 되나요?", "네 유지할게요", "유지보수 문의요"])
def test_keeping_words_that_are_no_refusal_leave_the_change_waiting(message: str) -> None:
    transition = step(proposed(), message)
    assert transition.kind != "cancelled" and transition.pending.status != states.Status.CANCELLED


@pytest.mark.parametrize("message", ["yes, cancel it", "Yes please cancel my subscription", "넵 해지해주세요", "네 구독 해지해 주세요"])
def test_a_yes_that_restates_the_waiting_action_runs_it(message: str) -> None:
    assert step(proposed(), message, routed="cancel_subscription").kind == "run"


@pytest.mark.parametrize(("message", "routed"), [
    ("yes, cancel it", None),  # the words after the yes do not ask for it
    ("yes, and where is my order", "order_status"),  # they ask for something else
    ("yes, cancel it?", "cancel_subscription"),  # a question
])
def test_a_yes_followed_by_anything_else_does_not_run_it(message: str, routed: str | None) -> None:
    transition = step(proposed(), message, routed=routed)
    assert transition.kind != "run"
    assert transition.pending is None or transition.pending.status != states.Status.CONFIRMED


@pytest.mark.parametrize(("message", "routed"), [
    ("yes, but cancel the other one", "cancel_subscription"), ("yes cancel it... actually no", "cancel_subscription"),
    ("yes, but don't cancel it", "cancel_subscription"), ("yes cancel S-2002 instead", "cancel_subscription"),
    ("yes cancel S-2002", "cancel_subscription"),  # another value than the one read back
    ("correct me if I'm wrong, cancel it", "cancel_subscription"), ("네 근데 다른 거 해지해 주세요", "cancel_subscription"),
    ("wait ok", None), ("hmm yes", None), ("잠깐만 네", None),  # a hesitation is no explicit yes
])
def test_a_yes_that_takes_itself_back_or_points_elsewhere_does_not_run_it(message: str, routed: str | None) -> None:
    transition = step(proposed(), message, routed=routed)
    assert transition.kind != "run"
    assert transition.pending is None or transition.pending.status != states.Status.CONFIRMED


def test_the_customers_no_leaves_a_change_drafted_for_the_agent_which_they_were_never_asked() -> None:
    drafted = proposed()
    drafted.status, drafted.drafted = states.Status.SUSPENDED, True
    transition = step(drafted, "no")
    assert transition.kind == "unrelated" and transition.pending.status == states.Status.SUSPENDED
