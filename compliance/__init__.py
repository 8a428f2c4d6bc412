"""Compliance: every dial gated by jurisdiction rules, with an atomic, auditable ledger.

- Rule packs (``compliance/packs/*.yaml``) hold each jurisdiction's parameters and citations;
  the code implements rule kinds (calling window, holiday block, frequency cap, cooldown,
  channel lock, consent requirement, cease/DNC).
- :func:`decide` is the pure core: plain data and ``now`` in, a :class:`Decision` out.
- :class:`ComplianceGate` loads history from PostgreSQL, decides and reserves the attempt in one
  transaction under a per-person lock; any failure is a denial (``COMPLIANCE_UNAVAILABLE``).
"""

from compliance._core import decide
from compliance._exceptions import (
    ComplianceError,
    ComplianceUnavailable,
    PackError,
    UnknownAttempt,
)
from compliance._gate import ComplianceGate, DialRequest
from compliance._packs import (
    available_packs,
    default_pack_names,
    load_pack_file,
    load_rules,
    parse_pack,
)
from compliance._rules import Pack, RuleSet
from compliance._settings import ComplianceSettings
from compliance._types import (
    CALL_CHANNELS,
    MAX_YEAR,
    MIN_YEAR,
    OUTCOMES,
    Block,
    Code,
    Consent,
    Contact,
    Decision,
    History,
    LedgerEntry,
    Override,
    PhoneNumber,
    Reason,
)
from compliance._zones import candidate_zones, number_info

__all__ = [
    "CALL_CHANNELS",
    "MAX_YEAR",
    "MIN_YEAR",
    "OUTCOMES",
    "Block",
    "Code",
    "ComplianceError",
    "ComplianceGate",
    "ComplianceSettings",
    "ComplianceUnavailable",
    "Consent",
    "Contact",
    "Decision",
    "DialRequest",
    "History",
    "LedgerEntry",
    "Override",
    "Pack",
    "PackError",
    "PhoneNumber",
    "Reason",
    "RuleSet",
    "UnknownAttempt",
    "available_packs",
    "candidate_zones",
    "decide",
    "default_pack_names",
    "load_pack_file",
    "load_rules",
    "number_info",
    "parse_pack",
]
