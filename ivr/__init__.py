"""Self-service IVR over FastAGI: flow engine (pure), flows, arrangements, payments."""

from ivr._actions import ACTIONS, Call, CollectionsActions
from ivr._exceptions import (
    CardError,
    FlowError,
    GatewayUnavailable,
    IvrError,
    PlanError,
    PolicyError,
)
from ivr._flow import Catalog, Flow, load_flow, load_flows, parse_flow
from ivr._machine import FlowMachine
from ivr._runtime import AgiChannel, CallChannel, CallResult, IvrService
from ivr._settings import IvrSettings, build_ivr

__all__ = [
    "ACTIONS",
    "AgiChannel",
    "Call",
    "CallChannel",
    "CallResult",
    "CardError",
    "Catalog",
    "CollectionsActions",
    "Flow",
    "FlowError",
    "FlowMachine",
    "GatewayUnavailable",
    "IvrError",
    "IvrService",
    "IvrSettings",
    "PlanError",
    "PolicyError",
    "build_ivr",
    "load_flow",
    "load_flows",
    "parse_flow",
]
