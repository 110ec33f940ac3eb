"""The mini-program's API, /mp/v1."""

from flask import Blueprint

from miniprogram_api import auth, me, points

bp = Blueprint("mp", __name__, url_prefix="/mp/v1")
auth.register(bp)
me.register(bp)
points.register(bp)
