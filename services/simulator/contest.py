"""A contest configuration (``contests/*.yaml`` format, liveboard.contracts.contest) for a scenario.

``liveboard simulate --write-contest FILE`` writes it, so ``liveboard ingest --contest FILE`` collects
exactly the simulated contestants' accounts.
"""

from __future__ import annotations

from typing import Any

import yaml

from services.simulator.scenario import MINUTE, Scenario


def contest_doc(scenario: Scenario) -> dict[str, Any]:
    cfg = scenario.config
    return {
        "schema_version": 1,
        "id": cfg.contest_id,
        "name": f"模拟直播带货大赛 (seed {cfg.seed})",
        "notice": "simulated",
        "organiser": "liveboard simulator",
        "platforms": sorted({c.platform for c in scenario.contestants}),
        "groups": [{"id": "all", "name": "全体"}],
        "contestants": [
            {"id": c.contestant_id, "name": c.name, "group": "all", "accounts": {c.platform: c.account_id}}
            for c in scenario.contestants
        ],
        "stages": [
            {
                "id": "final",
                "name": "决赛",
                "rounds": [
                    {
                        "id": "live",
                        "name": "直播",
                        "window": {"start": cfg.start_ms - 60 * MINUTE, "end": scenario.end_ms + MINUTE},
                        "scoring": {
                            "id": "gmv",
                            "name": "成交金额",
                            "kind": "metric",
                            "metric": "gmv_fen",
                            "normalise": {"method": "min_max", "points": 100},
                        },
                    }
                ],
            }
        ],
    }


def contest_yaml(scenario: Scenario) -> str:
    return yaml.safe_dump(contest_doc(scenario), allow_unicode=True, sort_keys=False)
