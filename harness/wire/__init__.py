"""The wire: every socket of the harness, and only sockets.

Each module opens or serves connections of one kind, as functions of one explicit
:class:`~harness.wire.plan.Plan` (url, headers, subprotocols, origin, TLS, timeouts, bounds):
:mod:`~harness.wire.websocket` (websockets' asyncio client), :mod:`~harness.wire.asgi` (an ASGI
application in-process), :mod:`~harness.wire.raw` (the hand-written handshake: the probe and the
half-open clients), :mod:`~harness.wire.sync` (websockets' sync client, for the load mode),
:mod:`~harness.wire.serve` (the client mode's server socket), :mod:`~harness.wire.tls`. Whatever
ends a connection reaches the rest of the harness as :class:`~harness.wire.closed.Closed`, never
as a library's exception: nothing outside this package imports ``socket``, ``ssl`` or
``websockets`` (``tests/test_layout.py``).
"""
