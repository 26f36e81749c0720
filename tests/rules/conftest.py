"""Fixtures for the rules-engine tests: the shipped seed contests, loaded once."""

from __future__ import annotations

import pytest
from field_builders import seed_contest

from liveboard.contracts.contest import Contest


@pytest.fixture(scope="session")
def harbin() -> Contest:
    return seed_contest("harbin-2020")


@pytest.fixture(scope="session")
def shaoyang() -> Contest:
    return seed_contest("shaoyang-2023")


@pytest.fixture(scope="session")
def jiangle() -> Contest:
    return seed_contest("jiangle-2022")


@pytest.fixture(scope="session")
def hubei() -> Contest:
    return seed_contest("hubei-2021")
