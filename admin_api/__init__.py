"""The admin API for operators and WeCom staff, /admin/v1."""

from flask import Blueprint

from admin_api import audit, auth, members, points, tiers

bp = Blueprint("admin", __name__, url_prefix="/admin/v1")
auth.register(bp)
audit.register(bp)
members.register(bp)
points.register(bp)
tiers.register(bp)
