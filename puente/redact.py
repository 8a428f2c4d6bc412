"""What may appear in a log line: masked phone numbers, never a full one.

A leaf module (no imports from the rest of Puente) so every package can use it.
"""

from __future__ import annotations

import re

# A number somewhere in a text: 7+ digits in a row, with or without the E.164 "+".
_NUMBER_IN_TEXT = re.compile(r"\+?\d{7,}")


def mask_number(number: str | None) -> str:
    """``+52*******4567``: enough to recognise a number in a log, not to dial it.

    Under 10 characters only the last four show (``***4567``): a 7-digit local number with
    three digits either side of the mask would be shown whole."""
    if not number:
        return "-"
    if len(number) <= 6:
        return "*" * len(number)
    head = 3 if len(number) >= 10 else 0
    return number[:head] + "*" * (len(number) - head - 4) + number[-4:]


def mask_numbers_in(text: str) -> str:
    """``text`` with every run of 7+ digits (a phone or account number) masked."""
    return _NUMBER_IN_TEXT.sub(lambda m: mask_number(m.group()), text)
