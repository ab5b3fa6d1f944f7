"""Personal data is redacted from the interaction log before it is written: e-mail addresses,
IBANs, card numbers, Korean resident registration numbers and bank accounts, and phone numbers
(international, Korean mobile and landline, local)."""

from __future__ import annotations

import re

# Internationalised addresses too ("jürgen@bücher.example", "用户@例子.广告").
_EMAIL = re.compile(r"[\w.%+'-]+@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}", re.UNICODE)
# IBAN: country code, check digits, 11-30 more letters or digits, compact or in groups of four.
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}\b")
_CARD = re.compile(r"\b(?:\d[ -]?){13,19}\b")
# International, Korean mobile and landline numbers (010-1234-5678, 02-123-4567, +82 10 ...) and
# others. Before and after a number: not a letter, digit or hyphen of the same token (Korean
# particles, "010-1234-5678이에요", attach to it and do not count).
_PHONE = re.compile(r"(?<![0-9A-Za-z_-])\+?\d[\d\s().-]{7,}\d(?![0-9A-Za-z_-])")
# Local numbers without an area code, written as people write them: 555-0199, 555 0199. (Seven
# digits in a row are as often an order number: those stay.)
_LOCAL_PHONE = re.compile(r"(?<![\w.$-])\d{3}[ -]\d{4}(?![\w%-]|\.\d)")
# Korean resident (and foreigner) registration numbers: birth date YYMMDD, then a digit for the
# century and sex (1-8) and six more. The check digit is not tested: numbers issued since October
# 2020 have none.
_RESIDENT_ID = re.compile(r"(?<![\d-])\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\s?-?\s?[1-8]\d{6}(?![\d-])")
# A Korean bank account: 10-14 digits, bare or in hyphenated groups, named as one ("계좌", "입금",
# a bank's name) just before it. Without such a word a number like this is as often an order number.
_ACCOUNT_WORDS = r"(?:계좌|입금|송금|이체|환불\s*받을|은행|뱅크|국민|신한|우리|하나|농협|기업|카카오|토스|account)"
_KOREAN_ACCOUNT = re.compile(
    _ACCOUNT_WORDS + r"[^\d\n]{0,15}(?<![\d-])(\d{2,6}(?:[ -]\d{2,7}){1,3}|\d{10,14})(?![\d-])", re.I
)
# ISO dates (2026-11-25, 2026.11.25) are not phone numbers.
_DATE = re.compile(r"^(?:19|20)\d{2}[-./](?:0?[1-9]|1[0-2])[-./](?:0?[1-9]|[12]\d|3[01])$")


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
    text = _RESIDENT_ID.sub("[resident-id]", text)

    def account(match: re.Match[str]) -> str:
        number = match.group(1)
        if not 10 <= len(re.sub(r"\D", "", number)) <= 14:
            return match.group(0)
        return match.group(0)[: match.start(1) - match.start(0)] + "[account]"

    text = _KOREAN_ACCOUNT.sub(account, text)
    text = _PHONE.sub(lambda m: m.group(0) if _DATE.match(m.group(0).strip()) else "[phone]", text)
    return _LOCAL_PHONE.sub("[phone]", text)
