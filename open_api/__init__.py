"""The open API for store systems, /open/v1, HMAC-signed."""

from flask import Blueprint

from open_api import members, orders

bp = Blueprint("open", __name__, url_prefix="/open/v1")
members.register(bp)
orders.register(bp)
