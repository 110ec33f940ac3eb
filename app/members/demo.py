"""Realistic demo members, inserted in batches (100,000 in well under a minute)."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, insert, select

from app import clock
from app.members import rules
from app.members.models import Member

BATCH_SIZE = 5000
_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡"
    "余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯"
    "龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
_GIVEN_FEMALE = "婷娜静敏丽艳芳娟霞秀英慧琳雪萍玲颖倩瑶欣怡佳悦梦涵诗雨"
_GIVEN_MALE = "伟强磊军勇杰涛明超刚平辉鹏华飞鑫波斌宇浩凯健俊帆昊天然"
_CITIES = (
    ("上海", 14),
    ("北京", 12),
    ("广州", 9),
    ("深圳", 9),
    ("杭州", 7),
    ("成都", 7),
    ("南京", 5),
    ("武汉", 5),
    ("重庆", 5),
    ("西安", 4),
    ("苏州", 4),
    ("天津", 3),
    ("长沙", 3),
    ("郑州", 3),
    ("青岛", 2),
    ("厦门", 2),
    ("昆明", 2),
    ("宁波", 2),
)
_CHANNELS = (
    ("miniprogram", 46),
    ("official_account", 14),
    ("pos", 18),
    ("wecom", 8),
    ("tmall", 6),
    ("jd", 5),
    ("youzan", 3),
)


def count_members(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(Member)).scalar_one())


def _pick(rng: random.Random, weighted: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([v for v, _ in weighted], weights=[w for _, w in weighted])[0]


def demo_member_row(rng: random.Random, card_no: str, now: datetime) -> dict[str, object]:
    gender = rng.choices(("female", "male", "unknown"), weights=(58, 36, 6))[0]
    pool = _GIVEN_FEMALE if gender == "female" else _GIVEN_MALE
    name = rng.choice(_SURNAMES) + "".join(rng.choice(pool) for _ in range(rng.choice((1, 2))))
    age = max(16, min(75, int(rng.gauss(33, 10))))
    birthday = date(now.year - age, rng.randint(1, 12), rng.randint(1, 28))
    registered = now - timedelta(days=rng.expovariate(1 / 500), seconds=rng.randint(0, 86399))
    phone = f"1{rng.choice('3456789')}{rng.randint(0, 999_999_999):09d}"
    return {
        "card_no": card_no,
        "nickname": name,
        "gender": gender,
        "birthday": birthday if rng.random() < 0.7 else None,
        "city": _pick(rng, _CITIES),
        "phone": phone if rng.random() < 0.8 else None,
        "registration_channel": _pick(rng, _CHANNELS),
        "status": "active",
        "registered_at": registered.astimezone(UTC),
        "updated_at": now,
    }


def _fresh_unique(engine: Engine, column: Any, candidates: list[str], taken: set[str]) -> set[str]:
    """The subset of candidates already used in the database or earlier batches."""
    with engine.connect() as connection:
        existing = set(connection.execute(select(column).where(column.in_(candidates))).scalars())
    return existing | (set(candidates) & taken)


def seed_members(
    engine: Engine,
    *,
    count: int,
    seed: int | None = None,
    progress: Callable[[int], object] = lambda n: None,
) -> int:
    """Insert ``count`` members; one transaction per batch, no per-row commits."""
    rng = random.Random(seed)
    now = clock.now()
    used_cards: set[str] = set()
    used_phones: set[str] = set()
    done = 0
    while done < count:
        size = min(BATCH_SIZE, count - done)
        rows = [demo_member_row(rng, rules.new_card_no(), now) for _ in range(size)]
        _dedupe(engine, rows, used_cards, used_phones)
        with engine.begin() as connection:
            connection.execute(insert(Member), rows)
        done += size
        progress(size)
    return done


def _dedupe(
    engine: Engine, rows: list[dict[str, object]], cards: set[str], phones: set[str]
) -> None:
    card_clash = _fresh_unique(engine, Member.card_no, [str(r["card_no"]) for r in rows], cards)
    phone_list = [str(r["phone"]) for r in rows if r["phone"]]
    phone_clash = _fresh_unique(engine, Member.phone, phone_list, phones)
    for row in rows:
        while row["card_no"] in card_clash or row["card_no"] in cards:
            row["card_no"] = rules.new_card_no()
        cards.add(str(row["card_no"]))
        if row["phone"] in phone_clash or row["phone"] in phones:
            row["phone"] = None
        elif row["phone"]:
            phones.add(str(row["phone"]))
