"""The simulator's test fixtures: app ids, secrets, push tokens and AES keys, derived from the seed.

These are the only hard-coded credentials in the project, and they are fake. ``platform_config`` renders
them, with the simulators' base URLs, in the file format the collector reads (docs/ingest.md,
"platform configuration"), so ``liveboard simulate --write-config`` hands a collector everything it needs.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from services.simulator.scenario import Scenario


def _derive(seed: int, *parts: str, n: int = 32) -> str:
    return hashlib.sha256(":".join((str(seed), *parts)).encode()).hexdigest()[:n]


def _aes_key(seed: int) -> str:
    raw = hashlib.sha256(f"{seed}:wechat:aes".encode()).digest()
    return base64.b64encode(raw).decode().rstrip("=")  # 43 characters, as WeChat's console shows it


def fixtures(scenario: Scenario) -> dict[str, Any]:
    seed = scenario.config.seed
    out: dict[str, Any] = {
        "wechat_channels": {
            "push": {
                "token": "tok" + _derive(seed, "wx", "push-token", n=16),
                "encoding_aes_key": _aes_key(seed),
                "appid": "wx" + _derive(seed, "wx", "push-appid", n=16),
            },
            "accounts": {},
        },
        "douyin": {
            "client_key": "aw" + _derive(seed, "dy", "client-key", n=16),
            "client_secret": _derive(seed, "dy", "client-secret"),
            "live_push_secret": _derive(seed, "dy", "live-secret"),
            "ads_app_id": str(1_700_000_000_000_000 + int(_derive(seed, "dy", "ads-app", n=12), 16) % 10**15),
            "ads_secret": _derive(seed, "dy", "ads-secret", n=40),
            "ads_refresh_token": _derive(seed, "dy", "ads-refresh", n=40),
            "advertiser_id": str(1_600_000_000_000_000 + int(_derive(seed, "dy", "adv", n=12), 16) % 10**15),
            # 抖店 (shop) self-use app: each contestant's account sells through its own shop
            "shop_app_key": str(7_000_000_000_000_000 + int(_derive(seed, "dy", "shop-app", n=12), 16) % 10**15),
            "shop_app_secret": _derive(seed, "dy", "shop-secret", n=36),
            "accounts": {},
        },
        "kuaishou": {
            "app_key": "ks" + _derive(seed, "ks", "app-key", n=18),
            "app_secret": _derive(seed, "ks", "app-secret", n=22),
            "sign_secret": _derive(seed, "ks", "sign-secret"),
            # MsgSecret of the 电商 message pushes: base64 of a 16-byte AES key, as the console shows it
            "msg_secret": base64.b64encode(hashlib.sha256(f"{seed}:ks:msg".encode()).digest()[:16]).decode(),
            "accounts": {},
        },
    }
    for c in scenario.contestants:
        if c.platform == "wechat_channels":
            out["wechat_channels"]["accounts"][c.account_id] = {
                "appid": "wx" + _derive(seed, "wx", c.account_id, "appid", n=16),
                "secret": _derive(seed, "wx", c.account_id, "secret"),
                "user_name": "gh_" + _derive(seed, "wx", c.account_id, "gh", n=12),
            }
        elif c.platform == "douyin":
            out["douyin"]["accounts"][c.account_id] = {
                "open_id": "_000" + _derive(seed, "dy", c.account_id, "open-id", n=32),
                "refresh_token": "rft." + _derive(seed, "dy", c.account_id, "refresh", n=40),
                "shop_id": str(100_000_000 + int(_derive(seed, "dy", c.account_id, "shop", n=8), 16) % 900_000_000),
            }
        else:
            out["kuaishou"]["accounts"][c.account_id] = {
                "open_id": "f" + _derive(seed, "ks", c.account_id, "open-id", n=31),
            }
    return out


def platform_config(scenario: Scenario, base_urls: dict[str, str]) -> dict[str, Any]:
    """``fixtures`` plus where each simulator listens, in the collector's platform-config format."""
    cfg = fixtures(scenario)
    for platform, url in base_urls.items():
        if platform == "douyin":
            cfg[platform]["open_base"] = url
            cfg[platform]["ads_base"] = url
            cfg[platform]["shop_base"] = url
        else:
            cfg[platform]["api_base"] = url
    return cfg
