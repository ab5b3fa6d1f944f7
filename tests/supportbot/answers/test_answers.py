"""The model-free answer machinery: repetition detection, sentence support, attribution and
extractive composition."""

from __future__ import annotations

import pytest

from supportbot.answers.compose import StreamingVerifier, extractive_answer
from supportbot.answers.grounding import Evidence, Passage, announces
from supportbot.answers.repetition import RepetitionDetector, is_degenerate
from supportbot.answers.text import split_units

RESET = Passage(
    "Reset your password",
    "On the sign-in screen, tap **Forgot password?** and enter the e-mail address on your account. "
    "We send a reset link that is valid for 60 minutes.",
)
REFUNDS = Passage(
    "When will I get my refund?",
    "We inspect returned items within 3 business days of receiving them.\n\n"
    "- Credit and debit cards: 5-10 business days after approval.\n"
    "- PayPal, Apple Pay and Google Pay: 1-3 business days.",
    ["How long it takes"],
)
BULB_RESET = Passage(
    "Factory reset a bulb",
    "A factory reset removes the bulb from your home.\n\n"
    "To reset it:\n"
    "1. Turn the bulb on with the wall switch.\n"
    "2. Switch it off and on five times in a row.\n"
    "3. The bulb blinks three times to confirm the reset.\n\n"
    "Then add it again in the app.",
)


# -- repetition -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        'Click "Reset your password" again. You will be asked to log in. Click "Reset your password" again.',
        "1. Open the app.\n2. Tap Reset.\n3. Open the app.\n4. Tap Reset.\n",
        "I'm sure you'll find a way to repair it. I'm sure you'll find a way to repair it.",
        "you can return the item within thirty days and you can return the item within thirty days",
    ],
)
def test_loops_are_degenerate(text: str) -> None:
    assert is_degenerate(text)


@pytest.mark.parametrize(
    "text",
    [
        "Very very good. No, no, no. Yes yes.",
        "Tap Forgot password? and enter the e-mail address on your account. We send a reset link that is valid for 60 minutes.",
        "1. Open the app.\n2. Tap Account.\n3. Tap Security.\n4. Tap Two-step verification.",
        "The hub has 3 years. The bulbs have 2 years. The strips have 2 years.",
    ],
)
def test_legitimate_repeats_are_not_degenerate(text: str) -> None:
    assert not is_degenerate(text)


def test_detector_cuts_where_the_repetition_began_while_streaming() -> None:
    detector = RepetitionDetector()
    text = "Tap Forgot password. Check your spam folder. Tap Forgot password. Check"
    fired_at = next(i for i in range(len(text)) if detector.feed(text[i]))
    assert detector.clean_text == "Tap Forgot password. Check your spam folder."
    assert fired_at < len(text) - 1  # stopped before the stream ended
    assert detector.settled <= len("Tap Forgot password. Check your spam folder. ")


def test_cycling_numbered_list_is_cut_before_the_cycle() -> None:
    detector = RepetitionDetector()
    detector.feed("1. Open the app.\n2. Tap Reset.\n3. Open the app.\n")
    assert detector.clean_text == "1. Open the app.\n2. Tap Reset."


# -- units ----------------------------------------------------------------------------------
def test_lists_stay_whole_and_share_a_block_with_their_introduction() -> None:
    units = split_units(BULB_RESET.text)
    texts = [u.text for u in units]
    assert texts[1] == "To reset it:" and texts[2].startswith("1. Turn") and texts[4].startswith("3. The bulb")
    assert len({u.block for u in units[1:5]}) == 1 and units[0].block != units[1].block
    assert split_units("Use e.g. the app. Then wait.")[0].text == "Use e.g. the app."


# -- support and attribution ----------------------------------------------------------------
def test_support_needs_the_words_and_the_figures_of_a_source() -> None:
    evidence = Evidence([RESET, REFUNDS])
    held = evidence.support("Card refunds take 5-10 business days after approval.")
    assert held.source == 2 and held.score >= 0.8
    assert evidence.support("Card refunds take 2 business days.").score == 0.0  # a figure no source states
    assert evidence.support("Our stores open at nine on Sundays in Chicago.").score < 0.3
    assert evidence.support("Thanks!").score == 0.0  # no content words


def test_verifier_keeps_supported_sentences_and_cites_the_right_source() -> None:
    verifier = StreamingVerifier(Evidence([RESET, REFUNDS]), threshold=0.6)
    shown = []
    for piece in ["Tap Forgot password? on the sign-in", " screen [2]. The link is valid for", " 60 minutes. ",
                  "Call us at [Your Phone]. The link is valid for 60 minutes. ", "Refunds arrive in 2 days."]:
        shown += verifier.feed(piece)
    shown += verifier.finish()
    assert [(s.text, s.sources) for s in shown] == [
        ("Tap Forgot password? on the sign-in screen.", [1]),  # the model's wrong [2] re-attributed
        ("The link is valid for 60 minutes.", [1]),
    ]
    assert sorted(v.reason for v in verifier.verdicts if not v.kept) == ["repeated", "template hole", "unsupported"]


def test_verifier_drops_a_last_sentence_cut_off_by_the_token_limit() -> None:
    verifier = StreamingVerifier(Evidence([RESET]), threshold=0.6)
    verifier.feed("We send a reset link that is valid for 60 minutes. We send a reset link")
    assert verifier.finish(truncated=True) == [] and verifier.verdicts[-1].reason == "cut off"


# -- extractive composition -----------------------------------------------------------------
def test_extractive_answer_keeps_steps_in_order_and_whole() -> None:
    answer = extractive_answer("how do I factory reset a bulb", Evidence([BULB_RESET, RESET]))
    text = answer.text
    assert text.index("1. Turn") < text.index("2. Switch") < text.index("3. The bulb blinks")
    assert answer.sources == [1] and "Forgot password" not in text


def test_extractive_answer_never_quotes_an_unrelated_source() -> None:
    answer = extractive_answer("how long do card refunds take", Evidence([REFUNDS, BULB_RESET]))
    assert "5-10 business days" in answer.text and "[1]" in answer.text
    assert "bulb" not in answer.text.lower()


def test_contradicting_sources_are_both_quoted_with_their_own_citation() -> None:
    old = Passage("Returns (2024)", "You can return any product within 30 days of delivery for a full refund.")
    new = Passage("Holiday returns", "You can return any product within 60 days of delivery for a full refund.")
    answer = extractive_answer("how many days do I have to return a product", Evidence([old, new]))
    assert "30 days of delivery for a full refund. [1]" in answer.text
    assert "60 days of delivery for a full refund. [2]" in answer.text


def test_sources_without_sentences_give_no_answer() -> None:
    table = Passage("Prices", "| plan | price |\n| --- | --- |\n| monthly | 4.99 |")
    code = Passage("Config", "```\nkey = 1\n```")
    assert extractive_answer("what does the monthly plan cost", Evidence([table, code])).sentences == []


def test_a_question_in_another_language_shares_no_word_with_the_sources() -> None:
    # Its relevance is 0: with a minimum relevance the gateway answers "not covered"; with the
    # default (0) it trusts the retriever's semantic match and quotes the top section.
    assert extractive_answer("비밀번호를 잊어버렸어요", Evidence([RESET]), min_relevance=0.01).sentences == []
    assert extractive_answer("비밀번호를 잊어버렸어요", Evidence([RESET])).text.startswith("On the sign-in screen")


def test_a_very_long_question_still_finds_the_relevant_sentence() -> None:
    question = "I tried everything and I am really frustrated, " * 40 + "how long do card refunds take?"
    answer = extractive_answer(question, Evidence([BULB_RESET, REFUNDS]))
    assert "5-10 business days" in answer.text


def test_citation_marks_are_not_repeated_phrases() -> None:
    text = (
        "- The suffix for an alpha version is aN for some small number N. [2]\n"
        "- The suffix for a beta version is bN for some small number N. [2]"
    )
    assert not is_degenerate(text)
    assert is_degenerate("The link is valid for 60 minutes. [1] The link is valid for 60 minutes. [2]")


def test_a_cut_cycling_list_leaves_no_dangling_item_number() -> None:
    detector = RepetitionDetector()
    detector.feed("1. Create a new password\n2. Create a new password for the old one\n3. Create a new password\n")
    assert detector.degenerate and not detector.clean_text.rstrip().endswith("3.")


def test_a_paragraph_after_a_list_is_its_own_markdown_block() -> None:
    from supportbot.answers.compose import AnswerSentence, render

    text = render([
        AnswerSentence("Do this:", [1]), AnswerSentence("- one", [1], is_list_item=True),
        AnswerSentence("- two", [1], is_list_item=True), AnswerSentence("Then wait.", [2]),
    ])
    assert text == "Do this:\n\n- one\n- two [1]\n\nThen wait. [2]"


# The Math guide's color page (LibreOffice 7.4 Help, MPL-2.0), shortened: the answer's budget
# ends on the sentence that announces the example the customer needs.
COLOR = Passage(
    "Changing Color in Formulas",
    "Use the command color to apply color to the subsequent formula part. The example below creates a formula "
    "where a is shown using the default color (black) and b is shown in red.\n"
    "a + color red b\n"
    "Beware that the color command only changes the color of the formula part that comes immediately after it. "
    "For example, in the formula below only b will be shown in red, whereas c will be shown in black.\n"
    "a + color red b + c\n"
    "Use braces to apply color to more parts of the formula. In the following example, b and c are shown in red.\n"
    "a + color red { b + c }\n"
    "A list with predefined color names is available here.",
)


def test_a_sentence_announcing_an_example_is_quoted_with_the_example() -> None:
    composition = Evidence([COLOR]).compose("color red makes only b red, how do I make b and c both red?", max_chars=480)
    quoted = " ".join(q.text for q in composition.quotes)
    assert "In the following example, b and c are shown in red." in quoted
    assert "a + color red { b + c }" in quoted


@pytest.mark.parametrize(
    ("sentence", "announcing"),
    [("In the following example, b and c are shown in red.", True), ("입력창을 클릭하고 다음과 같이 입력하세요.", True),
     ("주말이나 공휴일에 한 주문은 다음 영업일에 발송됩니다.", False), ("Check these first:", False),
     ("Refunds take 5-10 business days.", False)],
)
def test_what_announces_what_follows(sentence: str, announcing: bool) -> None:
    # A colon's lead-in is a list's (quoted with its list, or dropped when cut off from it).
    assert announces(sentence) is announcing
