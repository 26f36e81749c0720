"""Where the repository's contract files live.

The distribution is installed editable (``pip install -e .``) in development, CI and the container image,
so the contracts are read from the checkout; ``LIVEBOARD_CONTRACTS_DIR`` points elsewhere if needed.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def contracts_dir() -> Path:
    return Path(os.environ.get("LIVEBOARD_CONTRACTS_DIR", REPO_ROOT / "schemas"))


def migrations_dir() -> Path:
    return contracts_dir() / "migrations"


def event_schemas_dir() -> Path:
    return contracts_dir() / "events"


def topic_catalog_path() -> Path:
    return contracts_dir() / "topics.yaml"


def contests_dir() -> Path:
    return REPO_ROOT / "contests"
