"""Signing and verification schemes of Douyin, Kuaishou and WeChat Channels.

Pure functions, no I/O: the simulator signs with them and the collectors verify with them, so the two can
never drift apart. The schemes and their test vectors are those of ../shared/reference/platform-apis.md;
the vectors are unit tests (tests/simulator/test_signing.py).

Comparisons of a received signature against the expected one go through :func:`safe_equal`
(constant time), because a timing side channel on a webhook signature is a forgery oracle.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import struct
from collections.abc import Mapping

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


def safe_equal(a: str | bytes | None, b: str | bytes | None) -> bool:
    if a is None or b is None:
        return False
    if isinstance(a, str):
        a = a.encode()
    if isinstance(b, str):
        b = b.encode()
    return hmac.compare_digest(a, b)


# --- WeChat (official accounts / Channels shop message push) -------------------------------------------


def wechat_url_signature(token: str, timestamp: str, nonce: str) -> str:
    """URL-check / plain-mode signature: sha1 of the sorted, concatenated strings."""
    return hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()


def wechat_msg_signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    """Secure-mode ``msg_signature``: the encrypted payload joins the sorted list."""
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypt])).encode()).hexdigest()


class WeChatCryptoError(ValueError):
    """The ciphertext does not decrypt to a well-formed WeChat message (wrong key, appid or padding)."""


_WX_BLOCK = 32  # WeChat pads PKCS#7 to 32 bytes, not to the AES block size of 16


def _wx_key(encoding_aes_key: str) -> bytes:
    key = base64.b64decode(encoding_aes_key + "=")
    if len(key) != 32:
        raise WeChatCryptoError("EncodingAESKey must be 43 base64 characters (32 bytes)")
    return key


def wechat_encrypt(encoding_aes_key: str, appid: str, message: bytes, random16: bytes | None = None) -> str:
    """Secure-mode ``Encrypt`` field: base64(AES-256-CBC(random16 + len32be + message + appid))."""
    key = _wx_key(encoding_aes_key)
    rand = random16 if random16 is not None else os.urandom(16)
    if len(rand) != 16:
        raise ValueError("random prefix must be 16 bytes")
    plain = rand + struct.pack(">I", len(message)) + message + appid.encode()
    pad = _WX_BLOCK - len(plain) % _WX_BLOCK
    plain += bytes([pad]) * pad
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(enc.update(plain) + enc.finalize()).decode()


def wechat_decrypt(encoding_aes_key: str, encrypt: str, expect_appid: str | None = None) -> bytes:
    """Inverse of :func:`wechat_encrypt`; checks padding, length and (if given) the trailing appid."""
    key = _wx_key(encoding_aes_key)
    try:
        raw = base64.b64decode(encrypt, validate=True)
    except (ValueError, TypeError) as exc:
        raise WeChatCryptoError("Encrypt is not base64") from exc
    if not raw or len(raw) % 16:
        raise WeChatCryptoError("ciphertext length is not a multiple of 16")
    dec = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    plain = dec.update(raw) + dec.finalize()
    pad = plain[-1]
    if not 1 <= pad <= _WX_BLOCK or plain[-pad:] != bytes([pad]) * pad:
        raise WeChatCryptoError("bad padding")
    plain = plain[:-pad]
    if len(plain) < 20:
        raise WeChatCryptoError("plaintext too short")
    (length,) = struct.unpack(">I", plain[16:20])
    message = plain[20 : 20 + length]
    appid = plain[20 + length :].decode(errors="replace")
    if len(message) != length:
        raise WeChatCryptoError("length prefix exceeds plaintext")
    if expect_appid is not None and appid != expect_appid:
        raise WeChatCryptoError("appid does not match")
    return message


# --- Douyin --------------------------------------------------------------------------------------------


def douyin_webhook_signature(client_secret: str, body: bytes) -> str:
    """``X-Douyin-Signature``: sha1 hex of client_secret followed by the raw body."""
    return hashlib.sha1(client_secret.encode() + body).hexdigest()


DOUYIN_LIVE_UNSIGNED = frozenset({"x-signature", "content-type"})


def douyin_live_signature(headers: Mapping[str, str], body: bytes, secret: str) -> str:
    """Live-room interaction push (直播小玩法): base64(md5(sorted x-headers as k=v&k=v + body + secret)).

    ``headers`` holds the ``x-*`` headers as sent; the signature and content-type are excluded, keys are
    compared lower-cased (HTTP header names are case-insensitive and aiohttp keeps the sender's case).
    """
    items = sorted(
        (k.lower(), v)
        for k, v in headers.items()
        if k.lower().startswith("x-") and k.lower() not in DOUYIN_LIVE_UNSIGNED
    )
    text = "&".join(f"{k}={v}" for k, v in items)
    digest = hashlib.md5(text.encode() + body + secret.encode()).digest()
    return base64.b64encode(digest).decode()


def doudian_sign(
    app_key: str, app_secret: str, method: str, param_json: str, timestamp: str, sign_method: str = "md5"
) -> str:
    """抖店 open API request signature; param_json must already have sorted keys (:func:`doudian_param_json`).

    ``md5``: md5_hex(secret + "app_key"… + "v2" + secret); ``hmac-sha256``: the same text, HMAC-SHA256 keyed
    with the app secret, hex.
    """
    text = f"{app_secret}app_key{app_key}method{method}param_json{param_json}timestamp{timestamp}v2{app_secret}"
    if sign_method == "md5":
        return hashlib.md5(text.encode()).hexdigest()
    if sign_method == "hmac-sha256":
        return hmac.new(app_secret.encode(), text.encode(), hashlib.sha256).hexdigest()
    raise ValueError(f"unknown sign_method {sign_method!r}")


def doudian_param_json(params: Mapping[str, object]) -> str:
    """抖店 ``param_json``: the business parameters as compact JSON with keys sorted (what is signed)."""
    return json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# --- Kuaishou ------------------------------------------------------------------------------------------


def kuaishou_kwaisign(body: bytes, app_secret: str) -> str:
    """Webhook header ``kwaisign``: md5 hex of the raw body followed by the app secret."""
    return hashlib.md5(body + app_secret.encode()).hexdigest()


class KuaishouCryptoError(ValueError):
    """A pushed 电商 message that does not decrypt with the app's MsgSecret (wrong key, padding or text)."""


def _ks_key(msg_secret: str) -> bytes:
    try:
        key = base64.b64decode(msg_secret, validate=True)
    except (ValueError, TypeError) as exc:
        raise KuaishouCryptoError("MsgSecret is not base64") from exc
    if len(key) not in (16, 24, 32):
        raise KuaishouCryptoError("MsgSecret must decode to 16, 24 or 32 bytes")
    return key


_KS_IV = bytes(16)


def kuaishou_msg_encrypt(msg_secret: str, message: bytes) -> str:
    """Pushed 电商 message as Kuaishou's merchant SDK encrypts it: base64(AES-CBC(PKCS#7(message))) with
    key = base64decode(MsgSecret) (16 bytes: AES-128) and an all-zero IV (docs/ingest.md, *Fidelity*)."""
    key = _ks_key(msg_secret)
    pad = 16 - len(message) % 16
    plain = message + bytes([pad]) * pad
    enc = Cipher(algorithms.AES(key), modes.CBC(_KS_IV)).encryptor()
    return base64.b64encode(enc.update(plain) + enc.finalize()).decode()


def kuaishou_msg_decrypt(msg_secret: str, encrypted: str | bytes) -> bytes:
    """Inverse of :func:`kuaishou_msg_encrypt`; checks base64, block length and PKCS#7 padding."""
    key = _ks_key(msg_secret)
    try:
        raw = base64.b64decode(encrypted.strip(), validate=True)
    except (ValueError, TypeError) as exc:
        raise KuaishouCryptoError("message is not base64") from exc
    if not raw or len(raw) % 16:
        raise KuaishouCryptoError("ciphertext length is not a multiple of 16")
    dec = Cipher(algorithms.AES(key), modes.CBC(_KS_IV)).decryptor()
    plain = dec.update(raw) + dec.finalize()
    pad = plain[-1]
    if not 1 <= pad <= 16 or plain[-pad:] != bytes([pad]) * pad:
        raise KuaishouCryptoError("bad padding (wrong MsgSecret?)")
    return plain[:-pad]


def kuaishou_api_sign(params: Mapping[str, str], sign_secret: str, sign_method: str = "MD5") -> str:
    """电商 open-API ``sign``: sorted ``k=v&…`` + ``&signSecret=…``; MD5 → hex, HMAC_SHA256 → base64."""
    text = "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "sign")
    text += f"&signSecret={sign_secret}"
    if sign_method == "MD5":
        return hashlib.md5(text.encode()).hexdigest()
    if sign_method == "HMAC_SHA256":
        mac = hmac.new(sign_secret.encode(), text.encode(), hashlib.sha256).digest()
        return base64.b64encode(mac).decode()
    raise ValueError(f"unknown signMethod {sign_method!r}")
