"""Settings of the compliance gate (one frozen dataclass; loaded by the composition root)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from compliance._core import MAX_MARGIN_S


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

    def validate(self) -> None:
        """Raise :class:`ValueError` naming the bad value (``puente.settings.load`` calls it)."""
        if not 0 <= self.margin_s <= MAX_MARGIN_S:
            raise ValueError(f"margin_s {self.margin_s} must be between 0 and {MAX_MARGIN_S}")
        if not (math.isfinite(self.timeout_s) and 0 < self.timeout_s <= 60):
            raise ValueError(f"timeout_s {self.timeout_s} must be > 0 and <= 60")
        if self.pack_dir is not None:
            shown = repr(str(self.pack_dir)[:200])
            try:  # (a name too long, or a directory we may not read: OSError)
                if not self.pack_dir.is_dir():
                    raise ValueError(f"pack_dir {shown} is not a directory")
                if not any(self.pack_dir.glob("*.yaml")):
                    raise ValueError(f"pack_dir {shown} holds no rule packs (*.yaml)")
            except OSError as e:
                raise ValueError(f"pack_dir {shown}: {e.strerror or e}") from None
