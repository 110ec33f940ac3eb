"""A query parameter given twice is ambiguous (which one is meant: the first, the last?):
it is refused with 422 at the edge, not silently read as one of them."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.http import assert_envelope, bearer
from tests.support.signing import open_get


@pytest.mark.parametrize(
    "query",
    ["?limit=1&limit=2", "?cursor=a&limit=5&cursor=b", "?limit=1&limit"],
)
def test_a_repeated_query_parameter_is_refused(client: Any, login: Any, query: str) -> None:
    token = login("o-repeated")["token"]
    response = client.get("/mp/v1/points/ledger" + query, headers=bearer(token))
    error = assert_envelope(response, 422, "validation_error")
    assert error["details"]["field"] == "query"


def test_a_lookup_naming_the_card_twice_is_refused_not_read_as_the_first(
    client: Any, login: Any, partner: Any
) -> None:
    card_no = login("o-lookup-twice")["member"]["card_no"]
    path = f"/open/v1/members/lookup?card_no=000000000000&card_no={card_no}"
    assert_envelope(open_get(client, partner, path), 422, "validation_error")
    path = f"/open/v1/members/lookup?card_no={card_no}"
    assert open_get(client, partner, path).status_code == 200  # one of each still answers
