"""Puente: predictive dialer and IVR server for humane, compliant debt collection on Asterisk."""

__version__ = "0.1.0"
