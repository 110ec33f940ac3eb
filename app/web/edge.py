"""What every request and answer goes through before the endpoints: text that cannot be
stored is refused (path, query string, the headers the app reads), answers carry the
protective headers, and the client address comes from a trusted proxy only."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote_to_bytes

from flask import Flask, Response, request
from werkzeug.middleware.proxy_fix import ProxyFix

from app.errors import ValidationFailed
from app.web.jsonbody import unstorable_reason

# The request headers whose value is stored. The credentials (Authorization, X-App-Key,
# X-Timestamp, X-Nonce, X-Signature) are only compared, and any byte the signer did not
# expect is refused there as 401, the answer API.md gives for bad credentials;
# X-Request-Id is replaced when it is not a safe id (app.web.logs).
STORED_HEADERS = ("Idempotency-Key",)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def install_edge(app: Flask, *, trusted_proxies: Iterable[str] = ()) -> None:
    networks = parse_networks(trusted_proxies)
    if networks:
        app.wsgi_app = TrustedProxyFix(app.wsgi_app, networks)  # type: ignore[method-assign]

    @app.before_request
    def _refuse_unstorable() -> None:
        _check_path(request.environ)
        _check_query(request.query_string)
        for name in STORED_HEADERS:
            value = request.headers.get(name)
            if value is not None and not (value.isascii() and value.isprintable()):
                raise ValidationFailed(f"The {name} header must be printable ASCII.", field=name)

    @app.after_request
    def _protective_headers(response: Response) -> Response:
        response.headers["X-Content-Type-Options"] = "nosniff"
        # Every answer here is either for one caller (members, operators, partners) or
        # carries a token (the log-ins): none may be kept by a browser or a proxy cache.
        response.headers.setdefault("Cache-Control", "no-store")
        return response


def _check_path(environ: dict[str, Any]) -> None:
    """The path as the client sent it (RAW_URI, REQUEST_URI: gunicorn and werkzeug set
    them), percent-decoded; else PATH_INFO, whose bytes are carried as latin-1 (PEP 3333)."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    try:
        if raw:
            path = unquote_to_bytes(str(raw).split("?", 1)[0]).decode("utf-8")
        else:
            path = str(environ.get("PATH_INFO", "")).encode("latin-1").decode("utf-8")
    except UnicodeError:
        raise ValidationFailed("The path is not valid UTF-8.", field="path") from None
    reason = unstorable_reason(path)
    if reason:
        raise ValidationFailed(f"The path holds text that cannot be stored: {reason}", field="path")


def _check_query(raw: bytes) -> None:
    """Each name and value of the query string, percent-decoded, must be UTF-8 text that the
    database can store (the framework would otherwise replace bad bytes silently). No name
    may come twice: the endpoints read one value, and which one was meant is not known."""
    if not raw:
        return
    names: set[str] = set()
    for pair in raw.split(b"&"):
        for index, piece in enumerate(pair.split(b"=", 1)):
            try:
                text = unquote_to_bytes(piece.replace(b"+", b" ")).decode("utf-8")
            except UnicodeDecodeError:
                raise ValidationFailed(
                    "The query string is not valid UTF-8.", field="query"
                ) from None
            reason = unstorable_reason(text)
            if reason:
                raise ValidationFailed(
                    f"The query string holds text that cannot be stored: {reason}", field="query"
                )
            if index == 0 and pair:
                if text in names:
                    raise ValidationFailed(
                        "A query parameter is given more than once.", field="query"
                    )
                names.add(text)


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """``10.0.0.1``, ``10.0.0.0/8``, ``::1``: ValueError for anything else."""
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries)


class TrustedProxyFix:
    """werkzeug's ProxyFix (the client address from the last X-Forwarded-For hop), applied
    only when the immediate peer is one of the configured proxies: anyone else could
    write that header themselves."""

    def __init__(self, wsgi_app: Any, networks: tuple[Network, ...]) -> None:
        self._direct = wsgi_app
        self._proxied = ProxyFix(wsgi_app, x_for=1)
        self._networks = networks

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if self._is_trusted(environ.get("REMOTE_ADDR")):
            return self._proxied(environ, start_response)
        return self._direct(environ, start_response)

    def _is_trusted(self, peer: str | None) -> bool:
        try:
            address = ipaddress.ip_address(peer or "")
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        return any(address in network for network in self._networks)
