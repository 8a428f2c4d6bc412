"""What may appear in a log line: masked phone numbers, never a full one.

A leaf module (no imports from the rest of Puente) so every package can use it.
"""

from __future__ import annotations


def mask_number(number: str | None) -> str:
    """``+52*******4567``: enough to recognise a number in a log, not to dial it."""
    if not number:
        return "-"
    if len(number) <= 6:
        return "*" * len(number)
    return number[:3] + "*" * (len(number) - 7) + number[-4:]
