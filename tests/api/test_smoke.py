from tests.support.http import bearer, log_in
from tests.support.signing import open_get


def test_login_card_and_till_lookup(client, sim, partner):
    first = log_in(client, sim, "o-smoke-1")
    assert first["is_new"] is True
    token = first["token"]
    card = client.get("/mp/v1/card", headers=bearer(token)).get_json()
    assert card["card_no"] == first["member"]["card_no"]
    found = open_get(client, partner, f"/open/v1/members/lookup?qr_payload={card['qr_payload']}")
    assert found.status_code == 200, found.get_json()
    assert found.get_json()["member"]["id"] == first["member"]["id"]
