"""The platforms file's errors name the field and never quote a secret; a bad MsgSecret fails at load."""

from __future__ import annotations

import pytest

from liveboard.errors import ConfigError
from services.ingest.config import load_platforms

KS = {"app_key": "k", "app_secret": "app-SECRET-1", "sign_secret": "sign-SECRET-2"}
DY = {
    "client_key": "a",
    "client_secret": "client-SECRET-3",
    "ads_app_id": "x",
    "ads_secret": "ads-SECRET-4",
    "ads_refresh_token": "z",
    "advertiser_id": "1",
}


def test_a_msg_secret_that_is_no_aes_key_is_refused_naming_the_field_not_the_value() -> None:
    for bad in ("not base64 TOPSECRET!!", "dG9vc2hvcnQ="):  # not base64; base64 of 8 bytes
        with pytest.raises(ConfigError) as err:
            load_platforms({"kuaishou": {**KS, "msg_secret": bad}})
        assert "kuaishou.msg_secret" in str(err.value) and "AES key" in str(err.value)
        assert bad not in str(err.value)
    cfg = load_platforms({"kuaishou": {**KS, "msg_secret": "ZmVkY2JhMDk4NzY1NDMyMQ=="}})
    assert cfg.kuaishou is not None and cfg.kuaishou.msg_secret is not None


def test_errors_in_a_platforms_file_never_quote_the_secrets_beside_them() -> None:
    doc = {"douyin": {**DY, "shop_sign_method": "sha1", "shop_app_secret": "shop-SECRET-5"}}
    with pytest.raises(ConfigError) as err:
        load_platforms(doc)
    text = str(err.value)
    assert "douyin.live_push_secret" in text and "douyin.shop_sign_method" in text
    assert "SECRET" not in text
