"""The prose of the OpenAPI document: what it says of the whole API, of each area (tag)
and of each way to authenticate. The operations' own prose sits on their ``endpoint``."""

from __future__ import annotations

INFO = """\
The HTTP contract of Huiyuan, a retail brand's WeChat membership programme: members,
points, tiers, orders from the brand's store systems.

Three callers, three prefixes:

- **Mini-program** (`/mp/v1`): the consumer's WeChat mini-program. `Authorization: Bearer
  <token>` from `POST /mp/v1/auth/login`.
- **Open API** (`/open/v1`): the brand's store systems (POS, e-commerce). Every request is
  signed with HMAC-SHA256, see *Signing open-API requests* below.
- **Admin** (`/admin/v1`): the operators' console. `Authorization: Bearer <token>` from
  `POST /admin/v1/auth/login`; roles `admin`, `operator`, `analyst` (read only).

## Conventions
- JSON in and out, UTF-8. Money in integer cents (`*_cents`), points as integers, times as
  ISO 8601 with offset (the brand's, +08:00, in answers).
- Errors: the HTTP status plus
  `{"error": {"code": "insufficient_points", "message": "...", "details": {...}}}`. Codes are
  stable: `validation_error` (422, `details.fields` names each bad field), `unauthorized`
  (401), `forbidden` (403), `not_found` (404), `conflict` (409), `insufficient_points`,
  `limit_reached`, `idempotency_mismatch` (409), `rate_limited` (429, with `Retry-After`),
  `already_running` (409), `unavailable` (503, the database or Redis is down: retry after
  `Retry-After`), `upstream_unavailable` (503, WeChat is not answering).
- Unknown fields in a body are refused: 422 `validation_error` naming the field.
- State-changing mini-program and open-API calls accept `Idempotency-Key` (1 to 64
  printable ASCII characters). A replay with the same key and the same request answers
  the first answer again (same status, same body, header `Idempotent-Replayed: true`); the
  same key with another request is 409 `idempotency_mismatch`. A retry sent while the
  first request still runs waits for it and answers its answer; 409 `conflict` if the first
  runs longer than that wait (20 s).
- Lists: `?limit=` (1 to 100, default 20) and `?cursor=` (the `next_cursor` of the page
  before); answer `{"items": [...], "next_cursor": "..." | null}`.

## Signing open-API requests
Each partner (store system) has an app key and an app secret. Every `/open/v1` request
carries four headers:

- `X-App-Key`: the partner's app key.
- `X-Timestamp`: the time of sending, unix seconds (digits only); refused when more than
  300 s from the server's clock.
- `X-Nonce`: a fresh random string of at most 64 characters; each nonce is accepted once
  per app key within the timestamp window.
- `X-Signature`: lowercase hex HMAC-SHA256 of the string to sign, keyed with the app secret
  (its UTF-8 bytes).

The string to sign is five lines joined by `\\n` (no trailing newline):

```
METHOD                  upper case: GET, POST
PATH                    the path with its query string exactly as sent:
                        /open/v1/members/lookup?card_no=138913635593
TIMESTAMP               the X-Timestamp value
NONCE                   the X-Nonce value
SHA256_HEX(BODY)        lowercase hex SHA-256 of the raw body bytes (of the empty string for a GET:
                        e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855)
```

In Python:

```python
body = json.dumps(payload).encode()          # send exactly these bytes
message = "\\n".join([method.upper(), path_with_query, timestamp, nonce,
                     hashlib.sha256(body).hexdigest()])
signature = hmac.new(app_secret.encode(), message.encode(), hashlib.sha256).hexdigest()
```

A missing, malformed, stale, unknown or mismatched credential, and a nonce used again, is
401 `unauthorized` (`details.reason`: `stale_timestamp`, `unknown_app_key`, `bad_signature`,
`replayed_nonce`) and changes nothing. A valid signature from a partner not allowed the
order's channel is 403 `forbidden`. The nonce is spent only by a request whose signature
holds, so a request refused for its signature can be fixed and sent with the same nonce.
"""

TAGS: dict[str, str] = {
    "Mini-program: auth": "Log in with the code from `wx.login`, bind the phone number from "
    "the phone-number button, log out. The WeChat session_key never leaves the server.",
    "Mini-program: profile and card": "The signed-in member's profile and member card (tier, "
    "growth, points, the short-lived QR payload the till scans).",
    "Mini-program: points": "The member's points ledger and the daily check-in.",
    "Open API: members": "Store systems look members up at the till (HMAC-signed).",
    "Open API: orders": "Store systems report paid orders and refunds: points are earned "
    "and taken back, tiers follow (HMAC-signed, idempotent by external id).",
    "Open API: points": "Store systems spend a member's points at the till (HMAC-signed, "
    "idempotent by external id).",
    "Admin: auth": "Operator log-in (throttled per account and per source address), "
    "who-am-I and log-out.",
    "Admin: members": "Find members, read one with identities, merges, points and tier "
    "history, end their mini-program sessions.",
    "Admin: points": "The points rules and manual points adjustments (audited).",
    "Admin: tiers": "The tier ladder, the tier policy and a what-if simulation (audited).",
    "Admin: audit": "Every change made through the admin API: who, what, before, after.",
}

MEMBER_BEARER = (
    "The mini-program's token: `Authorization: Bearer <token>` with the `token` of "
    "`POST /mp/v1/auth/login`. A missing, forged, expired or logged-out token is 401."
)
ADMIN_BEARER = (
    "An operator's token: `Authorization: Bearer <token>` with the `token` of "
    "`POST /admin/v1/auth/login`. A missing, forged, expired or revoked token, or a disabled "
    "account, is 401; a role the operation does not allow is 403."
)
_SIGNED = " Part of the open API's request signature: see *Signing open-API requests*."
APP_KEY = "The partner's app key." + _SIGNED
TIMESTAMP = "Unix seconds at sending, within 300 s of the server's clock." + _SIGNED
NONCE = "A random string of at most 64 characters, used once per app key." + _SIGNED
SIGNATURE = (
    "Lowercase hex HMAC-SHA256, keyed with the app secret, of "
    "`METHOD\\nPATH_WITH_QUERY\\nTIMESTAMP\\nNONCE\\nSHA256_HEX(BODY)`." + _SIGNED
)

IDEMPOTENCY_KEY = (
    "Optional, 1 to 64 printable ASCII characters, chosen by the caller per intended change. "
    "The same key and request again answers the first answer (header "
    "`Idempotent-Replayed: true`); the same key with another request is 409 "
    "`idempotency_mismatch`."
)
LIMIT = "Page size, 1 to 100 (default 20)."
CURSOR = "Where the page starts: the `next_cursor` of the page before; omit for the first page."
PATH_PARAMETERS: dict[str, str] = {
    "member_id": "The member's id (`member.id` in answers).",
    "code": "The tier's code, e.g. `gold`.",
}
