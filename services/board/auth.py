"""Who may do what: hashed credentials, signed session cookies, login throttling and role checks.

- Passwords are stored as ``scrypt$N$r$p$salt$hash`` (stdlib ``hashlib.scrypt``, 16-byte random salt) and
  checked in a worker thread (scrypt is deliberately slow: ~50 ms, 16 MiB).
- A session is a cookie ``lb_session`` = ``payload.signature``: base64url JSON ``{u, r, v, sid, exp}``
  signed with HMAC-SHA256 under the session key; HttpOnly, SameSite=Strict, Secure when configured. It
  carries the credential version it was issued under, so re-issuing or disabling a credential ends it.
- Failed logins are counted per (IP, username) and per IP in a sliding window; over the limit a login is
  refused with 429 before the password is even checked. The counters are per process; with several
  worker processes (or replicas) the failures are also counted from the audit log (``AuditThrottle``), so
  spreading attempts over the workers does not multiply the allowance.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from aiohttp import web
from clickhouse_connect.driver.asyncclient import AsyncClient

from services.board.clock import stamp_ms
from services.board.errors import ApiError

Role = Literal["judge", "operator"]
ROLES: tuple[Role, ...] = ("judge", "operator")
SESSION_COOKIE = "lb_session"
PRE_COOKIE = "lb_pre"  # the anonymous id a login form's CSRF token is bound to

_SCRYPT_N, _SCRYPT_R, _SCRYPT_P, _DKLEN = 2**14, 8, 1, 32
MIN_PASSWORD_LENGTH = 10


# ------------------------------------------------------------------------------------------ passwords


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=_DKLEN)
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        want = _unb64(digest)
        got = hashlib.scrypt(
            password.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p), dklen=len(want), maxmem=64 << 20
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


def check_password_policy(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    if password.strip() != password:
        raise ValueError("the password must not start or end with whitespace")


def generate_password() -> str:
    # 16 characters from the URL-safe alphabet: ~96 bits, easy to type from a printed slip.
    return secrets.token_urlsafe(12)


def _b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def _unb64(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


# -------------------------------------------------------------------------------------------- users


@dataclass(frozen=True, slots=True)
class User:
    username: str
    role: str
    contest_id: str = ""
    judge_id: str = ""
    groups: tuple[str, ...] = ()
    display_name: str = ""
    password_hash: str = ""
    disabled: bool = False
    version: int = 0

    def public(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "role": self.role,
            "contest_id": self.contest_id or None,
            "judge_id": self.judge_id or None,
            "groups": list(self.groups),
            "display_name": self.display_name,
            "disabled": self.disabled,
            "version": self.version,
        }


_USER_COLUMNS = "username, role, contest_id, judge_id, groups, display_name, password_hash, disabled, version"


class UserStore:
    """Credentials in ClickHouse (``board_users``), newest version per username, cached briefly."""

    CACHE_S = 2.0

    def __init__(self, client: AsyncClient, max_entries: int = 10_000) -> None:
        self.client = client
        self.max_entries = max_entries
        self._cache: dict[str, tuple[float, User | None]] = {}

    def _keep(self, username: str, entry: tuple[float, User | None]) -> None:
        # Bounded: logins with random usernames must not grow the cache for ever. Oldest entries go first
        # (dicts keep insertion order; a re-put moves the name to the end).
        self._cache.pop(username, None)
        self._cache[username] = entry
        while len(self._cache) > self.max_entries:
            del self._cache[next(iter(self._cache))]

    async def get(self, username: str, *, fresh: bool = False) -> User | None:
        hit = self._cache.get(username)
        now = time.monotonic()
        if hit is not None and not fresh and now - hit[0] < self.CACHE_S:
            return hit[1]
        res = await self.client.query(
            f"SELECT {_USER_COLUMNS} FROM board_users FINAL WHERE username = {{u:String}}",
            parameters={"u": username},
        )
        user = _row_user(res.result_rows[0]) if res.result_rows else None
        self._keep(username, (now, user))
        return user

    async def list(self) -> list[User]:
        res = await self.client.query(f"SELECT {_USER_COLUMNS} FROM board_users FINAL ORDER BY role, username")
        return [_row_user(r) for r in res.result_rows]

    async def any_operator(self) -> bool:
        res = await self.client.query("SELECT count() FROM board_users FINAL WHERE role = 'operator' AND disabled = 0")
        return bool(res.result_rows[0][0])

    async def put(self, user: User, *, changed_by: str) -> User:
        now = int(time.time() * 1000)
        # Versions are the change time in ms, strictly increasing, and never the same in two board workers
        # (clock.py): a tie would let ClickHouse keep either of two changes.
        version = stamp_ms(user.version)
        stored = User(
            user.username,
            user.role,
            user.contest_id,
            user.judge_id,
            tuple(user.groups),
            user.display_name,
            user.password_hash,
            user.disabled,
            version,
        )
        await self.client.insert(
            "board_users",
            [
                [
                    stored.username,
                    stored.role,
                    stored.contest_id,
                    stored.judge_id,
                    list(stored.groups),
                    stored.display_name,
                    stored.password_hash,
                    int(stored.disabled),
                    stored.version,
                    changed_by,
                    now,
                ]
            ],
            column_names=[
                "username",
                "role",
                "contest_id",
                "judge_id",
                "groups",
                "display_name",
                "password_hash",
                "disabled",
                "version",
                "changed_by",
                "changed_at",
            ],
            settings={"async_insert": 0},
        )
        self._keep(stored.username, (time.monotonic(), stored))
        return stored


def _row_user(r: tuple[Any, ...]) -> User:
    return User(r[0], r[1], r[2], r[3], tuple(r[4]), r[5], r[6], bool(r[7]), int(r[8]))


# ----------------------------------------------------------------------------------------- sessions


@dataclass(frozen=True, slots=True)
class Session:
    username: str
    role: str
    version: int
    sid: str
    exp_ms: int


class SessionSigner:
    def __init__(self, key: bytes, ttl_s: int) -> None:
        self.key = key
        self.ttl_s = ttl_s

    def _sign(self, purpose: bytes, data: bytes) -> str:
        return _b64(hmac.new(self.key, purpose + b"\x1f" + data, hashlib.sha256).digest())

    def issue(self, user: User, now_ms: int | None = None) -> tuple[str, Session]:
        now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
        s = Session(user.username, user.role, user.version, secrets.token_urlsafe(16), now_ms + self.ttl_s * 1000)
        payload = _b64(orjson.dumps({"u": s.username, "r": s.role, "v": s.version, "sid": s.sid, "exp": s.exp_ms}))
        return f"{payload}.{self._sign(b'session', payload.encode())}", s

    def verify(self, token: str, now_ms: int | None = None) -> Session | None:
        payload, _, sig = token.partition(".")
        if not payload or not sig or not hmac.compare_digest(sig, self._sign(b"session", payload.encode())):
            return None
        try:
            d = orjson.loads(_unb64(payload))
            s = Session(str(d["u"]), str(d["r"]), int(d["v"]), str(d["sid"]), int(d["exp"]))
        except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
            return None
        now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
        return s if s.exp_ms > now_ms else None

    def csrf_token(self, sid: str) -> str:
        """The CSRF token of a session (or of a login form's anonymous id): unguessable without the key."""
        return self._sign(b"csrf", sid.encode())[:32]

    def check_csrf(self, sid: str, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(token or "", self.csrf_token(sid))


# ---------------------------------------------------------------------------------------- throttling


@dataclass
class LoginThrottle:
    """Failed logins per (IP, username) and per IP in a sliding window.

    An attempt is *reserved* (:meth:`reserve`) before the slow password check and counted as a failure
    from that moment: 40 concurrent attempts cannot all pass a check that only learns of their failures
    50 ms later. A success takes its reservation back (:meth:`succeeded`), a throttled or broken attempt
    releases it (:meth:`release`). Memory is bounded: expired entries are pruned, and past ``max_keys``
    addresses the oldest are dropped (never everything at once, which would reset the limits).
    """

    max_failures: int
    max_failures_per_ip: int
    window_s: float
    max_keys: int = 100_000
    _by_user: dict[tuple[str, str], deque[float]] = field(default_factory=dict)
    _by_ip: dict[str, deque[float]] = field(default_factory=dict)
    _pruned_at: float = 0.0

    def _recent(self, q: deque[float] | None, now: float) -> deque[float] | None:
        if q is None:
            return None
        while q and q[0] <= now - self.window_s:
            q.popleft()
        return q

    def retry_after(self, ip: str, username: str, now: float | None = None) -> float:
        """Seconds until a login for (ip, username) may be tried again; 0 when it may now."""
        now = time.monotonic() if now is None else now
        waits = []
        q = self._recent(self._by_user.get((ip, username)), now)
        if q is not None and len(q) >= self.max_failures:
            waits.append(q[len(q) - self.max_failures] + self.window_s - now)
        q = self._recent(self._by_ip.get(ip), now)
        if q is not None and len(q) >= self.max_failures_per_ip:
            waits.append(q[len(q) - self.max_failures_per_ip] + self.window_s - now)
        return max(waits, default=0.0)

    def reserve(self, ip: str, username: str, now: float | None = None) -> tuple[float, float]:
        """Check and count an attempt in one step (no await between): ``(wait, stamp)``. ``wait`` > 0: refuse
        (nothing counted); else the attempt counts as failed until :meth:`succeeded` / :meth:`release`."""
        now = time.monotonic() if now is None else now
        wait = self.retry_after(ip, username, now)
        if wait > 0:
            return wait, 0.0
        self.failed(ip, username, now)
        return 0.0, now

    def failed(self, ip: str, username: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._by_user.setdefault((ip, username), deque()).append(now)
        self._by_ip.setdefault(ip, deque()).append(now)
        if len(self._by_ip) > self.max_keys or len(self._by_user) > 2 * self.max_keys:
            self._prune(now)

    def release(self, ip: str, username: str, stamp: float) -> None:
        """Take back a reserved attempt that was not a failed password check."""
        for q in (self._by_user.get((ip, username)), self._by_ip.get(ip)):
            if q is not None:
                with contextlib.suppress(ValueError):
                    q.remove(stamp)

    def succeeded(self, ip: str, username: str, stamp: float | None = None) -> None:
        self._by_user.pop((ip, username), None)
        if stamp is not None:
            self.release(ip, username, stamp)

    def _prune(self, now: float) -> None:
        for d in (self._by_user, self._by_ip):
            for k in [k for k, q in d.items() if not self._recent(q, now)]:
                del d[k]
        # still too many live keys (a spray of addresses): drop those whose newest attempt is oldest
        for d, cap in ((self._by_ip, self.max_keys), (self._by_user, 2 * self.max_keys)):
            if len(d) > cap:
                for k in sorted(d, key=lambda k: d[k][-1])[: len(d) - cap]:
                    del d[k]

    def size(self) -> int:
        return len(self._by_ip) + len(self._by_user)


class AuditThrottle:
    """The login limits counted over every worker: from the failed and successful logins in ``board_audit``.

    Every login attempt is audited synchronously (outcome ``failed`` / ``ok`` / ``throttled``) with the same
    client address the throttle uses, before the answer goes out; so the audit rows of the window, replayed
    through a :class:`LoginThrottle`, give what one process would have counted for every attempt made
    through any worker. The table is ordered by time, so reading the window is a short range read, and a
    login already costs a ~50 ms scrypt.
    """

    def __init__(self, client: AsyncClient, limits: LoginThrottle) -> None:
        self.client = client
        self.limits = limits

    async def retry_after(self, ip: str, username: str) -> float:
        now_ms = int(time.time() * 1000)
        res = await self.client.query(
            "SELECT at_ms, actor, outcome FROM board_audit WHERE action = 'login' AND at_ms >= {s:UInt64} "
            "AND remote_addr = {ip:String} AND outcome IN ('failed', 'ok') ORDER BY at_ms, audit_id",
            parameters={"s": now_ms - int(self.limits.window_s * 1000), "ip": ip},
        )
        replay = LoginThrottle(self.limits.max_failures, self.limits.max_failures_per_ip, self.limits.window_s)
        for at_ms, actor, outcome in res.result_rows:
            if outcome == "failed":
                replay.failed(ip, actor, now=at_ms / 1000)
            else:
                replay.succeeded(ip, actor)
        return replay.retry_after(ip, username, now=now_ms / 1000)


_dummy_hash: list[str] = []


def _dummy() -> str:
    # A hash of nothing anyone knows: checking an unknown username costs the same scrypt as a known one,
    # so the response time does not tell which usernames exist.
    if not _dummy_hash:
        _dummy_hash.append(hash_password(secrets.token_urlsafe(24)))
    return _dummy_hash[0]


async def verify_in_thread(password: str, stored: str | None) -> bool:
    ok = await asyncio.to_thread(verify_password, password, stored or _dummy())
    return ok and stored is not None


# ---------------------------------------------------------------------------------------- role checks

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def requires(*roles: Role) -> Callable[[Handler], Handler]:
    """Mark a handler as needing a session of one of ``roles``; the auth middleware enforces it.

    Unsafe methods also need the session's CSRF token in ``X-CSRF-Token`` (or a form's ``csrf_token``).
    """

    def mark(handler: Handler) -> Handler:
        handler.__lb_roles__ = frozenset(roles)  # type: ignore[attr-defined]
        return handler

    return mark


def public(handler: Handler) -> Handler:
    handler.__lb_roles__ = frozenset()  # type: ignore[attr-defined]
    return handler


def handler_roles(handler: Any) -> frozenset[str] | None:
    return getattr(handler, "__lb_roles__", None)


def unauthorized(message: str = "log in first") -> ApiError:
    return ApiError(401, "unauthenticated", message)


def forbidden(message: str) -> ApiError:
    return ApiError(403, "forbidden", message)


# ---------------------------------------------------------------------------------- revoked sessions


class RevokedSessions:
    """Sessions ended by logging out (``board_revoked_sessions``), refused although their cookie is signed.

    Checked on every authenticated request from memory: the unexpired revoked ids are loaded at start and,
    in every worker and replica, new ones are pulled every ``SYNC_S`` seconds (:meth:`sync`), so a
    logged-out cookie stops working at once in the worker that logged it out and within ``SYNC_S`` in the
    others. Expired ids are dropped (a cookie past its expiry is refused anyway), which bounds the set.
    """

    SYNC_S = 2.0

    def __init__(self, client: AsyncClient) -> None:
        self.client = client
        self._sids: dict[str, int] = {}  # sid -> the session's expiry (UTC ms)
        self._synced_ms = 0

    def is_revoked(self, sid: str) -> bool:
        return sid in self._sids

    def __len__(self) -> int:
        return len(self._sids)

    async def revoke(self, session: Session, *, by: str) -> None:
        now = int(time.time() * 1000)
        await self.client.insert(
            "board_revoked_sessions",
            [[session.sid, session.username, session.exp_ms, now, by]],
            column_names=["sid", "username", "expires_at_ms", "revoked_at_ms", "revoked_by"],
            settings={"async_insert": 0},
        )
        self._sids[session.sid] = session.exp_ms

    async def sync(self) -> None:
        """Pull the ids revoked since the last pull (all unexpired ones the first time)."""
        now = int(time.time() * 1000)
        since = max(0, self._synced_ms - 10_000)  # overlap: a row stamped just before the last pull
        res = await self.client.query(
            "SELECT sid, expires_at_ms FROM board_revoked_sessions "
            "WHERE revoked_at_ms >= {s:UInt64} AND expires_at_ms > {n:UInt64}",
            parameters={"s": since, "n": now},
        )
        for sid, exp in res.result_rows:
            self._sids[str(sid)] = int(exp)
        self._synced_ms = now
        for sid in [s for s, exp in self._sids.items() if exp <= now]:
            del self._sids[sid]
