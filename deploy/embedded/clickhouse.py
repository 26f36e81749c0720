"""The embedded ClickHouse: chdb-core 26.9.0 serving HTTP (see deploy/embedded/chserver.py)."""

from __future__ import annotations

import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from deploy.embedded.chserver import KEEPALIVE_TAG

MARKER = "deploy.embedded.chserver"


def command(data_dir: Path, host: str, port: int) -> list[str]:
    return [sys.executable, "-m", MARKER, "--data", str(data_dir), "--host", host, "--port", str(port)]


def query(url: str, sql: str, timeout_s: float = 2.0, post: bool = False) -> str:
    data = sql.encode() if post else None
    target = url if post else f"{url}/?query={urllib.parse.quote(sql)}"
    req = urllib.request.Request(target, data=data, method="POST" if post else "GET")
    with urllib.request.urlopen(req, timeout=timeout_s) as resp:
        return resp.read().decode()


def serving_path(url: str) -> str | None:
    """The data path the server answers with, or None while it does not answer."""
    try:
        return query(url, "SELECT path FROM system.disks WHERE name = 'default'").strip()
    except (urllib.error.URLError, OSError):
        return None


def version(url: str) -> str | None:
    try:
        return query(url, "SELECT version()").strip()
    except (urllib.error.URLError, OSError):
        return None


def stop_keepalive(url: str) -> bool:
    """Kill the keep-alive query; the engine then shuts down cleanly. Must be a POST: GET is read-only."""
    try:
        query(
            url,
            f"KILL QUERY WHERE query LIKE '%{KEEPALIVE_TAG}%' AND query NOT ILIKE 'KILL%' SYNC",
            timeout_s=10.0,
            post=True,
        )
        return True
    except (urllib.error.URLError, OSError):
        return False
