"""The bundled reference server of the EduSphere conformance harness.

An asyncio + websockets + SQLite implementation of the chat WebSocket API in
``shared/seed/websocket-api.md`` that implements every server-scope MUST and SHOULD of
``harness/catalogue.toml``, plus fault switches (``reference_server.faults``) that each break one
behaviour on purpose. Public API::

    from reference_server.config import ServerConfig
    from reference_server.runner import ServerThread, serve
    from reference_server.runner import ClusterProcess, RedisServer   # a cluster on a broker
    from reference_server.demo import DEMO_SECRET, demo_config, demo_target_dict, seed_demo
    from reference_server.faults import FAULTS, Fault
"""

from reference_server.config import ServerConfig
from reference_server.demo import DEMO_SECRET, demo_config, demo_target_dict, seed_demo
from reference_server.faults import FAULTS, Fault
from reference_server.runner import ServerThread, serve

__all__ = [
    "DEMO_SECRET",
    "FAULTS",
    "Fault",
    "ServerConfig",
    "ServerThread",
    "demo_config",
    "demo_target_dict",
    "seed_demo",
    "serve",
]
