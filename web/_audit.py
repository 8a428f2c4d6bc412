"""The audit log, for the web's handlers: :func:`db.audit.audit`, which the IVR, compliance and
the trunks write with too."""

from __future__ import annotations

from db.audit import audit

__all__ = ["audit"]
