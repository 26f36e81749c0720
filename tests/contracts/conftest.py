"""Fixtures for the contract tests."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from event_samples import sample_events


@pytest.fixture
def samples() -> dict[str, dict[str, Any]]:
    return copy.deepcopy(sample_events())
