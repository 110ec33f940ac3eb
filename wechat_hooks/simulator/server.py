"""Building the simulator's Flask app and serving it, in the foreground or for a test."""

from __future__ import annotations

import logging
import threading
from types import TracebackType

from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from wechat_hooks.simulator import control, sends, tags, views, wecom
from wechat_hooks.simulator.state import SimState

log = logging.getLogger(__name__)


def create_sim_app(
    *, apps: dict[str, str] | None = None, corps: dict[str, str] | None = None
) -> Flask:
    """A WeChat stand-in. ``apps``/``corps`` map id -> secret; empty accepts any pair."""
    app = Flask(__name__, static_folder=None)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.json.ensure_ascii = False  # type: ignore[attr-defined]  # WeChat answers raw UTF-8
    app.extensions[views.STATE_KEY] = SimState(apps, corps)
    views.install(app)
    for module in (views, sends, tags, wecom, control):
        app.register_blueprint(module.bp)
    return app


def serve(host: str, port: int, **kwargs: dict[str, str] | None) -> None:
    """Serve the simulator (threaded) until interrupted; kwargs go to ``create_sim_app``."""
    server = make_server(host, port, create_sim_app(**kwargs), threaded=True)
    log.info("WeChat simulator on http://%s:%d/", host, server.server_port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


class SimulatorServer:
    """The simulator on 127.0.0.1 and a free port, in a background thread.

    ``with SimulatorServer(apps={...}) as sim:`` then point clients at ``sim.base_url``;
    ``sim.state`` is the live in-memory state.
    """

    def __init__(
        self, *, apps: dict[str, str] | None = None, corps: dict[str, str] | None = None
    ) -> None:
        self.app = create_sim_app(apps=apps, corps=corps)
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def state(self) -> SimState:
        state: SimState = self.app.extensions[views.STATE_KEY]
        return state

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the simulator is not running")
        return int(self._server.server_port)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> SimulatorServer:
        if self._server is None:
            self._server = make_server("127.0.0.1", 0, self.app, threaded=True)
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},  # stop() waits up to one interval
                name="wechat-simulator",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server, self._thread = None, None

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
