"""Settings of the compliance gate (one frozen dataclass; loaded by the composition root)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ComplianceSettings:
    """How the gate talks to the ledger.

    - ``margin_s``: default time a dial needs before its window closes (ring timeout + AMD +
      queue wait); a campaign may pass its own.
    - ``timeout_s``: deadline for one check-and-reserve round trip to PostgreSQL; past it the
      decision is a denial (``COMPLIANCE_UNAVAILABLE``).
    - ``pack_dir``: where rule packs live (``None``: the packs shipped in ``compliance/packs``).
    """

    margin_s: int = 90
    timeout_s: float = 5.0
    pack_dir: Path | None = None
