"""AMI errors."""

from pbx._exceptions import PbxError


class AmiError(PbxError):
    """Root of AMI client errors."""


class NotConnected(AmiError):
    """No logged-in AMI connection right now; the action was not sent."""


class AmiAuthenticationError(AmiError):
    """Asterisk refused the login (wrong user or secret, or not permitted from here)."""


class ActionTimeout(AmiError):
    """No answer within the action's deadline. Asterisk may still have executed it."""


class ActionFateUnknown(AmiError):
    """The connection was lost while the action was in flight: Asterisk may or may not have
    executed it. It is never re-sent; reconcile instead (e.g. with CoreShowChannels)."""
