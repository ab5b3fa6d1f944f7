"""Quoted answers that stand on their own (issue 28): lead-ins, antecedents, one citation number
per article in reading order, sentences chosen by relevance; and the answerability decision."""

from __future__ import annotations

import pytest

from supportbot.answers.answerability import assess
from supportbot.answers.cohesion import leans_on_previous
from supportbot.answers.compose import extractive_answer
from supportbot.answers.grounding import Evidence, Highlight, Passage
from supportbot.evaluation import answer_form, degeneration

pytestmark = pytest.mark.unit

UNEXPECTED_CHARGE = (
    "Lumio charges appear on bank statements as **LUMIO*HOME** followed by an order or subscription number.\n\n"
    "## Check these first\n"
    "1. A Lumio Plus free trial that converted into a paid plan after 30 days.\n"
    "2. A family member in your Lumio home who placed an order with a saved card.\n"
    "3. A pre-authorisation: when you order, your bank may hold the amount for up to 7 days before the final "
    "charge. Holds for cancelled orders disappear on their own.\n\n"
    "## Still not sure?\n"
    "Contact support with the last four digits of the card and the date of the charge. Do not send the full card number."
)


@pytest.mark.parametrize(
    "sentence",
    [
        "Such accounts have no Lumio password.",
        "This removes the bulb from your home.",
        "These settings apply to every bulb.",
        "The converse is probably also true, that is, a faster machine helps.",
        "However, gift cards cannot be refunded.",
        "For a more verbose description, use:",
        "- Then add it again in the app.",
        "이런 계정에는 Lumio 비밀번호가 없습니다.",
        "그 경우 고객센터에 문의하세요.",
        "하지만 기프트 카드는 환불되지 않습니다.",
        "이것은 앱에서만 바꿀 수 있습니다.",
    ],
)
def test_openings_that_refer_back_are_detected(sentence: str) -> None:
    assert leans_on_previous(sentence)


@pytest.mark.parametrize(
    "sentence",
    [
        "Tap Forgot password? on the sign-in screen.",
        "There is no fee for exchanges.",
        "Lumio accepts PayPal.",
        "The link is valid for 60 minutes.",
        "로그인 화면에서 비밀번호를 잊으셨나요?를 누르세요.",
        "저는 비밀번호를 잊었습니다.",
        "모든 전구는 2년 동안 보증됩니다.",
    ],
)
def test_sentences_that_stand_alone_are_not_flagged(sentence: str) -> None:
    assert not leans_on_previous(sentence)


def test_a_list_is_quoted_with_the_sentence_that_introduces_it() -> None:
    passage = Passage("Factory reset a bulb", "Intro text here.\n\nTo reset it:\n1. Turn the bulb on.\n2. Switch it off five times.")
    text = extractive_answer("how do I switch it off five times", Evidence([passage])).text
    assert text.index("To reset it:") < text.index("1. Turn")


def test_a_list_at_the_top_of_its_section_gets_the_section_heading_as_lead_in() -> None:
    refunds = Passage("When will I get my refund?",
                      "- Credit and debit cards: 5-10 business days after approval.\n- PayPal: 1-3 business days.",
                      ["When will I get my refund?", "How long it takes to show up"], document_id="refund-timing")
    text = extractive_answer("how long does a card refund take", Evidence([refunds])).text
    assert text.startswith("How long it takes to show up:\n\n- Credit and debit cards")
    assert not answer_form.list_without_lead_in(text)


def test_charged_twice_quotes_the_checklist_with_its_lead_in_and_the_advice() -> None:
    article = Passage("I see a charge I don't recognise", UNEXPECTED_CHARGE, dense_score=0.5, document_id="unexpected-charge")
    shipping = Passage("Split shipments", "Large orders and orders with items from different warehouses can ship in more "
                       "than one package. You pay shipping only once.", dense_score=0.52, document_id="split-shipments")
    answer = extractive_answer("I was charged twice for my order, what do I do?", Evidence([shipping, article]))
    text = answer.text
    assert "Check these first:" in text and text.index("Check these first:") < text.index("1. A Lumio Plus")
    assert not answer_form.list_without_lead_in(text)
    assert answer_form.citations_in_reading_order(text)


REMOVE_DUPLICATES = (
    "Consider a single column with values where some may be duplicates. To remove duplicate values and obtain only "
    "the unique entries in the column:\n"
    "1. Select the range of values from which duplicate values are to be removed.\n"
    "2. Go to Data - More Filters - Standard Filter. This opens the Standard Filter dialog.\n"
    "3. In Field Name make sure that the selected column is the column where the values are stored.\n"
    "4. In Condition choose the option = (equals sign), which is the default option.\n"
    "5. In Value choose the option Not Empty.\n"
    "6. Click Options and select No duplications.\n"
    "7. Check Copy results and enter the cell where the unique entries are to be entered.\n"
    "8. Click OK. The unique values in the range will be entered starting with that cell."
)


def test_a_how_to_question_gets_the_procedure_whole() -> None:
    """LibreOffice's remove_duplicates page (dev set libreoffice, lo05): the procedure is longer
    than an answer's usual budget, which quoted the first sentence alone."""
    passage = Passage("Removing Duplicate Values", REMOVE_DUPLICATES, document_id="remove_duplicates")
    text = extractive_answer("how do I get rid of duplicate entries in a column?", Evidence([passage])).text
    assert "To remove duplicate values" in text and "2. Go to Data - More Filters - Standard Filter" in text
    assert text.index("1. Select the range") < text.index("6. Click Options and select No duplications") < text.index("8. Click OK")
    assert not answer_form.list_without_lead_in(text)
    # Not asked how, yet what answers is the steps' lead-in: the procedure whole as well.
    described = extractive_answer("duplicate entries in a column", Evidence([passage])).text
    assert "1. Select the range" in described and "8. Click OK" in described


def test_a_step_is_kept_although_other_steps_already_quoted_use_its_words() -> None:
    """LibreOffice's pageorientation page (dev set libreoffice, lo11): its second procedure's
    first step shares its words with the first procedure's steps and was left out, so the
    answer's steps began at 2."""
    switch = Passage("Changing Page Orientation", "These styles can be used to switch the orientation by inserting manual breaks:\n"
                     "1. Place the cursor where the page break is to be inserted.\n2. Go to Insert - More Breaks - Manual Break.\n"
                     "3. Choose the option Page break and in the Page Style list choose the page style Landscape.",
                     dense_score=0.66, document_id="pageorientation", chunk_id="pageorientation#5")
    all_pages = Passage("Changing Page Orientation", "If your document uses one page style, you can change the page properties directly:\n"
                        "1. Choose Format - Page Style.\n2. Click the Page tab.\n3. Under Paper format, select Portrait or Landscape.\n"
                        "4. Click OK.", dense_score=0.63, document_id="pageorientation", chunk_id="pageorientation#1")
    text = extractive_answer("how do I turn my document into landscape?", Evidence([switch, all_pages])).text
    assert "1. Choose Format - Page Style." in text and text.index("1. Choose Format") < text.index("2. Click the Page tab")


def test_a_sentence_that_refers_back_brings_its_antecedent() -> None:
    passage = Passage("Sign in with Apple", "You can sign in with your Apple ID or Google account. Such accounts have no "
                      "Lumio password. Reset the password of your Apple ID instead.")
    text = extractive_answer("does my account have a Lumio password", Evidence([passage])).text
    assert text.index("You can sign in with your Apple ID") < text.index("Such accounts")


def test_a_korean_sentence_that_refers_back_at_the_top_of_its_section_brings_the_heading() -> None:
    section = Passage("비밀번호 재설정하기", "이런 계정에는 Lumio 비밀번호가 없습니다. Apple ID나 Google 계정의 비밀번호를 재설정하세요.",
                      ["비밀번호 재설정하기", "Apple 또는 Google 계정으로 로그인하는 경우"], document_id="reset-password")
    text = extractive_answer("Lumio 비밀번호가 없나요", Evidence([section])).text
    assert text.startswith("Apple 또는 Google 계정으로 로그인하는 경우:")


def test_two_sections_of_one_article_share_one_number_with_their_sections_listed() -> None:
    first = Passage("Reset your password", "Tap Forgot password? on the sign-in screen and enter your e-mail address.",
                    ["Reset your password"], 0.6, "reset-password", "helpcenter/reset-password#0")
    second = Passage("Reset your password", "Check your spam folder for the reset e-mail from no-reply@lumio.example.",
                     ["Reset your password", "The reset e-mail did not arrive"], 0.5, "reset-password",
                     "helpcenter/reset-password#1")
    answer = extractive_answer("reset password e-mail did not arrive spam", Evidence([second, first]))
    assert answer.sources == [1] and "[2]" not in answer.text
    assert [a.number for a in answer.articles] == [1]
    assert answer.articles[0].sections == ["The reset e-mail did not arrive"]
    # The article's sections in its own order, whatever order the retriever returned them in.
    assert answer.text.index("Tap Forgot password") < answer.text.index("Check your spam")


def test_citations_are_numbered_in_reading_order_most_relevant_article_first() -> None:
    old = Passage("Returns (2024)", "You can return any product within 30 days of delivery for a full refund.", dense_score=0.6)
    new = Passage("Holiday returns", "You can return any product within 60 days of delivery for a full refund.", dense_score=0.62)
    answer = extractive_answer("how many days do I have to return a product", Evidence([old, new]))
    assert answer.text.index("60 days") < answer.text.index("30 days")
    assert answer_form.citations_in_reading_order(answer.text)


def test_a_second_article_is_quoted_only_for_a_fact_the_first_lacks() -> None:
    first = Passage("Payment methods", "Lumio accepts PayPal and all major cards.", dense_score=0.7)
    same = Passage("Paying with PayPal", "Lumio accepts PayPal and all major cards at checkout.", dense_score=0.69)
    answer = extractive_answer("does lumio accept paypal", Evidence([first, same]))
    assert answer.sources == [1]


def test_highlights_reach_a_fact_deep_in_a_long_section() -> None:
    filler = " ".join(f"Paragraph sentence number {n} talks about something else entirely." for n in range(12))
    fact = "Garbage collection frees cycles of objects that refer to each other."
    text = f"{filler} {fact}"
    start = text.index(fact)
    highlights = [Highlight(fact, 0.71, start, start + len(fact)), Highlight("Paragraph", 0.05, 0, 40)]
    with_scores = Passage("Memory", text, highlights=highlights)
    assert fact in extractive_answer("how are reference cycles reclaimed", Evidence([with_scores])).text
    # Without highlights the lexical fallback picks the same sentence when it shares the words.
    plain = Passage("Memory", text)
    assert fact in extractive_answer("how does garbage collection free cycles", Evidence([plain])).text


def test_answerability_declines_what_the_passages_do_not_cover() -> None:
    payments = Passage("Payment methods", "We accept Visa, Mastercard, American Express and PayPal. We do not accept "
                       "cash on delivery or cryptocurrency.", dense_score=0.55)
    assert assess("can I pay with paypal", Evidence([payments])).answerable
    declined = assess("do you sell smart thermostats", Evidence([Passage("Payment methods", payments.text, dense_score=0.2)]))
    assert not declined.answerable and "does not cover" in declined.reason
    assert not assess("anything", Evidence([])).answerable


def test_answerability_across_languages_rests_on_similarity_alone() -> None:
    english = Passage("Payment methods", "We accept PayPal.", dense_score=0.45)
    decision = assess("페이팔로 결제할 수 있나요?", Evidence([english]))
    assert decision.answerable and decision.coverage is None


def test_form_measures_read_the_text_the_customer_sees() -> None:
    assert answer_form.list_without_lead_in("Intro. [1]\n\n- item [2]")
    assert answer_form.articles_under_two_numbers(["reset-password", "reset-password"])
    assert answer_form.first_sentence("The converse is true. More here. [1]") == "the converse is true."


def test_degeneration_is_counted_without_the_repetition_detector() -> None:
    assert degeneration.measure("Open the app and tap Reset.\nOpen the app and tap Reset.").degenerate
    assert degeneration.measure("you can return the item within thirty days " * 3).degenerate
    assert not degeneration.measure("1. Open the app. [1]\n2. Tap Account. [1]\n3. Tap Security. [1]").degenerate


# LibreOffice 7.4 Help (Debian libreoffice-help-en-us), as the retriever parses it.
SPREADSHEET_FROM_FILE = (
    "When you insert an existing spreadsheet into your slide, changes that are made to the original spreadsheet "
    "file are not updated on your slide. You can, however, make changes to the spreadsheet in your slide.\n"
    "1. Go to the slide where you want to insert the spreadsheet.\n"
    "2. Choose Insert - OLE Object - OLE Object.\n"
    "3. Select Create from file, and click Search.\n"
    "4. Locate the file you want to insert, and then click OK.\n"
    "Enable the Link to file checkbox to insert the file as a live link.\n"
    "The entire spreadsheet is inserted into your slide. If you want to change the sheet that is displayed, "
    "double-click the spreadsheet, and then select a different sheet."
)
NATIVE_TABLE = (
    "1. Go to the Impress slide or Draw page where you want to insert the table.\n"
    "2. Choose Insert - Table or use the Table icon on the Standard toolbar to insert a table.\n"
    "3. Double-click the table and enter or paste the data into the cells.\n"
    "4. Select some cell contents and right-click to open the context menu. Choose commands to change the cell's "
    "contents, like font size and line spacing.\n"
    "5. Right-click the table border to open the table's context menu. Use the table's context menu to enter a name "
    "and description for the table, or to distribute the rows or columns equally, among other commands.\n"
    "6. Select some cells and right-click to open a context menu, where you can insert or delete rows and columns, "
    "among other commands.\n"
    "To select a rectangular area of cells, point to a cell in one corner of the rectangle, hold down the mouse "
    "button, and drag the mouse to the opposite corner of the rectangle, then release the mouse button.\n"
    "To select one cell, point to that cell, hold down the mouse button, and drag the mouse to the next cell and "
    "back, then release the mouse button."
)
NEW_LAYER = (
    "Drawings in LibreOffice Draw support layers.\n"
    "1. Right-click the layer tab area at the bottom.\n"
    "2. Choose Insert Layer.\n"
    "3. Type a name for the layer in the Name box.\n"
    "4. In the Properties area, set the options for the layer.\n"
    "5. Click OK. The new layer automatically becomes the active layer.\n"
    "To change the properties of a layer, click the name tab of the layer, and then choose Format - Layer.\n"
    "You cannot change the name of or delete a predefined LibreOffice Draw layer."
)
ABOUT_LAYERS = (
    "Layers allow you to assemble elements on a page that are related. Think of layers as individual workspaces "
    "that you can hide from view, hide from printing, or lock.\n"
    "LibreOffice Draw provides three default layers:\n- Layout\n- Controls\n- Dimension Lines\n"
    "You cannot delete or rename the default layers. You can add your own layers by Insert - Layer.\n"
    "You can lock a layer to protect its contents, or hide a layer and its contents from view or from printing. "
    "When you add a new layer to a page, the layer is added to all of the pages in your document. However, when you "
    "add an object to a layer, it is only added to the current page."
)


def test_a_procedure_is_quoted_whole_when_what_leads_into_it_answers() -> None:
    """libreoffice-id id14: a problem described, not a "how" question; what answers it is the
    procedure's lead-in, and the usual budget cut the step that matters (Link to file)."""
    passage = Passage("Including Spreadsheets in Slides", SPREADSHEET_FROM_FILE,
                      heading_path=("Including Spreadsheets in Slides", "Inserting a spreadsheet from a file"),
                      document_id="table_insert")
    question = "I inserted a spreadsheet into a slide but when I change the original file the numbers on the slide don't update"
    text = extractive_answer(question, Evidence([passage])).text
    assert "changes that are made to the original spreadsheet file are not updated" in text
    assert text.index("1. Go to the slide") < text.index("4. Locate the file") < text.index("Enable the Link to file checkbox")


def test_a_question_answered_outside_the_procedure_keeps_the_usual_budget() -> None:
    passage = Passage("Including Spreadsheets in Slides", NATIVE_TABLE,
                      heading_path=("Including Spreadsheets in Slides", "Inserting a native table"), document_id="table_insert")
    text = extractive_answer("selecting a rectangular area of cells", Evidence([passage])).text
    assert "To select a rectangular area of cells" in text
    assert "1. Go to the Impress slide" not in text and "5. Right-click the table border" not in text


def test_a_how_to_question_takes_the_steps_before_a_description_a_little_closer_in_meaning() -> None:
    """libreoffice-id id20: the description of layers, a little closer to the question in meaning
    than the page with the steps (and retrieved first), went first."""
    about = Passage("About Layers", ABOUT_LAYERS, dense_score=0.615, document_id="layers")
    steps = Passage("Inserting Layers", NEW_LAYER, dense_score=0.600, document_id="layer_new")
    text = extractive_answer("how do I add another layer to my drawing?", Evidence([about, steps])).text
    assert "2. Choose Insert Layer." in text
    assert text.index("1. Right-click the layer tab area") < text.index("[1]")
    # Further apart in meaning than the preference, the closer section still goes first.
    farther = Passage("Inserting Layers", NEW_LAYER, dense_score=0.560, document_id="layer_new")
    text = extractive_answer("how do I add another layer to my drawing?", Evidence([about, farther])).text
    assert "You can add your own layers by Insert - Layer." in text.split("[1]")[0]

