"""The IVR's exception tree: one root, one subclass per kind of mistake."""

from __future__ import annotations


class IvrError(Exception):
    """Root of every IVR error."""


class FlowError(IvrError):
    """A flow file is invalid (the message names the file, the line and what is wrong)."""


class PolicyError(IvrError):
    """A creditor's payment policy is invalid (the message names the field)."""


class PlanError(IvrError):
    """An arrangement the policy does not allow (amount, date, number of months...)."""


class CardError(IvrError):
    """Card data failed a local check (Luhn, expiry, CVV); ``reason`` is a short code."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


class GatewayUnavailable(IvrError):
    """The payment gateway could not take the charge (down, refused to connect, a processing
    error): nothing was charged. A gateway that may have charged but did not answer must not
    raise this: the caller's deadline (``TimeoutError``) makes that payment's outcome unknown."""
