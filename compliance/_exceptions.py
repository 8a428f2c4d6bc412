"""The exception tree of :mod:`compliance`.

Every error raised by the compliance package derives from :class:`ComplianceError`. The gate
itself never raises on a check: a failure there is a denial with ``COMPLIANCE_UNAVAILABLE``.
"""

from __future__ import annotations


class ComplianceError(Exception):
    """Root of every error raised by :mod:`compliance`."""


class PackError(ComplianceError):
    """A rule pack is unknown or malformed; the campaign must not start.

    ``file`` is the pack file (or the pack name when there is no file), ``field`` the dotted path
    of the offending value inside it (e.g. ``rules[2].hours.mon[0]``), ``problem`` what is wrong.
    """

    def __init__(self, file: str, field: str, problem: str) -> None:
        self.file = file
        self.field = field
        self.problem = problem
        super().__init__(f"{file}: {field or '<document>'}: {problem}")


class ComplianceUnavailable(ComplianceError):
    """The ledger could not be read or written (database down, timeout, bad schema)."""


class UnknownAttempt(ComplianceError):
    """An outcome names an attempt id the ledger never reserved."""
