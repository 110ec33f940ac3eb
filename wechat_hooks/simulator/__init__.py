"""A local WeChat: the real endpoints' request and response shapes, state in memory.

Point the wechatpy clients from ``wechat_hooks.clients`` at it with ``api_base``; drive
the consumer's side (login codes, phone codes, subscribe consent, WeCom contacts,
faults) through ``/sim/...``. Serve it with ``flask --app wsgi wechat-sim``.
"""

from wechat_hooks.simulator.server import SimulatorServer, create_sim_app, serve
from wechat_hooks.simulator.state import SimState

__all__ = ["SimState", "SimulatorServer", "create_sim_app", "serve"]
