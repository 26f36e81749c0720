"""A seeded, deterministic contest: rooms, audiences, orders, refunds, revisions and short videos.

Everything is generated up front from ``ScenarioConfig.seed`` so two runs with the same configuration are
identical, and every figure a simulator serves at simulated time ``t`` is a pure function of the scenario and
``t``. The ground truth the tests compare against (:meth:`Scenario.truth`) comes from the same functions:

* per room, the **provisional** figures (what the platform shows when the stream ends) and the **final**
  ones (after the platform's revision: fraud-filtered orders removed, late refunds counted). The final GMV
  is lower than the live one, as on the real platforms.
* per order, its lifecycle (created → paid | cancelled → refunded), with some refunds after the stream;
  an order may be refunded in parts (one unit of several), each refund with its own id, amount and time.
* per short video, its stats at the end of the contest.

Shapes: each contestant has one account and one live room on one platform; viewers arrive and leave
(online curve ramps up, plateaus with noise and tails off), orders arrive at a rate that follows the
audience times the contestant's conversion skill, interactions (comments, likes, gifts, shares, follows)
likewise. Cumulative series are kept as sorted timestamp arrays with prefix sums, so a snapshot is a few
bisections whatever the contest size.
"""

from __future__ import annotations

import hashlib
import math
import random
from bisect import bisect_right
from dataclasses import asdict, dataclass, field
from itertools import accumulate

PLATFORMS = ("wechat_channels", "douyin", "kuaishou")
MINUTE = 60_000

# 5 assigned products per contest, as in the Harbin final (seed 000); price in 分.
PRODUCTS = (
    ("p-rice", 5990),
    ("p-honey", 8800),
    ("p-fungus", 3990),
    ("p-tea", 12800),
    ("p-soy", 2590),
)


@dataclass(frozen=True)
class ScenarioConfig:
    seed: int = 1
    rooms: int = 6
    minutes: int = 60  # stream length T, simulated minutes
    platforms: tuple[str, ...] = PLATFORMS
    contest_id: str = "sim-contest"
    start_ms: int = 1_767_225_600_000  # 2026-01-01T00:00:00Z: fixed, so runs reproduce exactly
    revision_after_min: int = 10  # final figures published this long after a stream ends (documented)
    # ...and this much later in fact: platforms are not punctual, so a poll at the documented time can
    # still read provisional figures (tests of the collectors' finality rule)
    revision_late_ms: int = 0
    refund_tail_min: int = 8  # refunds keep arriving this long after the end (≤ revision_after_min)
    videos_per_contestant: int = 1
    audience_scale: float = 1.0  # peak online audience ≈ 300 × scale × contestant appeal
    orders_scale: float = 1.0
    # suspicious data per contestant: ((contestant_id, faults.DataAnomaly), …); the others stay as they were
    anomalies: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.rooms < 1 or self.minutes < 1:
            raise ValueError("rooms and minutes must be >= 1")
        if not self.platforms or any(p not in PLATFORMS for p in self.platforms):
            raise ValueError(f"platforms must be a non-empty subset of {PLATFORMS}")
        if self.refund_tail_min > self.revision_after_min:
            raise ValueError("refunds must end before the final revision is published")


@dataclass
class Contestant:
    contestant_id: str
    name: str
    platform: str
    account_id: str
    appeal: float  # audience multiplier
    skill: float  # conversion multiplier


@dataclass(frozen=True)
class Refund:
    """One refund (after-sale) of an order: its platform id, when it succeeded, how much it returned."""

    refund_id: str
    at: int
    amount_fen: int


@dataclass
class Order:
    order_id: str
    platform: str
    account_id: str
    contestant_id: str
    room_id: str
    buyer_id: str
    product_id: str
    quantity: int
    unit_price_fen: int
    amount_fen: int
    created_at: int
    paid_at: int | None = None
    cancelled_at: int | None = None
    refunds: list[Refund] = field(default_factory=list)  # in time order; partial ones add up
    fraud: bool = False  # removed by the platform's final revision

    @property
    def refund_at(self) -> int | None:
        """When the first refund succeeded (None: never refunded)."""
        return self.refunds[0].at if self.refunds else None

    @property
    def refund_fen(self) -> int:
        """Everything refunded, all refunds together."""
        return sum(r.amount_fen for r in self.refunds)

    def refunds_at(self, t: int) -> list[Refund]:
        return [r for r in self.refunds if r.at <= t]

    @property
    def platform_buyer_id(self) -> str:
        """The buyer as the platform names it (WeChat openid, 抖店 doudian_open_id, Kuaishou buyerOpenId)."""
        digest = hashlib.sha256(f"{self.platform}:{self.account_id}:{self.buyer_id}".encode()).hexdigest()
        if self.platform == "wechat_channels":
            return "o" + digest[:27]
        if self.platform == "douyin":
            return "1@#" + digest[:32]
        return "f" + digest[:31]

    def status_at(self, t: int) -> str:
        """The order's headline status: refunded once fully refunded, else paid / cancelled / created."""
        if self.refunds and sum(r.amount_fen for r in self.refunds_at(t)) >= self.amount_fen:
            return "refunded"
        if self.paid_at is not None and t >= self.paid_at:
            return "paid"
        if self.cancelled_at is not None and t >= self.cancelled_at:
            return "cancelled"
        return "created"

    def lifecycle(self) -> list[tuple[int, str]]:
        steps = [(self.created_at, "created")]
        if self.paid_at is not None:
            steps.append((self.paid_at, "paid"))
        if self.cancelled_at is not None:
            steps.append((self.cancelled_at, "cancelled"))
        steps += [(r.at, "refunded") for r in self.refunds]
        return steps


@dataclass
class Interaction:
    """One live-room interaction message (Douyin pushes these one by one)."""

    msg_id: str
    ts: int
    msg_type: str  # live_comment | live_like | live_gift | live_fansclub
    sec_open_id: str
    like_num: int = 0
    gift_num: int = 0
    gift_value_fen: int = 0
    content: str = ""


@dataclass(frozen=True)
class RoomStats:
    """What a platform knows about a room at one instant (cumulative gauges, 分 for money)."""

    status: str  # not_started | living | finished
    revised: bool  # True once the platform's final revision is out
    online: int
    peak_online: int
    watch_uv: int
    watch_pv: int
    leaved: int
    avg_watch_s: int
    likes: int
    comments: int
    shares: int
    follows: int
    gifts: int
    gift_value_fen: int
    exp_pv: int
    exp_uv: int
    clk_pv: int
    clk_uv: int
    create_orders: int
    create_uv: int
    pay_orders: int
    pay_uv: int
    gmv_fen: int
    refund_orders: int
    refund_uv: int
    refund_fen: int


@dataclass(frozen=True)
class VideoStats:
    plays: int
    likes: int
    shares: int
    comments: int
    clicks: int
    completion_ppm: int
    avg_play_ms: int


@dataclass
class Video:
    video_id: str
    platform: str
    account_id: str
    contestant_id: str
    title: str
    published_at: int
    plays_final: int
    tau_ms: float
    like_rate: float
    share_rate: float
    comment_rate: float
    click_rate: float
    completion_ppm: int
    avg_play_ms: int

    def stats(self, t: int) -> VideoStats | None:
        if t < self.published_at:
            return None
        plays = int(self.plays_final * (1 - math.exp(-(t - self.published_at) / self.tau_ms)))
        return VideoStats(
            plays=plays,
            likes=int(plays * self.like_rate),
            shares=int(plays * self.share_rate),
            comments=int(plays * self.comment_rate),
            clicks=int(plays * self.click_rate),
            completion_ppm=self.completion_ppm,
            avg_play_ms=self.avg_play_ms,
        )


def _cum_at(ts: list[int], cum: list[int], t: int) -> int:
    i = bisect_right(ts, t)
    return cum[i - 1] if i else 0


@dataclass
class Room:
    room_id: str
    platform: str
    account_id: str
    contestant_id: str
    title: str
    start_ms: int
    end_ms: int
    revision_at: int
    online_by_min: list[int]
    uv_by_min: list[int]
    pv_by_min: list[int]
    orders: list[Order]
    interactions: list[Interaction]
    # derived indexes (built in __post_init__)
    _series: dict[str, tuple[list[int], list[int]]] = field(default_factory=dict, repr=False)
    _watch_s_by_min: list[int] = field(default_factory=list, repr=False)
    gmv_padding_fen: int = 0  # DataAnomaly.GMV_WITHOUT_ORDERS: reported GMV no order stands for

    def __post_init__(self) -> None:
        def series(points: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
            points.sort()
            return [p[0] for p in points], list(accumulate(p[1] for p in points))

        paid = [o for o in self.orders if o.paid_at is not None]
        first_buy: dict[str, int] = {}
        for o in sorted(paid, key=lambda o: o.paid_at or 0):
            first_buy.setdefault(o.buyer_id, o.paid_at or 0)
        first_create: dict[str, int] = {}
        for o in sorted(self.orders, key=lambda o: o.created_at):
            first_create.setdefault(o.buyer_id, o.created_at)
        refunded = [o for o in paid if o.refund_at is not None]
        first_refund: dict[str, int] = {}
        for o in sorted(refunded, key=lambda o: o.refund_at or 0):
            first_refund.setdefault(o.buyer_id, o.refund_at or 0)
        by_type: dict[str, list[Interaction]] = {}
        for m in self.interactions:
            by_type.setdefault(m.msg_type, []).append(m)
        s = self._series
        s["create"] = series([(o.created_at, 1) for o in self.orders])
        s["create_uv"] = series([(t, 1) for t in first_create.values()])
        s["pay"] = series([(o.paid_at or 0, 1) for o in paid])
        s["gmv"] = series([(o.paid_at or 0, o.amount_fen) for o in paid])
        s["pay_nf"] = series([(o.paid_at or 0, 1) for o in paid if not o.fraud])
        s["gmv_nf"] = series([(o.paid_at or 0, o.amount_fen) for o in paid if not o.fraud])
        s["pay_uv"] = series([(t, 1) for t in first_buy.values()])
        s["refund"] = series([(o.refund_at or 0, 1) for o in refunded])
        s["refund_fen"] = series([(r.at, r.amount_fen) for o in refunded for r in o.refunds])
        s["refund_uv"] = series([(t, 1) for t in first_refund.values()])
        s["comments"] = series([(m.ts, 1) for m in by_type.get("live_comment", [])])
        s["likes"] = series([(m.ts, m.like_num) for m in by_type.get("live_like", [])])
        s["gifts"] = series([(m.ts, m.gift_num) for m in by_type.get("live_gift", [])])
        s["gift_value"] = series([(m.ts, m.gift_value_fen) for m in by_type.get("live_gift", [])])
        s["follows"] = series([(m.ts, 1) for m in by_type.get("live_fansclub", [])])
        self._watch_s_by_min = list(accumulate(60 * x for x in self.online_by_min))

    def _interp(self, arr: list[int], t: int) -> int:
        x = (t - self.start_ms) / MINUTE
        if x <= 0:
            return arr[0]
        i = int(x)
        if i >= len(arr) - 1:
            return arr[-1]
        return int(arr[i] + (arr[i + 1] - arr[i]) * (x - i))

    def stats(self, t: int) -> RoomStats:
        """The platform's view at ``t``: live figures, then after ``revision_at`` the revised ones."""
        revised = t >= self.revision_at
        clamp = min(t, self.end_ms)  # audience and orders stop with the stream; refunds do not

        def c(name: str, at: int = clamp) -> int:
            ts, cum = self._series[name]
            return _cum_at(ts, cum, at)

        if t < self.start_ms:
            status = "not_started"
        elif t < self.end_ms:
            status = "living"
        else:
            status = "finished"
        online = self._interp(self.online_by_min, clamp) if status == "living" else 0
        uv = self._interp(self.uv_by_min, clamp) if status != "not_started" else 0
        pv = self._interp(self.pv_by_min, clamp) if status != "not_started" else 0
        mins = max(0, min(len(self.online_by_min) - 1, (clamp - self.start_ms) // MINUTE))
        peak = max(max(self.online_by_min[: mins + 1]), online) if status != "not_started" else 0
        watch_s = self._watch_s_by_min[mins] if status != "not_started" else 0
        clk_pv = int(pv * 0.35)
        return RoomStats(
            status=status,
            revised=revised,
            online=online,
            peak_online=peak,
            watch_uv=uv,
            watch_pv=pv,
            leaved=max(0, uv - online),
            avg_watch_s=watch_s // uv if uv else 0,
            likes=c("likes"),
            comments=c("comments"),
            shares=int(uv * 0.03),
            follows=c("follows"),
            gifts=c("gifts"),
            gift_value_fen=c("gift_value"),
            exp_pv=pv * 3,
            exp_uv=uv * 2,
            clk_pv=clk_pv,
            clk_uv=int(uv * 0.25),
            create_orders=c("create"),
            create_uv=c("create_uv"),
            pay_orders=c("pay_nf") if revised else c("pay"),
            pay_uv=c("pay_uv"),
            gmv_fen=(c("gmv_nf") if revised else c("gmv"))
            + self.gmv_padding_fen * max(0, clamp - self.start_ms) // max(1, self.end_ms - self.start_ms),
            refund_orders=c("refund", t),
            refund_uv=c("refund_uv", t),
            refund_fen=c("refund_fen", t),
        )


def _id(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


_HEX = "0123456789abcdef"
_DIGITS = "0123456789"
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def account_id_for(platform: str, rng: random.Random) -> str:
    if platform == "wechat_channels":
        return "sph" + _id(rng, _B64, 9)  # 视频号 finder ids look like sphXXXXXXXXX
    if platform == "douyin":
        return _id(rng, "123456789", 1) + _id(rng, _DIGITS, 10)  # aweme_id (numeric)
    return "3x" + _id(rng, _B64[:36].lower(), 13)  # Kuaishou user ids look like 3xabc…


def room_id_for(platform: str, rng: random.Random) -> str:
    if platform == "wechat_channels":
        return "export/UzFf" + _id(rng, _B64, 40)  # getlivelist export_id
    if platform == "douyin":
        return "7" + _id(rng, _DIGITS, 18)
    return _id(rng, _B64, 11)  # Kuaishou liveStreamId


class Scenario:
    def __init__(self, config: ScenarioConfig) -> None:
        self.config = config
        self.contestants: list[Contestant] = []
        self.rooms: dict[str, Room] = {}
        self.videos: dict[str, Video] = {}
        self.orders: dict[str, Order] = {}
        self._build()
        self._index()

    # -- generation -------------------------------------------------------------------------------

    def _build(self) -> None:
        cfg = self.config
        top = random.Random(f"scenario:{cfg.seed}")
        for i in range(cfg.rooms):
            platform = cfg.platforms[i % len(cfg.platforms)]
            c = Contestant(
                contestant_id=f"c{i + 1:04d}",
                name=f"选手{i + 1:04d}",
                platform=platform,
                account_id=account_id_for(platform, top),
                appeal=round(math.exp(top.gauss(0, 0.35)), 3),
                skill=round(math.exp(top.gauss(0, 0.4)), 3),
            )
            self.contestants.append(c)
            rng = random.Random(f"room:{cfg.seed}:{c.contestant_id}")
            kind = dict(cfg.anomalies).get(c.contestant_id)
            if kind == "conversion_outlier":
                c.skill *= 25
            room = self._room(c, rng)
            if kind is not None:
                room = _with_anomaly(room, kind, cfg)
            self.rooms[room.room_id] = room
            for o in room.orders:
                self.orders[o.order_id] = o
            for v in range(cfg.videos_per_contestant):
                video = self._video(c, v, rng)
                self.videos[video.video_id] = video

    def _room(self, c: Contestant, rng: random.Random) -> Room:
        cfg = self.config
        start = cfg.start_ms + rng.randrange(0, 2 * MINUTE, 1000)
        end = start + cfg.minutes * MINUTE
        peak = max(5, int(300 * cfg.audience_scale * c.appeal))
        ramp = max(1, min(10, cfg.minutes // 4))
        online = [0]
        uv = [0]
        for m in range(1, cfg.minutes + 1):
            if m <= ramp:
                level = peak * m / ramp
            elif m > cfg.minutes - ramp:
                level = peak * (0.4 + 0.6 * (cfg.minutes - m) / ramp)
            else:
                level = peak
            o = max(0, int(level * (1 + rng.gauss(0, 0.06))))
            # arrivals replace leavers (churn ≈ 15 %/min) plus any growth of the online count
            arrivals = max(0, o - online[-1]) + int(online[-1] * 0.15 * (0.8 + 0.4 * rng.random()))
            online.append(o)
            uv.append(uv[-1] + arrivals)
        pv = [int(x * 1.3) for x in uv]
        room_id = room_id_for(c.platform, rng)

        orders: list[Order] = []
        n = 0
        for m in range(cfg.minutes):
            lam = online[m + 1] * 0.004 * c.skill * cfg.orders_scale
            k = _poisson(rng, lam)
            for _ in range(k):
                n += 1
                created = start + m * MINUTE + rng.randrange(0, MINUTE, 100)
                product, price = PRODUCTS[rng.randrange(len(PRODUCTS))]
                qty = 1 if rng.random() < 0.7 else rng.randint(2, 3)
                o = Order(
                    order_id=_order_id(c.platform, cfg.seed, c.contestant_id, n),
                    platform=c.platform,
                    account_id=c.account_id,
                    contestant_id=c.contestant_id,
                    room_id=room_id,
                    buyer_id=f"b{rng.randrange(max(10, uv[-1]))}",
                    product_id=product,
                    quantity=qty,
                    unit_price_fen=price,
                    amount_fen=price * qty,
                    created_at=created,
                )
                if rng.random() < 0.9:
                    o.paid_at = min(end - 1, created + rng.randrange(3_000, 60_000, 100))
                    if rng.random() < 0.08:
                        late = end + cfg.refund_tail_min * MINUTE - 1
                        first = rng.randrange(o.paid_at + 60_000, max(o.paid_at + 60_001, late), 100)
                        o.refunds = _refunds(o, first, late, cfg.seed)
                    o.fraud = rng.random() < 0.04
                else:
                    # unpaid orders close after 15 minutes (kept within the contest's horizon)
                    o.cancelled_at = min(created + 15 * MINUTE, end + cfg.refund_tail_min * MINUTE - 1)
                orders.append(o)
        # Every stream gets at least one fraud-filtered paid order, so the revision is always visible.
        paid = [o for o in orders if o.paid_at is not None]
        if paid and not any(o.fraud for o in paid):
            rng.choice(paid).fraud = True
        # Every stream with a multi-unit paid order has one refunded in two parts (two refunds, each with
        # its own id and amount), the second after the stream: what a ledger must add up, not replace.
        # Drawn from the order's own generator so the rest of the contest stays as it was.
        multi = [o for o in paid if o.quantity >= 2 and not o.refunds]
        if multi and not any(len(o.refunds) > 1 for o in paid):
            o = multi[len(multi) // 2]
            late = end + cfg.refund_tail_min * MINUTE - 1
            sub = random.Random(f"split:{cfg.seed}:{o.order_id}")
            first = sub.randrange(o.paid_at + 60_000, max(o.paid_at + 60_001, end - 1), 100)  # type: ignore[operator]
            second = sub.randrange(max(first + 1_000, end), max(first + 1_001, late, end + 1), 100)
            o.refunds = [
                Refund(_refund_id(o, 1), first, o.unit_price_fen),
                Refund(_refund_id(o, 2), second, o.unit_price_fen),
            ]
        orders.sort(key=lambda o: o.created_at)

        interactions: list[Interaction] = []
        seq = 0
        for m in range(cfg.minutes):
            base = start + m * MINUTE
            aud = online[m + 1]
            plan = (
                ("live_comment", _poisson(rng, aud * 0.03)),
                ("live_like", _poisson(rng, aud * 0.05)),
                ("live_gift", _poisson(rng, aud * 0.002)),
                ("live_fansclub", _poisson(rng, aud * 0.004)),
            )
            for msg_type, count in plan:
                for _ in range(count):
                    seq += 1
                    m_ = Interaction(
                        msg_id=f"{room_id[-8:]}{seq:08d}",
                        ts=base + rng.randrange(0, MINUTE, 10),
                        msg_type=msg_type,
                        sec_open_id=f"u{rng.randrange(max(10, uv[m + 1]))}",
                    )
                    if msg_type == "live_like":
                        m_.like_num = rng.randint(1, 15)
                    elif msg_type == "live_gift":
                        m_.gift_num = rng.randint(1, 3)
                        m_.gift_value_fen = m_.gift_num * rng.choice((10, 100, 520, 1000))
                    elif msg_type == "live_comment":
                        m_.content = rng.choice(("好物", "买了", "多少钱", "上链接", "主播好"))
                    interactions.append(m_)
        interactions.sort(key=lambda x: x.ts)
        return Room(
            room_id=room_id,
            platform=c.platform,
            account_id=c.account_id,
            contestant_id=c.contestant_id,
            title=f"{c.name}的直播间",
            start_ms=start,
            end_ms=end,
            revision_at=end + cfg.revision_after_min * MINUTE + cfg.revision_late_ms,
            online_by_min=online,
            uv_by_min=uv,
            pv_by_min=pv,
            orders=orders,
            interactions=interactions,
        )

    def _video(self, c: Contestant, n: int, rng: random.Random) -> Video:
        cfg = self.config
        return Video(
            video_id=_video_id(c.platform, cfg.seed, c.contestant_id, n, rng),
            platform=c.platform,
            account_id=c.account_id,
            contestant_id=c.contestant_id,
            title=f"{c.name}的短视频{n + 1}",
            published_at=cfg.start_ms - rng.randrange(0, 30 * MINUTE, 1000),
            plays_final=int(2000 * c.appeal * (0.5 + rng.random())),
            tau_ms=cfg.minutes * MINUTE / 2,
            like_rate=0.02 + 0.05 * rng.random(),
            share_rate=0.002 + 0.01 * rng.random(),
            comment_rate=0.001 + 0.005 * rng.random(),
            click_rate=0.01 + 0.04 * rng.random(),
            completion_ppm=rng.randrange(150_000, 650_000),
            avg_play_ms=rng.randrange(8_000, 40_000),
        )

    # -- queries ---------------------------------------------------------------------------------

    @property
    def end_ms(self) -> int:
        """When everything, including every room's final revision, has happened."""
        return max(r.revision_at for r in self.rooms.values())

    def _index(self) -> None:
        # per-account lookups run on every simulated API call: a scan of 3,000 rooms each time made the
        # simulator quadratic (and the benchmark measured the simulator instead of the collector)
        self._by_contestant = {c.contestant_id: c for c in self.contestants}
        self._rooms_by_account: dict[str, list[Room]] = {}
        for r in self.rooms.values():
            self._rooms_by_account.setdefault(r.account_id, []).append(r)
        self._videos_by_account: dict[str, list[Video]] = {}
        for v in self.videos.values():
            self._videos_by_account.setdefault(v.account_id, []).append(v)

    def contestant(self, contestant_id: str) -> Contestant:
        return self._by_contestant[contestant_id]

    def rooms_of(self, platform: str) -> list[Room]:
        return [r for r in self.rooms.values() if r.platform == platform]

    def rooms_of_account(self, account_id: str) -> list[Room]:
        return self._rooms_by_account.get(account_id, [])

    def videos_of_account(self, account_id: str) -> list[Video]:
        return self._videos_by_account.get(account_id, [])

    def truth(self) -> dict:
        """Ground truth for tests: provisional vs final per room, lifecycle per order, final video stats."""
        rooms = {}
        for r in self.rooms.values():
            rooms[r.room_id] = {
                "platform": r.platform,
                "account_id": r.account_id,
                "contestant_id": r.contestant_id,
                "start_ms": r.start_ms,
                "end_ms": r.end_ms,
                "revision_at": r.revision_at,
                "provisional": asdict(r.stats(r.end_ms)),
                "final": asdict(r.stats(r.revision_at)),
            }
        orders = {
            o.order_id: {
                "platform": o.platform,
                "account_id": o.account_id,
                "contestant_id": o.contestant_id,
                "room_id": o.room_id,
                "amount_fen": o.amount_fen,
                "refund_fen": o.refund_fen,
                "refunds": [asdict(r) for r in o.refunds],
                "buyer_id": o.platform_buyer_id,
                "fraud": o.fraud,
                "lifecycle": o.lifecycle(),
            }
            for o in self.orders.values()
        }
        videos = {}
        for v in self.videos.values():
            st = v.stats(self.end_ms)
            videos[v.video_id] = {
                "platform": v.platform,
                "account_id": v.account_id,
                "contestant_id": v.contestant_id,
                "final": asdict(st) if st else None,
            }
        return {"contest_id": self.config.contest_id, "rooms": rooms, "orders": orders, "videos": videos}


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 30:  # normal approximation keeps big rooms cheap
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _refund_id(o: Order, n: int) -> str:
    """The platform's after-sale id of an order's n-th refund (numeric on all three platforms)."""
    digest = hashlib.sha256(f"refund:{o.order_id}:{n}".encode()).hexdigest()
    return str(7_000_000_000_000_000_000 + int(digest[:15], 16) % 10**18)


def _refunds(o: Order, first: int, late: int, seed: int) -> list[Refund]:
    """An order's refunds: a single unit returns all; of several units, half the time one or two units
    come back in separate refunds (partial), otherwise the whole order at once."""
    sub = random.Random(f"refunds:{seed}:{o.order_id}")
    if o.quantity < 2 or sub.random() < 0.5:
        return [Refund(_refund_id(o, 1), first, o.amount_fen)]
    out = [Refund(_refund_id(o, 1), first, o.unit_price_fen)]
    if sub.random() < 0.5 and first + 2_000 < late:
        out.append(Refund(_refund_id(o, 2), sub.randrange(first + 1_000, late, 100), o.unit_price_fen))
    return out


def _order_id(platform: str, seed: int, contestant_id: str, n: int) -> str:
    digest = hashlib.sha256(f"{seed}:{contestant_id}:{n}".encode()).hexdigest()
    if platform == "kuaishou":
        return str(2_400_000_000_000_000 + int(digest[:13], 16) % 10**15)  # Kuaishou oid is numeric
    return str(3_700_000_000_000_000_000 + int(digest[:15], 16) % 10**18)


def _video_id(platform: str, seed: int, contestant_id: str, n: int, rng: random.Random) -> str:
    if platform == "wechat_channels":
        return "export/UzFfAgtgekIE" + _id(rng, _B64, 30)
    if platform == "douyin":
        return "@9VwKzuuES" + _id(rng, _B64, 30)  # open-platform item_id
    return "3x" + _id(rng, _B64[:36].lower(), 14)  # Kuaishou photo_id


def _with_anomaly(room: Room, kind: str, cfg: ScenarioConfig) -> Room:
    """The room as the platform would report it with ``kind`` of suspicious data (faults.DataAnomaly)."""
    online = list(room.online_by_min)
    orders = room.orders
    start, end, padding = room.start_ms, room.end_ms, 0
    if kind == "online_spike":
        m = max(1, cfg.minutes // 2)
        online[m] = max(online[m] * 16, online[m] + 3_000)
    elif kind == "gmv_without_orders":
        paid = sum(o.amount_fen for o in orders if o.paid_at is not None)
        padding = max(200_000, paid)  # at least ¥2,000, or as much again as the real sales
    elif kind == "refund_spike":
        tail = max(2, cfg.refund_tail_min) * MINUTE
        for i, o in enumerate(o for o in orders if o.paid_at is not None and not o.refunds and not o.fraud):
            if i % 2 == 0:
                o.refunds = [Refund(_refund_id(o, 1), end + 30_000 + (i * 7_919) % (tail - 60_000), o.amount_fen)]
    elif kind == "outside_slot":
        shift = 45 * MINUTE
        start, end = start - shift, end - shift
        for o in orders:
            o.created_at -= shift
            o.paid_at = None if o.paid_at is None else o.paid_at - shift
            o.cancelled_at = None if o.cancelled_at is None else o.cancelled_at - shift
            o.refunds = [Refund(r.refund_id, r.at - shift, r.amount_fen) for r in o.refunds]
        for m in room.interactions:
            m.ts -= shift
    elif kind != "conversion_outlier":  # conversion: the contestant's skill, set before the room is drawn
        raise ValueError(f"unknown anomaly {kind!r}")
    return Room(
        room_id=room.room_id, platform=room.platform, account_id=room.account_id,
        contestant_id=room.contestant_id, title=room.title, start_ms=start, end_ms=end,
        revision_at=room.revision_at - (room.end_ms - end), online_by_min=online, uv_by_min=room.uv_by_min,
        pv_by_min=room.pv_by_min, orders=orders, interactions=room.interactions, gmv_padding_fen=padding,
    )  # fmt: skip
