"""The documented test vectors of ../shared/reference/platform-apis.md, plus round trips and tamper checks."""

from __future__ import annotations

import pytest

from liveboard.platforms import signing as s

WX_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


def test_wechat_url_check_vector() -> None:
    assert s.wechat_url_signature("AAAAA", "1714036504", "1514711492") == ("f464b24fc39322e44b38aa78f5edd27bd1441696")


def test_douyin_live_push_vector() -> None:
    headers = {
        "x-nonce-str": "123456",
        "x-timestamp": "456789",
        "x-roomid": "268",
        "x-msg-type": "user_group",
    }
    assert s.douyin_live_signature(headers, "abc123你好".encode(), "123abc") == "GAkalGmhzqlUGQO/TgvMug=="


def test_douyin_live_push_ignores_signature_and_content_type_and_header_case() -> None:
    headers = {
        "X-Nonce-Str": "123456",
        "x-timestamp": "456789",
        "X-RoomId": "268",
        "x-msg-type": "user_group",
        "x-signature": "whatever",
        "Content-Type": "application/json",
    }
    assert s.douyin_live_signature(headers, "abc123你好".encode(), "123abc") == "GAkalGmhzqlUGQO/TgvMug=="


def test_wechat_aes_official_sample_vector() -> None:
    # The fixed-random vector of WeChat's own WXBizMsgCrypt sample (Java testAesEncrypt).
    enc = s.wechat_encrypt(WX_KEY, "wxb11529c136998cb6", "我是中文abcd123".encode(), b"aaaabbbbccccdddd")
    assert enc == "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg=="
    assert s.wechat_decrypt(WX_KEY, enc, "wxb11529c136998cb6") == "我是中文abcd123".encode()


@pytest.mark.parametrize("size", [0, 1, 11, 12, 43, 44, 1000])
def test_wechat_aes_round_trip_pads_to_32(size: int) -> None:
    msg = bytes(range(256)) * 4
    msg = msg[:size]
    enc = s.wechat_encrypt(WX_KEY, "wxapp", msg)
    import base64

    assert len(base64.b64decode(enc)) % 32 == 0
    assert s.wechat_decrypt(WX_KEY, enc, "wxapp") == msg


def test_wechat_aes_rejects_wrong_appid_and_wrong_key() -> None:
    enc = s.wechat_encrypt(WX_KEY, "wxapp", b'{"x":1}')
    with pytest.raises(s.WeChatCryptoError):
        s.wechat_decrypt(WX_KEY, enc, "other")
    other_key = "B" * 43
    with pytest.raises(s.WeChatCryptoError):
        s.wechat_decrypt(other_key, enc, "wxapp")
    with pytest.raises(s.WeChatCryptoError):
        s.wechat_decrypt(WX_KEY, "not base64!!", "wxapp")


def test_wechat_msg_signature_covers_the_ciphertext() -> None:
    a = s.wechat_msg_signature("tok", "1", "2", "ENC")
    assert a != s.wechat_msg_signature("tok", "1", "2", "END")
    assert a == s.wechat_msg_signature("tok", "1", "2", "ENC")


def test_douyin_webhook_signature_is_sha1_of_secret_then_body() -> None:
    import hashlib

    body = b'{"event":"verify_webhook"}'
    assert s.douyin_webhook_signature("sec", body) == hashlib.sha1(b"sec" + body).hexdigest()
    assert s.douyin_webhook_signature("sec", body + b" ") != s.douyin_webhook_signature("sec", body)


def test_kuaishou_kwaisign_is_md5_of_body_then_secret() -> None:
    import hashlib

    body = b'{"taskId":"1"}'
    assert s.kuaishou_kwaisign(body, "sec") == hashlib.md5(body + b"sec").hexdigest()


def test_kuaishou_api_sign_sorts_keys_and_appends_sign_secret() -> None:
    import hashlib

    params = {"method": "open.x", "appkey": "k", "version": "1", "sign": "ignored"}
    want = hashlib.md5(b"appkey=k&method=open.x&version=1&signSecret=ss").hexdigest()
    assert s.kuaishou_api_sign(params, "ss") == want
    assert s.kuaishou_api_sign(params, "ss", "HMAC_SHA256") != want
    with pytest.raises(ValueError):
        s.kuaishou_api_sign(params, "ss", "SHA1")


def test_safe_equal() -> None:
    assert s.safe_equal("abc", b"abc")
    assert not s.safe_equal("abc", "abd")
    assert not s.safe_equal(None, "abc")


# --- Kuaishou 电商 message encryption (MsgSecret) and 抖店 signing ---------------------------------------

KS_SECRET = "MTIzNDU2Nzg5MGFiY2RlZg=="  # base64 of the 16 bytes "1234567890abcdef"


def test_kuaishou_msg_encryption_is_aes128_cbc_zero_iv_pkcs7() -> None:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    enc = s.kuaishou_msg_encrypt(KS_SECRET, b'{"event":"x"}')
    import base64

    raw = base64.b64decode(enc)
    # decrypted independently with the scheme's parameters: key = b64decode(secret), IV = 16 zero bytes
    dec = Cipher(algorithms.AES(b"1234567890abcdef"), modes.CBC(bytes(16))).decryptor()
    plain = dec.update(raw) + dec.finalize()
    assert plain == b'{"event":"x"}' + bytes([3]) * 3
    assert s.kuaishou_msg_decrypt(KS_SECRET, enc) == b'{"event":"x"}'


def test_kuaishou_msg_decrypt_refuses_wrong_key_and_garbage() -> None:
    enc = s.kuaishou_msg_encrypt(KS_SECRET, b'{"event":"kwaishop_order_paySuccess","info":"{}"}')
    other = "ZmVkY2JhMDk4NzY1NDMyMQ=="
    with pytest.raises(s.KuaishouCryptoError):
        # a wrong key yields garbage whose padding does not check (or, rarely, does: then JSON fails later)
        out = s.kuaishou_msg_decrypt(other, enc)
        assert out.startswith(b"{")
        raise s.KuaishouCryptoError("decrypted to garbage")
    with pytest.raises(s.KuaishouCryptoError, match="base64"):
        s.kuaishou_msg_decrypt(KS_SECRET, "not base64 !!")
    with pytest.raises(s.KuaishouCryptoError, match="multiple of 16"):
        s.kuaishou_msg_decrypt(KS_SECRET, "QUJD")


def test_doudian_sign_md5_and_hmac_over_sorted_param_json() -> None:
    pj = s.doudian_param_json({"size": 10, "page": 0, "create_time_start": 1})
    assert pj == '{"create_time_start":1,"page":0,"size":10}'
    text = "secretapp_keykeymethodorder.searchListparam_json" + pj + "timestamp1700000000v2secret"
    import hashlib
    import hmac

    want = hashlib.md5(text.encode()).hexdigest()
    assert s.doudian_sign("key", "secret", "order.searchList", pj, "1700000000") == want
    assert (
        s.doudian_sign("key", "secret", "order.searchList", pj, "1700000000", "hmac-sha256")
        == hmac.new(b"secret", text.encode(), hashlib.sha256).hexdigest()
    )
