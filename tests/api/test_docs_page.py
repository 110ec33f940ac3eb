"""GET /docs: the contract as a page, served whole by the app (no CDN, nothing from
another host), under a Content-Security-Policy that allows this origin only."""

from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import Iterator
from html.parser import HTMLParser
from shutil import which

import pytest
from werkzeug.serving import make_server

LINKED = {"script": "src", "link": "href", "img": "src"}


class Links(HTMLParser):
    """The URLs a page makes the browser load, and the inline scripts it carries."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0
        self.spec_url: str | None = None
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag in LINKED and values.get(LINKED[tag]):
            self.urls.append(str(values[LINKED[tag]]))
        if tag == "script" and not values.get("src"):
            self._in_script = True
        if values.get("data-spec-url"):
            self.spec_url = values["data-spec-url"]

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False


@pytest.fixture
def page(client) -> Links:
    answer = client.get("/docs")
    assert answer.status_code == 200
    assert answer.mimetype == "text/html"
    html = answer.get_data(as_text=True)
    assert not re.search(r"(?i)\b(https?:)?//", html), "the page names another host"
    links = Links()
    links.feed(html)
    return links


def test_the_page_loads_only_its_own_assets(page):
    assert page.urls, "no assets: the page would be blank"
    assert all(url.startswith("/docs/static/") for url in page.urls), page.urls
    assert {url.rsplit("/", 1)[1] for url in page.urls} >= {
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "docs.js",
    }
    assert page.inline_scripts == 0  # the policy allows no inline script
    assert page.spec_url == "/openapi.json"


def test_the_page_and_its_assets_allow_only_this_origin(client, page):
    for url in ["/docs", *page.urls]:
        policy = client.get(url).headers["Content-Security-Policy"]
        directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
        assert directives["default-src"] == "'self'"
        assert directives["script-src"] == "'self'"
        assert directives["connect-src"] == "'self'"
        assert "unsafe" not in policy and "http" not in policy and "*" not in policy


@pytest.mark.parametrize(
    ("name", "content_type", "starts"),
    [
        ("swagger-ui-bundle.js", "text/javascript", b""),
        ("docs.js", "text/javascript", b"window.addEventListener"),
        ("swagger-ui.css", "text/css", b""),
        ("favicon-32x32.png", "image/png", b"\x89PNG"),
    ],
)
def test_each_asset_answers_with_its_content_type(client, name, content_type, starts):
    answer = client.get(f"/docs/static/{name}")
    assert answer.status_code == 200
    assert answer.mimetype == content_type
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.data.startswith(starts) and len(answer.data) > 100


def test_the_bundle_is_swagger_ui(client):
    bundle = client.get("/docs/static/swagger-ui-bundle.js").get_data(as_text=True)
    assert "SwaggerUIBundle" in bundle
    assert len(bundle) > 500_000  # the whole build, not a stub


@pytest.mark.parametrize("name", ["index.html", "..%2Fflask_swagger_ui.py", "LICENSE", "x.js"])
def test_nothing_else_of_the_package_is_served(client, name):
    answer = client.get(f"/docs/static/{name}")
    assert answer.status_code == 404
    assert answer.get_json()["error"]["code"] == "not_found"


def test_the_page_points_at_the_served_document(client, page):
    document = client.get(page.spec_url)
    assert document.status_code == 200
    assert document.get_json()["openapi"].startswith("3.")


CHROMIUM = next(
    (found for name in ("chromium", "chromium-browser", "google-chrome") if (found := which(name))),
    None,
)


@pytest.fixture
def served(app) -> Iterator[str]:
    """The app on a free loopback port, for a real browser."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.mark.skipif(CHROMIUM is None, reason="no headless Chromium on this machine")
def test_a_browser_renders_the_contract_offline(served, app):
    """Headless Chromium, under the page's policy, builds the page from the app's assets
    alone: the operations and the signing section are in the rendered page."""
    rendered = subprocess.run(
        [
            str(CHROMIUM),
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=15000",
            "--dump-dom",
            f"{served}/docs",
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
    ).stdout
    operations = sum(
        1
        for item in app.test_client().get("/openapi.json").get_json()["paths"].values()
        for method in item
    )
    assert rendered.count('class="opblock opblock-') == operations
    assert "Signing open-API requests" in rendered
    assert "/open/v1/orders" in rendered and "Mini-program: auth" in rendered
