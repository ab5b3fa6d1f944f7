"""Personal data is redacted from the interaction log before it is written."""

from __future__ import annotations

import re

# Internationalised addresses too ("jürgen@bücher.example", "用户@例子.广告").
_EMAIL = re.compile(r"[\w.%+'-]+@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}", re.UNICODE)
# IBAN: country code, check digits, 11-30 more letters or digits, compact or in groups of four.
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}\b")
_CARD = re.compile(r"\b(?:\d[ -]?){13,19}\b")
_PHONE = re.compile(r"(?<!\w)\+?\d[\d\s().-]{7,}\d(?!\w)")
# Local numbers without an area code, written as people write them: 555-0199, 555 0199. (Seven
# digits in a row are as often an order number: those stay.)
_LOCAL_PHONE = re.compile(r"(?<![\w.$-])\d{3}[ -]\d{4}(?![\w%-]|\.\d)")


def _luhn_ok(digits: str) -> bool:
    total, parity = 0, len(digits) % 2
    for index, char in enumerate(digits):
        value = int(char)
        if index % 2 == parity:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _iban_ok(candidate: str) -> bool:
    """The ISO 13616 check: the rearranged number, letters as 10..35, is 1 modulo 97."""
    compact = candidate.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def redact(text: str) -> str:
    text = _EMAIL.sub("[email]", text)
    text = _IBAN.sub(lambda m: "[iban]" if _iban_ok(m.group(0)) else m.group(0), text)

    def card(match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group(0))
        return "[card]" if 13 <= len(digits) <= 19 and _luhn_ok(digits) else match.group(0)

    text = _CARD.sub(card, text)
    text = _PHONE.sub("[phone]", text)
    return _LOCAL_PHONE.sub("[phone]", text)
