"""Which failures mean "the database or Redis is down or not answering".

Those become 503 ``unavailable``: the request may succeed if retried later. A lock wait
timeout or a deadlock is not one of them: it is a race, retried by ``app.retry``.
"""

from __future__ import annotations

import pymysql
import redis
from sqlalchemy import exc as sa_exc

# MySQL / MariaDB client and server errors that say the server cannot be reached, went
# away, or refuses connections: can't connect (2002, 2003), unknown host (2005), gone
# away (2006), lost connection (2013, 2055), SSL handshake (2026), too many connections
# (1040), shutting down (1053, 1077), connection killed (1927), idle disconnect (4031).
CONNECTION_ERROR_CODES = frozenset(
    {2002, 2003, 2005, 2006, 2013, 2026, 2055, 1040, 1053, 1077, 1927, 4031}
)
_MAX_CHAIN = 5


def is_outage(error: BaseException) -> bool:
    """True when ``error`` (or what caused it) is the database or Redis not answering."""
    seen: BaseException | None = error
    for _ in range(_MAX_CHAIN):
        if seen is None:
            return False
        if _is_outage_itself(seen):
            return True
        seen = seen.__cause__
    return False


def _is_outage_itself(error: BaseException) -> bool:
    if isinstance(error, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
        return True
    if isinstance(error, sa_exc.TimeoutError | sa_exc.DisconnectionError):  # pool exhausted
        return True
    if isinstance(error, sa_exc.DBAPIError):
        if error.connection_invalidated:
            return True
        return _is_driver_outage(error.orig)
    return _is_driver_outage(error)


def _is_driver_outage(error: BaseException | None) -> bool:
    if isinstance(error, pymysql.err.InterfaceError):  # the connection is already closed
        return True
    if isinstance(error, pymysql.err.OperationalError):
        code = error.args[0] if error.args else None
        return code in CONNECTION_ERROR_CODES
    return False
