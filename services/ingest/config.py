"""Collector settings and the platform configuration file.

Tunables come from ``LIVEBOARD_INGEST_*`` environment variables (or the ``.env`` file ``Settings`` reads).
Platform credentials (app ids, secrets, refresh tokens, push tokens, AES keys) and API base URLs come from
the platform file named by ``LIVEBOARD_INGEST_PLATFORMS_FILE`` (or ``liveboard ingest --platforms-file``):
YAML or JSON, format in docs/ingest.md. Secrets are ``SecretStr`` so they never reach a repr or a log line.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from liveboard.errors import ConfigError


class IngestSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LIVEBOARD_INGEST_",
        env_file=os.environ.get("LIVEBOARD_ENV_FILE", ".env"),
        extra="ignore",
    )

    platforms_file: Path | None = None
    collector_id: str = Field("ingest-1", pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")
    poll_interval_s: float = Field(10.0, gt=0, description="live-room stats, per room")
    discover_interval_s: float = Field(60.0, gt=0, description="room lists, per account")
    video_interval_s: float = Field(300.0, gt=0, description="short-video stats, per account")
    reconcile_interval_s: float = Field(
        120.0, gt=0, description="order lists (WeChat orders, 抖店 orders and after-sales), per account"
    )
    final_after_s: float = Field(
        86_400.0,
        ge=0,
        description="the platforms' revision time: this long after a stream ends, a room's figures are final "
        "once two consecutive polls agree",
    )
    final_corrections_s: float = Field(
        86_400.0,
        ge=0,
        description="after final_after_s, ended rooms are still looked at this long for late corrections "
        "(polls back off from finished_poll_interval_s to an hour while nothing changes)",
    )
    finished_poll_interval_s: float = Field(300.0, gt=0, description="poll cadence of ended rooms")
    request_timeout_s: float = Field(5.0, gt=0)
    max_concurrency: int = Field(64, ge=1, description="in-flight API calls per platform")
    backoff_base_s: float = Field(1.0, gt=0)
    backoff_cap_s: float = Field(120.0, gt=0)
    dedup_ttl_s: float = Field(4 * 3600.0, gt=0, description="push ids remembered (WeChat retries 3.6 h)")
    dedup_max: int = Field(1_000_000, ge=1000)
    heartbeat_interval_s: float = Field(30.0, gt=0)
    pending_room_ttl_s: float = Field(300.0, gt=0, description="hold pushes for not-yet-polled rooms")
    push_buffer_max: int = Field(100_000, ge=100, description="background push work queued at most")
    linger_ms: int = Field(20, ge=0)
    compression: str = Field(
        "none",
        pattern="^(none|gzip)$",
        description="producer compression: gzip costs ~20 µs of CPU per 600-byte record; use it when the "
        "network to the cluster, not the collector's CPU, is the bottleneck",
    )
    webhook_workers: int = Field(
        2,
        ge=0,
        le=64,
        description="webhook worker processes sharing the ingest port (SO_REUSEPORT) beside the polling "
        "process; 0 = one process does both (pushes then queue behind polling)",
    )
    state_dir: Path | None = Field(
        None,
        description="directory of the state the processes share (push ids seen, Douyin rooms, held "
        "pushes, metrics files); default: a fresh temporary directory per run",
    )
    # -- push authentication (services/ingest/auth.py): each max age + the skew must fit in dedup_ttl_s, so
    # a replay inside its window is a duplicate and one outside is stale
    push_max_bytes: int = Field(
        1024 * 1024, ge=1024, le=4 * 1024 * 1024, description="largest push body read; larger ones are refused"
    )
    push_clock_skew_s: float = Field(
        300.0, ge=0, description="tolerated difference between a platform's clock and the collector's"
    )
    douyin_push_max_age_s: float = Field(
        1800.0, gt=0, description="age of a Douyin push's signed x-timestamp (or content.create_time) accepted"
    )
    kuaishou_push_max_age_s: float = Field(
        3600.0, gt=0, description="age of a Kuaishou push's signed createTime accepted (retries: 3 × 5 s)"
    )
    wechat_push_max_age_s: float = Field(
        13_800.0, gt=0, description="age of a WeChat push's signed timestamp accepted (retries span 3.6 h)"
    )
    # QPS budgets the scheduler spreads rooms within (the platform's quota, less a safety margin)
    wechat_qps: float = Field(150.0, gt=0)
    douyin_qps: float = Field(100.0, gt=0)
    kuaishou_qps: float = Field(100.0, gt=0)
    kuaishou_msg_secret: SecretStr | None = Field(
        None,
        description="the Kuaishou app's MsgSecret (base64) that decrypts its 电商 pushes; overrides the "
        "platforms file's kuaishou.msg_secret. Never logged",
    )

    @model_validator(mode="after")
    def _windows_fit_the_dedup_memory(self) -> IngestSettings:
        for name in ("douyin_push_max_age_s", "kuaishou_push_max_age_s", "wechat_push_max_age_s"):
            if getattr(self, name) + self.push_clock_skew_s > self.dedup_ttl_s:
                raise ValueError(
                    f"{name} + push_clock_skew_s must not exceed dedup_ttl_s ({self.dedup_ttl_s:g} s): a replay "
                    "inside the freshness window would no longer be recognised as a duplicate"
                )
        return self

    def push_max_age_s(self, platform: str) -> float:
        return {"wechat_channels": self.wechat_push_max_age_s, "douyin": self.douyin_push_max_age_s}.get(
            platform, self.kuaishou_push_max_age_s
        )

    @property
    def registry_tail_ms(self) -> int:
        """How long after its last round a contest's accounts stay collected: until the platforms' revision
        and the late corrections after it can no longer come (at least a day)."""
        return int((self.final_after_s + max(86_400.0, self.final_corrections_s)) * 1000)

    def qps(self, platform: str) -> float:
        return {"wechat_channels": self.wechat_qps, "douyin": self.douyin_qps}.get(platform, self.kuaishou_qps)


class _Cfg(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WeChatPush(_Cfg):
    token: SecretStr
    encoding_aes_key: SecretStr
    appid: str


class WeChatAccount(_Cfg):
    appid: str
    secret: SecretStr
    user_name: str = Field(description="the shop's original id (gh_…), the ToUserName of its pushes")


class WeChatConfig(_Cfg):
    api_base: str = "https://api.weixin.qq.com"
    push: WeChatPush
    accounts: dict[str, WeChatAccount] = {}


class DouyinAccount(_Cfg):
    open_id: str
    refresh_token: SecretStr
    shop_id: str | None = Field(None, description="the 抖店 shop the account sells through (orders, after-sales)")


class DouyinConfig(_Cfg):
    open_base: str = "https://open.douyin.com"
    ads_base: str = "https://api.oceanengine.com"
    client_key: str
    client_secret: SecretStr
    live_push_secret: SecretStr
    ads_app_id: str
    ads_secret: SecretStr
    ads_refresh_token: SecretStr
    advertiser_id: str
    # 抖店 open platform (shop orders and after-sales): a self-use app authorised by the accounts' shops
    shop_base: str = "https://openapi-fxg.jinritemai.com"
    shop_app_key: str | None = None
    shop_app_secret: SecretStr | None = None
    shop_sign_method: str = Field("md5", pattern="^(md5|hmac-sha256)$")
    accounts: dict[str, DouyinAccount] = {}


class KuaishouAccount(_Cfg):
    open_id: str | None = None


class KuaishouConfig(_Cfg):
    api_base: str = "https://openapi.kwaixiaodian.com"
    token_base: str | None = None  # defaults to api_base
    app_key: str
    app_secret: SecretStr
    sign_secret: SecretStr
    sign_method: str = "MD5"
    msg_secret: SecretStr | None = None  # MsgSecret: decrypts the 电商 message pushes (base64, AES key)
    accounts: dict[str, KuaishouAccount] = {}

    @field_validator("msg_secret")
    @classmethod
    def _msg_secret_is_a_key(cls, v: SecretStr | None) -> SecretStr | None:
        return _check_msg_secret(v)


def _check_msg_secret(v: SecretStr | None) -> SecretStr | None:
    """A mis-pasted MsgSecret fails at start-up, not as every push refused; the message never quotes it."""
    if v is None:
        return v
    try:
        key = base64.b64decode(v.get_secret_value(), validate=True)
    except (ValueError, TypeError):
        key = b""
    if len(key) not in (16, 24, 32):
        raise ValueError("MsgSecret must be the console's base64 text of a 16, 24 or 32-byte AES key")
    return v


class PlatformsConfig(_Cfg):
    wechat_channels: WeChatConfig | None = None
    douyin: DouyinConfig | None = None
    kuaishou: KuaishouConfig | None = None

    def enabled(self) -> list[str]:
        return [p for p in ("wechat_channels", "douyin", "kuaishou") if getattr(self, p) is not None]


def load_platforms(source: Path | dict[str, Any]) -> PlatformsConfig:
    if isinstance(source, dict):
        doc = source
    else:
        try:
            text = source.read_text(encoding="utf-8")
            doc = json.loads(text) if source.suffix == ".json" else yaml.safe_load(text)
        except (OSError, ValueError, yaml.YAMLError) as exc:
            raise ConfigError(f"platforms file {source}: {exc}") from exc
    try:
        return PlatformsConfig.model_validate(doc or {})
    except PydanticValidationError as exc:
        # names the fields only: pydantic's own text quotes the input, secrets included
        raise ConfigError(f"platforms file: {_without_input(exc)}") from exc


def _without_input(exc: PydanticValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}" for e in exc.errors(include_input=False)
    )
