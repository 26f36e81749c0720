"""Typed keys of what the middlewares store on a request."""

from __future__ import annotations

from aiohttp import web

from services.board.auth import Session, User

REQUEST_ID = web.RequestKey("request_id", str)
USER = web.RequestKey("user", User)
SESSION = web.RequestKey("session", Session)
