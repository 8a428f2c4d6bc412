"""The simulated Asterisk: AMI, FastAGI and AudioSocket over real TCP (tests, demo, load)."""

from pbx.sim._callees import DEFAULT_MODEL, CalleeModel, CalleeModelError, ModelFile
from pbx.sim._core import SimCore, SimSettings
from pbx.sim._dialplan import load_dialplan
from pbx.sim._server import SimServerSettings, SimulatedAsterisk
from pbx.sim.cli import DEFAULT_DIALPLAN, build

__all__ = [
    "DEFAULT_DIALPLAN",
    "DEFAULT_MODEL",
    "CalleeModel",
    "CalleeModelError",
    "ModelFile",
    "SimCore",
    "SimServerSettings",
    "SimSettings",
    "SimulatedAsterisk",
    "build",
    "load_dialplan",
]
