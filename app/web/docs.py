"""GET /docs: the OpenAPI document (GET /openapi.json) as a browsable page, Swagger UI.

Everything the page loads comes from this app: Swagger UI's script and style from the
``flask-swagger-ui`` package's copy of its distribution (read as files, not imported), the
start-up script below, the document itself. A Content-Security-Policy allowing only this
origin keeps it that way: the page works offline and calls no other host."""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

from flask import Blueprint, Response, url_for
from markupsafe import escape

from app.errors import NotFound

bp = Blueprint("docs", __name__)

DIST_PACKAGE = "flask_swagger_ui"  # its dist/ folder is Swagger UI's own build
# The asset names served, with their content types: nothing else of the package is.
ASSETS = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
}
START = "docs.js"
CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        # Swagger UI's stylesheet draws its icons as inline SVG (data: URLs): images only.
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)

# Starts Swagger UI on the page's container, with the document URL the page names.
_START_SCRIPT = """\
window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.specUrl,
    domNode: root,
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    validatorUrl: null,
    defaultModelsExpandDepth: 0,
    docExpansion: "list"
  });
});
"""

_PAGE = """\
<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Huiyuan API</title>
  <link rel="stylesheet" href="{css}">
  <link rel="icon" type="image/png" href="{icon32}" sizes="32x32">
  <link rel="icon" type="image/png" href="{icon16}" sizes="16x16">
</head>
<body>
  <div id="swagger-ui" data-spec-url="{spec}"></div>
  <script src="{bundle}"></script>
  <script src="{start}"></script>
</body>
</html>
"""


def _secured(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.get("/docs")
def page() -> Any:
    def asset(name: str) -> str:
        return str(escape(url_for("docs.asset", name=name)))

    html = _PAGE.format(
        css=asset("swagger-ui.css"),
        icon32=asset("favicon-32x32.png"),
        icon16=asset("favicon-16x16.png"),
        spec=escape(url_for("health.openapi")),
        bundle=asset("swagger-ui-bundle.js"),
        start=asset(START),
    )
    return _secured(Response(html, mimetype="text/html"))


@bp.get("/docs/static/<name>")
def asset(name: str) -> Any:
    if name == START:
        body, content_type = _START_SCRIPT.encode(), "text/javascript; charset=utf-8"
    elif name in ASSETS:
        body, content_type = _dist_file(name), ASSETS[name]
    else:
        raise NotFound("No such docs asset.")
    response = _secured(Response(body, content_type=content_type))
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


@functools.cache
def _dist_file(name: str) -> bytes:
    return resources.files(DIST_PACKAGE).joinpath("dist", name).read_bytes()
