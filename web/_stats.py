"""Counters of the web server, for its one-line status (Prometheus metrics are elsewhere)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class WebStats:
    requests: int = 0
    client_errors: int = 0  # 4xx
    server_errors: int = 0  # 5xx
    logins: int = 0
    login_failures: int = 0
    login_refused: int = 0  # over the rate limit
    imports_loading: int = 0  # lead uploads loading now (``imports_at_once`` at most)
    imports_refused: int = 0  # uploads refused because that many were loading
