"""The bad-input rules of API.md, once, through real endpoints: strict JSON bodies, the
error envelope, 404/405/413, and request ids."""

from __future__ import annotations

import io
import json
import re

import pytest

from app.members.models import Member, MemberIdentity
from app.web.jsonbody import MAX_BODY_BYTES
from tests.support.http import assert_envelope, bearer
from tests.support.wechat import login_code

LOGIN = "/mp/v1/auth/login"


@pytest.fixture
def code(sim):
    """A fresh, unused wx.login code: a rejected request must leave it usable."""
    return login_code(sim, "o-envelope")


@pytest.fixture
def nothing_written(client, count, code):
    """After the test: no member or identity was created, and the code was never
    exchanged with WeChat (it still logs in)."""
    members, identities = count(Member), count(MemberIdentity)
    yield
    assert count(Member) == members
    assert count(MemberIdentity) == identities
    assert client.post(LOGIN, json={"code": code}).status_code == 200


def post_raw(client, raw: bytes, path: str = LOGIN, **kw):
    return client.post(path, data=raw, content_type="application/json", **kw)


@pytest.mark.usefixtures("nothing_written")
def test_an_unknown_field_is_named(client, code):
    error = assert_envelope(
        client.post(LOGIN, json={"code": code, "invite": "x"}), 422, "validation_error"
    )
    assert "invite" in error["details"]["fields"]
    assert "code" not in error["details"]["fields"]


def test_an_unknown_field_on_an_authenticated_endpoint(client, login):
    token = login("o-envelope-patch")["token"]
    answer = client.patch("/mp/v1/me", json={"nickname": "Ann", "vip": True}, headers=bearer(token))
    error = assert_envelope(answer, 422, "validation_error")
    assert list(error["details"]["fields"]) == ["vip"]
    assert client.get("/mp/v1/me", headers=bearer(token)).get_json()["nickname"] is None


@pytest.mark.usefixtures("nothing_written")
@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_refused(client, code, constant):
    raw = f'{{"code": "{code}", "n": {constant}}}'.encode()
    assert_envelope(post_raw(client, raw), 422, "validation_error")


@pytest.mark.usefixtures("nothing_written")
@pytest.mark.parametrize(
    "template",
    [
        '{{"code": "{code}", "code": "{code}"}}',
        '{{"code": "{code}", "x": {{"a": 1, "a": 2}}}}',
    ],
    ids=["top-level", "nested"],
)
def test_duplicate_keys_are_refused(client, code, template):
    raw = template.format(code=code).encode()
    assert_envelope(post_raw(client, raw), 422, "validation_error")


@pytest.mark.usefixtures("nothing_written")
@pytest.mark.parametrize(
    "raw",
    [b'[{"code": "c"}]', b'"code"', b"42", b"true", b"null"],
    ids=["array", "string", "number", "boolean", "null"],
)
def test_the_body_must_be_an_object(client, raw):
    assert_envelope(post_raw(client, raw), 422, "validation_error")


@pytest.mark.usefixtures("nothing_written")
@pytest.mark.parametrize(
    "raw",
    [b'{"code": "\xff\xfe"}', b'{"code": "caf\xe9"}', b'{"code": "\xed\xa0\x80"}'],
    ids=["ff-fe", "latin-1", "surrogate"],
)
def test_invalid_utf8_is_refused(client, raw):
    assert_envelope(post_raw(client, raw), 422, "validation_error")


@pytest.mark.usefixtures("nothing_written")
@pytest.mark.parametrize(
    "raw",
    [b'{"code": ', b"{'code': 'x'}", b'{"code": "x",}', b"{code: 1}", b"\x00", b'{"a":1} {}'],
    ids=["truncated", "single-quotes", "trailing-comma", "bare-key", "nul", "two-values"],
)
def test_malformed_json_is_refused(client, raw):
    assert_envelope(post_raw(client, raw), 422, "validation_error")


@pytest.mark.usefixtures("nothing_written")
@pytest.mark.parametrize("opener", [b"[", b'{"a":'], ids=["arrays", "objects"])
def test_deeply_nested_json_is_refused_not_a_crash(client, opener):
    depth = 100_000
    closer = b"]" if opener == b"[" else b"}"
    raw = opener * depth + b"1" + closer * depth
    assert len(raw) < MAX_BODY_BYTES
    assert_envelope(post_raw(client, raw), 422, "validation_error")


@pytest.mark.usefixtures("nothing_written")
@pytest.mark.parametrize("raw", [b"", b"  \n"], ids=["empty", "blank"])
def test_a_missing_body_is_refused(client, raw):
    assert_envelope(post_raw(client, raw), 422, "validation_error")


@pytest.mark.usefixtures("nothing_written")
def test_a_missing_required_field_is_named(client):
    error = assert_envelope(client.post(LOGIN, json={}), 422, "validation_error")
    assert "code" in error["details"]["fields"]


@pytest.mark.usefixtures("nothing_written")
def test_a_body_over_one_mebibyte_is_413(client, code):
    prefix = f'{{"code": "{code}", "pad": "'.encode()
    raw = prefix + b"a" * (MAX_BODY_BYTES - len(prefix) - 2) + b'"}'
    assert len(raw) == MAX_BODY_BYTES
    # Exactly 1 MiB is read (and refused for its unknown field), one byte more is not.
    assert_envelope(post_raw(client, raw), 422, "validation_error")
    assert_envelope(post_raw(client, raw + b" "), 413, "payload_too_large")


@pytest.mark.usefixtures("nothing_written")
@pytest.mark.parametrize("tail", [b" ", b'{"evil": 1}'], ids=["one-byte-over", "a-second-value"])
def test_a_chunked_body_is_not_cut_off_at_one_mebibyte(client, code, tail):
    """Without Content-Length the server reads up to the limit: what lies beyond must
    not be silently dropped, even when the first MiB alone is an acceptable body."""
    head = json.dumps({"code": code}).encode()
    raw = head + b" " * (MAX_BODY_BYTES - len(head)) + tail
    answer = client.post(
        LOGIN,
        input_stream=io.BytesIO(raw),
        headers={"Transfer-Encoding": "chunked", "Content-Type": "application/json"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert_envelope(answer, 413, "payload_too_large")


@pytest.mark.parametrize("path", ["/nope", "/mp/v1/nope", "/open/v1/", "/admin/v1/members/x"])
def test_an_unknown_path_is_404(client, path):
    assert_envelope(client.get(path), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("post", "/mp/v1/me", {"GET", "PATCH"}),
        ("get", LOGIN, {"POST"}),
        ("delete", "/healthz", {"GET"}),
        ("put", "/open/v1/members/lookup", {"GET"}),
    ],
)
def test_a_wrong_method_is_405(client, method, path, allowed):
    answer = getattr(client, method)(path)
    assert_envelope(answer, 405, "method_not_allowed")
    assert allowed <= {m.strip() for m in answer.headers["Allow"].split(",")}


def test_every_error_has_the_envelope_whatever_its_cause(client, login):
    """One of each family: parsing, schema, auth, domain, routing."""
    token = login("o-envelope-family")["token"]
    client.patch("/mp/v1/me", json={"birthday": "1990-01-02"}, headers=bearer(token))
    answers = {
        "validation_error": post_raw(client, b"{"),
        "unauthorized": client.get("/mp/v1/me", headers=bearer("forged")),
        "conflict": client.patch(
            "/mp/v1/me", json={"birthday": "1991-01-02"}, headers=bearer(token)
        ),
        "not_found": client.get("/nowhere"),
        "method_not_allowed": client.delete("/mp/v1/me"),
    }
    for code, answer in answers.items():
        assert_envelope(answer, answer.status_code, code)
        assert 400 <= answer.status_code < 500


class TestRequestIds:
    @pytest.mark.parametrize("path", ["/healthz", "/nowhere"])
    def test_echoed_when_sent(self, client, path):
        answer = client.get(path, headers={"X-Request-Id": "till-42.abc"})
        assert answer.headers["X-Request-Id"] == "till-42.abc"

    def test_echoed_on_a_rejected_body(self, client):
        answer = post_raw(client, b"[]", headers={"X-Request-Id": "rid-1"})
        assert answer.status_code == 422
        assert answer.headers["X-Request-Id"] == "rid-1"

    def test_generated_otherwise_and_fresh_each_time(self, client):
        first = client.get("/healthz").headers["X-Request-Id"]
        second = client.get("/healthz").headers["X-Request-Id"]
        assert re.fullmatch(r"[0-9a-f]{32}", first)
        assert first != second

    @pytest.mark.parametrize("bad", ["x" * 65, "a\tb"], ids=["too-long", "control"])
    def test_an_unusable_one_is_replaced(self, client, bad):
        answer = client.get("/healthz", headers={"X-Request-Id": bad})
        assert re.fullmatch(r"[0-9a-f]{32}", answer.headers["X-Request-Id"])
