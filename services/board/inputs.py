"""Reading request input: every problem becomes a 400 that names the field (``field: message``)."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
from aiohttp import web

from liveboard.contracts.primitives import DECIMAL_PATTERN, ID_MAX_LENGTH, ID_PATTERN, SIGNED_DECIMAL_PATTERN
from services.board.errors import ApiError, bad_request

_ID = re.compile(ID_PATTERN)
_DEC = re.compile(DECIMAL_PATTERN)
_SDEC = re.compile(SIGNED_DECIMAL_PATTERN)
_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{1,63}$")
MAX_BODY = 64 * 1024


async def json_body(request: web.Request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise ApiError(
            415, "unsupported_media_type", "body: send JSON with Content-Type: application/json", field="body"
        )
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise ApiError(413, "too_large", f"body: at most {MAX_BODY} bytes", field="body")
    raw = await request.content.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise ApiError(413, "too_large", f"body: at most {MAX_BODY} bytes", field="body")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise bad_request("body", f"not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise bad_request("body", "must be a JSON object")
    return doc


def ident(value: Any, field: str, *, required: bool = True) -> str | None:
    if value is None or value == "":
        if required:
            raise bad_request(field, "is required")
        return None
    if not isinstance(value, str) or not _ID.match(value) or len(value) > ID_MAX_LENGTH:
        raise bad_request(field, f"must be an identifier (letters, digits, . _ -; at most {ID_MAX_LENGTH})")
    return value


def req_ident(value: Any, field: str) -> str:
    out = ident(value, field)
    assert out is not None
    return out


def username(value: Any, field: str = "username") -> str:
    if not isinstance(value, str) or not _USERNAME.match(value):
        raise bad_request(field, "must be 2–64 letters, digits or . _ @ -, starting with a letter or digit")
    return value


def text(value: Any, field: str, *, max_len: int, required: bool = True) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise bad_request(field, "is required")
        return None
    if not isinstance(value, str):
        raise bad_request(field, "must be text")
    value = value.strip()
    if len(value) > max_len:
        raise bad_request(field, f"at most {max_len} characters")
    return value


def decimal_points(value: Any, field: str, maximum: Decimal) -> str:
    """Judges' points: a decimal string (or a JSON number written with ≤ 4 decimals), 0 ≤ x ≤ maximum."""
    if isinstance(value, bool) or value is None:
        raise bad_request(field, "is required (a number such as 8.5)")
    if isinstance(value, int):
        value = str(value)
    elif isinstance(value, float):
        value = repr(value)
    if not isinstance(value, str) or not _DEC.match(value):
        raise bad_request(field, 'must be a number ≥ 0 with at most 4 decimal places, e.g. "8.5"')
    if Decimal(value) > maximum:
        raise bad_request(field, f"must be at most {maximum} (this criterion's maximum), got {value}")
    return value


def signed_decimal(value: Any, field: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not _SDEC.match(value):
        raise bad_request(field, 'must be a decimal such as "-2.5" (at most 4 decimal places)')
    try:
        Decimal(value)
    except InvalidOperation:
        raise bad_request(field, "must be a decimal") from None
    return value


def query_int(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        v = int(raw)
    except ValueError:
        raise bad_request(name, f"must be an integer (got {raw!r})") from None
    if not lo <= v <= hi:
        raise bad_request(name, f"must be between {lo} and {hi} (got {v})")
    return v


def query_ident(request: web.Request, name: str, *, required: bool = True) -> str | None:
    return ident(request.query.get(name), name, required=required)
