"""IVR settings (the ``[ivr]`` section) and the one function that builds the service from them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import asyncpg

from compliance import ComplianceGate
from ivr._actions import ACTIONS, CollectionsActions
from ivr._flow import Catalog, load_flows
from ivr._runtime import IvrService
from ivr.payments import SandboxGateway

GATEWAYS = ("sandbox",)


@dataclass(frozen=True)
class IvrSettings:
    enabled: bool = True
    flow_dir: str = ""  # "" = the flows shipped in ivr/flows
    prompts: str = ""  # "" = ivr/prompts.yaml
    action_timeout_s: float = 30.0  # one action (a database write, a card charge)
    gateway: str = "sandbox"  # the payment gateway (only the sandbox ships)
    gateway_timeout_s: float = 20.0

    def validate(self) -> None:
        if self.gateway not in GATEWAYS:
            raise ValueError(f"gateway {self.gateway!r}: one of {GATEWAYS}")
        if not 1 <= self.action_timeout_s <= 120 or not 1 <= self.gateway_timeout_s <= 60:
            raise ValueError("action_timeout_s must be in [1, 120], gateway_timeout_s in [1, 60]")
        if self.gateway_timeout_s >= self.action_timeout_s:
            raise ValueError("gateway_timeout_s must be under action_timeout_s")


def build_ivr(
    pool: asyncpg.Pool,
    settings: IvrSettings,
    *,
    gate: ComplianceGate | None,
    node: str,
    clock: Callable[[], datetime] | None = None,
) -> IvrService:
    """Load and validate the catalog and every flow (a bad file stops the start, named).
    ``clock``: "now" for the calls (None: the real time)."""
    catalog = Catalog.load(Path(settings.prompts) if settings.prompts else None)
    flows = load_flows(Path(settings.flow_dir) if settings.flow_dir else None, catalog, ACTIONS)
    actions = CollectionsActions(
        pool, gateway=SandboxGateway(), gate=gate, gateway_timeout_s=settings.gateway_timeout_s
    )
    return IvrService(
        pool, flows, catalog, actions, node=node, action_timeout_s=settings.action_timeout_s,
        clock=clock,
    )  # fmt: skip
