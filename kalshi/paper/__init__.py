"""The paper exchange: a Kalshi-compatible venue on 127.0.0.1 (REST, WebSocket, operator API).

Invariant: it speaks Kalshi's current wire contract, so switching paper -> demo -> prod is only a
base URL and a key; its state lives in its own SQLite command log and survives restarts and
kill -9 with no acknowledged write lost.

Import the parts directly: ``kalshi.paper.exchange.PaperExchange``, ``kalshi.paper.app.create_app``,
``kalshi.paper.server.serve_in_thread``.
"""

from __future__ import annotations

__all__: list[str] = []
