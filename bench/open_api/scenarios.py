"""The open-API scenarios, declared: what each request is, what it must answer, and what
the app is judged against.

Every request is complete when made: body, signature headers over it, a nonce of its own
(``<run><server><batch>-<i>``, so the app's and the floor's, the warm-up's and each
round's never meet) and, for new orders and spends, an external id of its own too. The
timestamp is the time it is made, just before its round; replays repeat a body (and an
Idempotency-Key) that the server was primed with, each with a new nonce.

Replays repeat one of ``REPLAYED_REQUESTS`` recorded requests at random: one order replayed by
every connection would measure the wait for its member's row lock (the intake locks
before it knows it is a replay), not the replay.

``max_rate`` is above what any server reaches on this machine: a round's file holds
2 × that × its seconds, and a file that runs out is reported as such.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bench.floors import protocol
from bench.harness.runner import Expect, Scenario
from bench.harness.wrk import HttpRequest
from bench.open_api.data import CHANNEL, STORE, Fixture

ORDERS, REDEEM = "/open/v1/orders", "/open/v1/points/redeem"
SHANGHAI = ZoneInfo("Asia/Shanghai")
PRODUCTS = (
    ("LAT-001", "拿铁", "coffee"),
    ("AME-002", "美式", "coffee"),
    ("CRO-010", "可颂", "bakery"),
    ("MUG-100", "随行杯", "merchandise"),
    ("BEA-200", "咖啡豆 250g", "beans"),
)
CREATED, REPLAYED = Expect(201), Expect(200)
REPLAYED_REQUESTS = 256  # recorded orders (and keyed spends) the replays pick from
KEY_REPLAYED = Expect(201, ("Idempotent-Replayed", "true"))


def encode(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def order_document(rng: random.Random, card_no: str, external_id: str) -> dict[str, Any]:
    """An order of 1-3 lines paid now, in the store's time zone (+08:00)."""
    items = []
    for _ in range(rng.randint(1, 3)):
        sku, name, category = rng.choice(PRODUCTS)
        quantity = rng.randint(1, 3)
        items.append(
            {
                "sku": sku,
                "name": name,
                "category": category,
                "brand": "Huiyuan",
                "quantity": quantity,
                "amount_cents": quantity * rng.randint(15, 120) * 100,
            }
        )
    return {
        "channel": CHANNEL,
        "external_id": external_id,
        "member": {"card_no": card_no},
        "store_code": STORE,
        "paid_at": datetime.now(SHANGHAI).isoformat(timespec="seconds"),
        "amount_cents": sum(item["amount_cents"] for item in items),
        "items": items,
    }


def redeem_document(card_no: str, points: int, external_id: str) -> dict[str, Any]:
    return {
        "member": {"card_no": card_no},
        "points": points,
        "external_id": external_id,
        "store_code": STORE,
    }


class Requests:
    """Makes the requests of every scenario for one run (``run`` is in every id)."""

    def __init__(self, fixture: Fixture, run: str) -> None:
        self.fixture, self.run = fixture, run
        self._rngs: dict[tuple[str, str], random.Random] = {}
        self._fixed: dict[tuple[str, str, int], dict[str, Any]] = {}

    def signed(
        self, path: str, document: dict[str, Any], nonce: str, key: str | None = None
    ) -> HttpRequest:
        body = encode(document)
        headers = protocol.signed_headers(
            self.fixture.app_key,
            self.fixture.app_secret,
            "POST",
            path,
            body,
            nonce=nonce,
            timestamp=int(time.time()),
        )
        if key is not None:
            headers += (("Idempotency-Key", key),)
        return HttpRequest("POST", path, headers, body)

    def unique(self, server: str, batch: str, i: int) -> str:
        """The nonce, and the external id of a new order or spend (at most 64 chars)."""
        return f"{self.run}{server[0]}{batch}-{i}"

    def rng(self, server: str, batch: str) -> random.Random:
        key = (server, batch)
        if key not in self._rngs:
            self._rngs[key] = random.Random(f"{self.run}{server}{batch}")
        return self._rngs[key]

    def fixed(self, server: str, what: str, n: int) -> dict[str, Any]:
        """The n-th body a replay scenario repeats on ``server`` (made once, primed once)."""
        key = (server, what, n)
        if key not in self._fixed:
            external_id = f"{self.run}{server[0]}-replayed-{what}-{n}"
            rng = random.Random(external_id)
            if what == "order":
                card = rng.choice(self.fixture.order_cards)
                self._fixed[key] = order_document(rng, card, external_id)
            else:
                card = rng.choice(self.fixture.funded_cards)
                self._fixed[key] = redeem_document(card, 1, external_id)
        return self._fixed[key]

    def replay_key(self, server: str, n: int) -> str:
        return f"{self.run}{server[0]}-replayed-key-{n}"

    # --- one method per scenario: (server, batch, i) -> the request ---

    def new_order(self, server: str, batch: str, i: int) -> HttpRequest:
        unique, rng = self.unique(server, batch, i), self.rng(server, batch)
        document = order_document(rng, rng.choice(self.fixture.order_cards), unique)
        return self.signed(ORDERS, document, unique)

    def order_replay(self, server: str, batch: str, i: int) -> HttpRequest:
        n = self.rng(server, batch).randrange(REPLAYED_REQUESTS)
        return self.signed(ORDERS, self.fixed(server, "order", n), self.unique(server, batch, i))

    def _spend(self, cards: Sequence[str], server: str, batch: str, i: int) -> HttpRequest:
        unique, rng = self.unique(server, batch, i), self.rng(server, batch)
        document = redeem_document(rng.choice(cards), rng.randint(1, 5), unique)
        return self.signed(REDEEM, document, unique)

    def redeem(self, server: str, batch: str, i: int) -> HttpRequest:
        return self._spend(self.fixture.funded_cards, server, batch, i)

    def redeem_lots(self, server: str, batch: str, i: int) -> HttpRequest:
        return self._spend(self.fixture.lots_cards, server, batch, i)

    def redeem_keyed(self, server: str, batch: str, i: int) -> HttpRequest:
        unique, rng = self.unique(server, batch, i), self.rng(server, batch)
        document = redeem_document(rng.choice(self.fixture.funded_cards), rng.randint(1, 5), unique)
        return self.signed(REDEEM, document, unique, key=unique)

    def key_replay(self, server: str, batch: str, i: int) -> HttpRequest:
        n = self.rng(server, batch).randrange(REPLAYED_REQUESTS)
        document, nonce = self.fixed(server, "spend", n), self.unique(server, batch, i)
        return self.signed(REDEEM, document, nonce, key=self.replay_key(server, n))

    # --- what the replays repeat ---

    def prime_order(self, server: str) -> list[tuple[HttpRequest, Expect]]:
        primed = []
        for n in range(REPLAYED_REQUESTS):
            nonce = f"{self.run}{server}o{n}"
            primed.append((self.signed(ORDERS, self.fixed(server, "order", n), nonce), CREATED))
        return primed

    def prime_key(self, server: str) -> list[tuple[HttpRequest, Expect]]:
        primed = []
        for n in range(REPLAYED_REQUESTS):
            document, key = self.fixed(server, "spend", n), self.replay_key(server, n)
            nonce = f"{self.run}{server}k{n}"
            primed.append((self.signed(REDEEM, document, nonce, key=key), CREATED))
        return primed


def scenarios(requests: Requests) -> list[Scenario]:
    return [
        Scenario(
            "order_new",
            "new order: random member by card_no, 1-3 items",
            requests.new_order,
            CREATED,
            versus="floor",
            target=0.8,
            max_rate=1_500,
        ),
        Scenario(
            "order_replay",
            "order replay: the same channel, external_id and body again",
            requests.order_replay,
            REPLAYED,
            versus="bare",
            target=0.5,
            max_rate=4_000,
            prime=requests.prime_order,
        ),
        Scenario(
            "redeem",
            "till redemption of 1-5 points, funded member (1 open lot)",
            requests.redeem,
            CREATED,
            versus="floor",
            target=0.8,
            max_rate=2_500,
        ),
        Scenario(
            "redeem_keyed",
            "till redemption with a new Idempotency-Key each",
            requests.redeem_keyed,
            CREATED,
            versus="floor",
            target=0.8,
            max_rate=2_500,
        ),
        Scenario(
            "key_replay",
            "Idempotency-Key replay of a till redemption (same key, same body)",
            requests.key_replay,
            KEY_REPLAYED,
            versus="bare",
            target=0.5,
            max_rate=4_000,
            prime=requests.prime_key,
        ),
        Scenario(
            "redeem_100_lots",
            "till redemption of 1-5 points, member with 100 open lots",
            requests.redeem_lots,
            CREATED,
            versus="floor",
            target=0.8,
            max_rate=2_500,
        ),
    ]
