"""How a number or a date is written where Puente reads one from text (settings, API parameters,
lead files, detector files): ASCII digits, plainly.

Python's own parsers take more: ``int()`` and ``float()`` read other scripts' digits
(fullwidth or Arabic-Indic), ``1_000`` and spaces around, ``float()`` also ``nan`` and ``inf``,
``int()`` refuses past 4,300 digits with a ``ValueError``; ``date.fromisoformat()`` takes
``19800101`` and week dates. Checked against these patterns (``fullmatch``) first, a value is
read as it was meant or named as wrong.
"""

from __future__ import annotations

import re

#: A whole number of at most 18 digits (it fits a 64-bit integer), with an optional sign.
INTEGER = re.compile(r"[+-]?[0-9]{1,18}")
#: A decimal number, with an optional exponent of at most 3 digits.
NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?")
#: A calendar date, ``YYYY-MM-DD``.
ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
