"""The target file: one TOML file that points the suites at a server.

The keys are a contract (see README, "Target file reference"). A bad file stops the run before
any test with one line that names the key: :class:`TargetError`.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import shlex
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harness import redact
from harness.core import spec
from harness.tls import Tls, TlsError
from harness.tomlfile import TomlFileError, read_toml

ROLES = ("host", "member", "member2", "outsider")
ROOM_ROLES = ("main", "other", "missing", "twin_host")
TRANSPORTS = ("cookie", "query", "header", "subprotocol")
REFUSALS = ("any", "http", "close")
PLACEHOLDERS = ("username", "email", "user_id", "exp", "iat")
#: Defaults of the harness's own resource bounds (README, "Bounded resources").
MAX_RECEIVED_FRAME_BYTES = 1024 * 1024
MAX_BUFFERED_FRAMES = 10_000
MAX_BUFFERED_BYTES = 16 * 1024 * 1024
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
#: A header name: an RFC 9110 token.
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
#: Headers the handshake itself sets (or another key of the target file does): ``[headers]``
#: may not set them.
_HANDSHAKE_HEADERS = {
    "host": "the URL's host",
    "upgrade": "the WebSocket handshake",
    "connection": "the WebSocket handshake",
    "sec-websocket-key": "the WebSocket handshake",
    "sec-websocket-version": "the WebSocket handshake",
    "sec-websocket-extensions": "the WebSocket handshake",
    "sec-websocket-protocol": "the WebSocket handshake (auth.transport = subprotocol)",
    "origin": "the origin key",
}
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


class TargetError(Exception):
    """A target file that cannot be used. ``str()`` is one line naming the key."""


class ProvisionError(TargetError):
    """The target file is right, but its ``provision.command`` failed or printed what cannot
    be used: the run started and stopped (its reports say why), unlike a mistake in the file."""


@dataclass(frozen=True)
class Account:
    role: str
    username: str
    email: str | None = None
    user_id: str | None = None
    token: str | None = None


@dataclass(frozen=True)
class Auth:
    transport: str = "query"
    name: str = ""
    scheme: str = "Bearer"
    algorithm: str = "HS256"
    secret: str | None = None
    claims: Mapping[str, Any] = field(
        default_factory=lambda: {"sub": "{user_id}", "exp": "{exp}", "iat": "{iat}"}
    )
    lifetime: int = 600

    @property
    def param_name(self) -> str:
        """The cookie, query parameter or header name (with its per-transport default)."""
        if self.name:
            return self.name
        return {"header": "Authorization", "cookie": "JWT", "query": "token"}.get(
            self.transport, ""
        )


@dataclass(frozen=True)
class Load:
    """``[load]``: the sizes of the delivery-under-load tests (LOAD-*). The defaults make a busy
    room (10 senders, 1,000 events in a burst, 5 more receivers) that the bundled server takes
    in well under a second, and a lag that outgrows the operating system's socket buffers."""

    #: Connections sending at once; each also receives the whole burst.
    senders: int = 10
    #: Messages each sender sends.
    messages: int = 100
    #: Connections that only read (on top of the senders).
    receivers: int = 5
    #: Characters of each message body (at most ``limits.max_length``; by default 200, or the
    #: length limit when it is lower).
    body_length: int = 200
    #: Messages per second per sender; None: a burst, each sender as fast as it can.
    rate: float | None = None
    #: Seconds the lagging reader stops reading (at least; it resumes once the flood is out).
    lag: float = 0.5
    #: Bytes of events the room carries while the reader lags: past the operating system's
    #: socket buffers (Linux: up to 4 MiB a socket by default), so the server must buffer them
    #: itself, or close the reader.
    lag_bytes: int = 6 * 1024 * 1024

    @property
    def total(self) -> int:
        """Events in one burst."""
        return self.senders * self.messages


#: The shortest load message: it carries the test's tag, its sender and its number.
MIN_BODY = 48
#: Bounds of ``[load]``: a run stays bounded in connections, events and bytes.
LOAD_BOUNDS: dict[str, tuple[float, float]] = {
    "senders": (1, 200),
    "messages": (1, 10_000),
    "receivers": (0, 200),
    "body_length": (MIN_BODY, 1_000_000),
    "rate": (0.1, 100_000),
    "lag": (0.1, 60),
    "lag_bytes": (64 * 1024, 256 * 1024 * 1024),
}
#: At most this many events in one burst (``senders`` x ``messages``).
MAX_BURST_EVENTS = 100_000
#: At most this many deliveries in one burst (events x connections): the harness keeps each.
MAX_DELIVERIES = 2_000_000


@dataclass(frozen=True)
class Target:
    url: str
    auth: Auth
    accounts: Mapping[str, Account]
    rooms: Mapping[str, str]
    origin: str | None = None
    connect_timeout: float = 5.0
    receive_timeout: float = 5.0
    #: ``[limits] max_length``; without it, the seed's limit (:data:`spec.MAX_LENGTH`).
    max_length: int = spec.MAX_LENGTH
    max_frame_bytes: int | None = None
    #: ``[limits] max_frames_per_second``: the frames a second the server takes on one
    #: connection (an open rate limit); the harness paces itself under it. None: unknown (the
    #: preflight looks for one).
    max_frames_per_second: float | None = None
    #: The harness's own bounds on what a server may make it hold (``[limits]``): the largest
    #: frame it accepts, and the frames and bytes it keeps per connection for later checks.
    max_received_frame_bytes: int = MAX_RECEIVED_FRAME_BYTES
    max_buffered_frames: int = MAX_BUFFERED_FRAMES
    max_buffered_bytes: int = MAX_BUFFERED_BYTES
    refusal: str = "any"
    provision_command: str | None = None
    restart_command: str | None = None
    examples: int = 25
    #: Seconds each property test may spend drawing examples (None: 2 x receive_timeout).
    property_budget: float | None = None
    source: str = "<bundled reference server>"
    restart_hook: Callable[[], object] | None = field(default=None, compare=False, repr=False)
    #: ``[headers]``: sent with every handshake (a gateway's API key, Basic auth); their values
    #: are secrets, redacted everywhere.
    headers: Mapping[str, str] = field(default_factory=dict)
    #: ``[tls]``: how to speak TLS to a ``wss://`` url.
    tls: Tls = field(default_factory=Tls)
    #: ``nodes``: the deployment's nodes one by one (URL templates like ``url``); connections
    #: are spread round-robin across them. Empty: every connection goes to ``url``.
    nodes: tuple[str, ...] = ()
    #: ``[load]``: the sizes of the delivery-under-load tests.
    load: Load = field(default_factory=Load)
    #: ``[asgi] app``: an ASGI application (``package.module:attribute``) driven in-process,
    #: with no socket (:mod:`harness.asgi`); ``url`` then gives the path and the Host only.
    asgi_app: str | None = None

    @property
    def endpoints(self) -> tuple[str, ...]:
        """Where connections go, in round-robin order: the nodes, else ``url`` alone."""
        return self.nodes or (self.url,)

    @property
    def lacking(self) -> frozenset[str]:
        """What catalogue requirements may ``need`` that this target does not offer: ``nodes``
        unless it names two or more; ``network`` for an in-process ``[asgi]`` application;
        ``twin`` without ``rooms.twin_host`` (another host's room of the main room's slug)."""
        lacking = set() if len(self.nodes) >= 2 else {"nodes"}
        if self.asgi_app is not None:
            lacking.add("network")
        if "twin_host" not in self.rooms:
            lacking.add("twin")
        return frozenset(lacking)

    @property
    def label(self) -> str:
        """How reports name the target: its URL template, or ``asgi:`` and the application."""
        return f"asgi:{self.asgi_app}" if self.asgi_app is not None else self.url

    @property
    def secure(self) -> bool:
        return urlsplit(self.url).scheme == "wss"

    @property
    def server_name(self) -> str:
        """The name the server's certificate must have: ``tls.server_name``, else the host."""
        return self.tls.server_name or self.address[0]

    @property
    def warnings(self) -> list[str]:
        """What a run against this target must say loudly (``tls.verify = false``)."""
        warning = self.tls.warning if self.secure else None
        return [warning] if warning else []

    @property
    def properties_budget_s(self) -> float:
        """Seconds a property test may spend on examples: ``properties.time_budget``, else
        twice ``receive_timeout`` (README, "Timeouts and budgets")."""
        if self.property_budget is not None:
            return self.property_budget
        return 2 * self.receive_timeout

    @property
    def host_name(self) -> str:
        """The username of the host of the rooms of [rooms] (``accounts.host``)."""
        return self.accounts["host"].username

    def url_for(self, room: str, host: str | None = None, node: int = 0) -> str:
        """The endpoint for a room slug (``room``) of ``host`` (default: the host account), on
        ``node`` (an index into :attr:`endpoints`, taken round-robin)."""
        host_name = host if host is not None else self.accounts["host"].username
        template = self.endpoints[node % len(self.endpoints)]
        return template.replace("{host}", host_name).replace("{room}", room)

    @property
    def address(self) -> tuple[str, int]:
        """Host and port of the first endpoint."""
        return address_of(self.endpoints[0])

    def node_address(self, node: int) -> tuple[str, int]:
        """Host and port of endpoint ``node`` (round-robin)."""
        return address_of(self.endpoints[node % len(self.endpoints)])

    def node_label(self, node: int) -> str:
        """How a report names endpoint ``node``: ``node 2 (127.0.0.1:8001)``; "" without
        ``nodes``."""
        if not self.nodes:
            return ""
        host, port = self.node_address(node)
        return f"node {node % len(self.nodes) + 1} ({host}:{port})"

    @property
    def can_restart(self) -> bool:
        return self.restart_hook is not None or bool(self.restart_command)

    def restart(self) -> None:
        if self.restart_hook is not None:
            self.restart_hook()
        elif self.restart_command:
            run_command(self.restart_command, "restart.command", timeout=60.0)


def address_of(url: str) -> tuple[str, int]:
    """Host and port of an endpoint template (the scheme's port when it names none)."""
    parts = urlsplit(url.replace("{host}", "h").replace("{room}", "r"))
    default = 443 if parts.scheme == "wss" else 80
    return parts.hostname or "localhost", parts.port or default


# --- parsing ------------------------------------------------------------------------------

_SCHEMA: dict[str, Any] = {
    "url": str,
    "nodes": list,
    "origin": str,
    "connect_timeout": float,
    "receive_timeout": float,
    "auth": {
        "transport": str,
        "name": str,
        "scheme": str,
        "algorithm": str,
        "secret": str,
        "claims": dict,
        "lifetime": int,
    },
    "accounts": {
        "*": {"username": str, "email": str, "user_id": str, "token": str},
    },
    "rooms": {"main": str, "other": str, "missing": str, "twin_host": str},
    "limits": {
        "max_length": int,
        "max_frame_bytes": int,
        "max_frames_per_second": float,
        "max_received_frame_bytes": int,
        "max_buffered_frames": int,
        "max_buffered_bytes": int,
    },
    "expect": {"refusal": str},
    "provision": {"command": str},
    "restart": {"command": str},
    "properties": {"examples": int, "time_budget": float},
    "headers": {"*": str},
    "load": {
        "senders": int,
        "messages": int,
        "receivers": int,
        "body_length": int,
        "rate": float,
        "lag": float,
        "lag_bytes": int,
    },
    "tls": {
        "ca_file": str,
        "verify": bool,
        "client_cert": str,
        "client_key": str,
        "server_name": str,
    },
    "asgi": {"app": str},
}
#: The endpoint template of an ``[asgi]`` target without ``url``: the seed's path; the host
#: Starlette's and Django's test clients use.
ASGI_URL = "ws://testserver/ws/chat/{host}/{room}"
#: Keys that mean nothing without a network: refused beside ``[asgi]``, with why.
_NOT_WITH_ASGI = {
    "nodes": "one application in-process is one node",
    "tls": "there is no socket to speak TLS on",
    "restart": "there is no server process to restart",
}


def _fail(where: str, key: str, message: str) -> TargetError:
    return TargetError(f"{where}: {key}: {message}" if key else f"{where}: {message}")


def _type_name(kind: type) -> str:
    return {
        str: "a string",
        list: "an array",
        float: "a number",
        int: "an integer",
        dict: "a table",
        bool: "true or false",
    }[kind]


def _check(data: Mapping[str, Any], schema: Mapping[str, Any], prefix: str, where: str) -> None:
    for key, value in data.items():
        path = f"{prefix}{key}"
        if key in schema:
            expected = schema[key]
        elif "*" in schema:
            expected = schema["*"]
        else:
            close = difflib.get_close_matches(key, [k for k in schema if k != "*"], n=1)
            hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
            raise _fail(where, path, f"unknown key{hint}")
        if expected is list:
            if not isinstance(value, list):
                raise _fail(where, path, f"must be an array of strings, not {value!r}")
        elif isinstance(expected, dict):
            if not isinstance(value, dict):
                raise _fail(where, path, f"must be a table, not {type(value).__name__}")
            _check(value, expected, f"{path}.", where)
        elif expected is float:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise _fail(where, path, f"must be a number, not {value!r}")
            if not math.isfinite(value) or value <= 0:
                raise _fail(where, path, f"must be positive and finite, not {value!r}")
        elif expected is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise _fail(where, path, f"must be an integer, not {value!r}")
        elif expected is bool:
            if not isinstance(value, bool):
                raise _fail(where, path, f"must be true or false, not {value!r}")
        elif not isinstance(value, expected):
            raise _fail(where, path, f"must be {_type_name(expected)}, not {value!r}")


def _expand_env(value: Any, path: str, where: str, env: Mapping[str, str]) -> Any:
    if isinstance(value, str):

        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                raise _fail(where, path, f"environment variable {name} is not set")
            return env[name]

        return _ENV.sub(sub, value)
    if isinstance(value, dict):
        return {
            k: _expand_env(v, f"{path}.{k}" if path else k, where, env) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_expand_env(v, f"{path}[{i}]", where, env) for i, v in enumerate(value)]
    return value


def parse(
    data: Mapping[str, Any],
    where: str = "target",
    env: Mapping[str, str] | None = None,
    base: Path | None = None,
) -> Target:
    """Check and build a :class:`Target` from a parsed TOML document. ``base``: the directory
    relative file names (``[tls]``) are resolved against (the target file's; default: the
    working directory)."""
    _check(data, _SCHEMA, "", where)
    data = _expand_env(dict(data), "", where, os.environ if env is None else env)
    asgi_app = _parse_asgi(data, where)
    if asgi_app is not None and "url" not in data:
        data = {**data, "url": ASGI_URL}
    nodes = _parse_nodes(data.get("nodes"), where)
    if "url" not in data and not nodes:
        raise _fail(
            where, "url", "missing (the endpoint template, e.g. ws://host/ws/chat/{host}/{room})"
        )
    url = data.get("url", nodes[0] if nodes else "")
    _check_endpoint(url, "url", where)
    scheme = urlsplit(url).scheme
    for i, node in enumerate(nodes):
        if urlsplit(node).scheme != scheme:
            raise _fail(
                where, f"nodes[{i}]", f"must use {scheme}:// as url does (one [tls] for all)"
            )

    auth_data = dict(data.get("auth", {}))
    transport = auth_data.get("transport", "query")
    if transport not in TRANSPORTS:
        raise _fail(
            where, "auth.transport", f"must be one of {', '.join(TRANSPORTS)}, not {transport!r}"
        )
    claims = auth_data.get("claims", {"sub": "{user_id}", "exp": "{exp}", "iat": "{iat}"})
    for claim, template in claims.items():
        if isinstance(template, str):
            for name in _PLACEHOLDER.findall(template):
                if name not in PLACEHOLDERS:
                    raise _fail(
                        where,
                        f"auth.claims.{claim}",
                        f"unknown placeholder {{{name}}} (known: {', '.join(PLACEHOLDERS)})",
                    )
    lifetime = auth_data.get("lifetime", 600)
    if lifetime <= 0:
        raise _fail(where, "auth.lifetime", f"must be positive, not {lifetime}")
    auth = Auth(
        transport=transport,
        name=auth_data.get("name", ""),
        scheme=auth_data.get("scheme", "Bearer"),
        algorithm=auth_data.get("algorithm", "HS256"),
        secret=auth_data.get("secret") or None,
        claims=claims,
        lifetime=lifetime,
    )
    redact.register(auth.secret)

    accounts: dict[str, Account] = {}
    for role, acc in data.get("accounts", {}).items():
        if role not in ROLES:
            close = difflib.get_close_matches(role, ROLES, n=1)
            hint = f" (did you mean 'accounts.{close[0]}'?)" if close else ""
            raise _fail(
                where, f"accounts.{role}", f"unknown account role{hint}; roles: {', '.join(ROLES)}"
            )
        if "username" not in acc:
            raise _fail(where, f"accounts.{role}.username", "missing")
        accounts[role] = Account(role=role, **acc)
        redact.register(acc.get("token"))
    rooms = dict(data.get("rooms", {}))
    if not data.get("provision", {}).get("command"):
        # With a provision command these may come from its output (checked after it ran).
        _check_fixtures(accounts, rooms, where)
        _check_usable(auth, accounts, where)

    refusal = data.get("expect", {}).get("refusal", "any")
    if refusal not in REFUSALS:
        raise _fail(
            where, "expect.refusal", f"must be one of {', '.join(REFUSALS)}, not {refusal!r}"
        )
    limits = data.get("limits", {})
    for key in (
        "max_length",
        "max_frame_bytes",
        "max_received_frame_bytes",
        "max_buffered_frames",
        "max_buffered_bytes",
    ):
        if key in limits and limits[key] < 1:
            raise _fail(where, f"limits.{key}", f"must be at least 1, not {limits[key]}")
    examples = data.get("properties", {}).get("examples", 25)
    if examples < 1:
        raise _fail(where, "properties.examples", "must be at least 1")
    budget = data.get("properties", {}).get("time_budget")
    if budget is not None and budget <= 0:
        raise _fail(where, "properties.time_budget", "must be more than 0 seconds")
    headers = _parse_headers(data.get("headers", {}), auth, where)
    tls = _parse_tls(data.get("tls", {}), scheme, where, base or Path.cwd())
    load = _parse_load(data.get("load", {}), limits.get("max_length", spec.MAX_LENGTH), where)
    return Target(
        url=url,
        auth=auth,
        accounts=accounts,
        rooms=rooms,
        origin=data.get("origin"),
        connect_timeout=float(data.get("connect_timeout", 5.0)),
        receive_timeout=float(data.get("receive_timeout", 5.0)),
        max_length=limits.get("max_length", spec.MAX_LENGTH),
        max_frame_bytes=limits.get("max_frame_bytes"),
        max_frames_per_second=_rate(limits, where),
        max_received_frame_bytes=limits.get("max_received_frame_bytes", MAX_RECEIVED_FRAME_BYTES),
        max_buffered_frames=limits.get("max_buffered_frames", MAX_BUFFERED_FRAMES),
        max_buffered_bytes=limits.get("max_buffered_bytes", MAX_BUFFERED_BYTES),
        refusal=refusal,
        provision_command=data.get("provision", {}).get("command"),
        restart_command=data.get("restart", {}).get("command"),
        examples=examples,
        property_budget=float(budget) if budget is not None else None,
        source=where,
        headers=headers,
        tls=tls,
        nodes=nodes,
        load=load,
        asgi_app=asgi_app,
    )


def _parse_asgi(data: Mapping[str, Any], where: str) -> str | None:
    """``[asgi] app``: checked for its shape here; imported when the run starts
    (:func:`harness.asgi.load_app`)."""
    section = data.get("asgi")
    if section is None:
        return None
    app = section.get("app")
    if not app:
        raise _fail(where, "asgi.app", "missing (the application, 'package.module:attribute')")
    module, sep, attr = app.partition(":")
    if not sep or not module or not attr:
        raise _fail(where, "asgi.app", f"must be 'package.module:attribute', not {app!r}")
    for key, why in _NOT_WITH_ASGI.items():
        if key in data:
            raise _fail(where, key, f"cannot be used with [asgi]: {why}")
    return str(app)


def _check_endpoint(url: str, key: str, where: str) -> None:
    """A ``ws://`` or ``wss://`` URL template with the ``{room}`` placeholder."""
    if urlsplit(url).scheme not in ("ws", "wss"):
        raise _fail(where, key, f"must start with ws:// or wss://, not {url!r}")
    if "{room}" not in url:
        raise _fail(where, key, "must contain the {room} placeholder")


def _parse_nodes(value: list[Any] | None, where: str) -> tuple[str, ...]:
    """``nodes``: endpoint templates, one per node, each like ``url``, none twice."""
    if value is None:
        return ()
    if not value:
        raise _fail(where, "nodes", "must name at least one node (or leave nodes out)")
    seen: set[str] = set()
    for i, node in enumerate(value):
        if not isinstance(node, str):
            raise _fail(where, f"nodes[{i}]", f"must be a string, not {node!r}")
        _check_endpoint(node, f"nodes[{i}]", where)
        if node in seen:
            raise _fail(where, f"nodes[{i}]", f"{node} is named twice")
        seen.add(node)
    return tuple(value)


def _rate(limits: Mapping[str, Any], where: str) -> float | None:
    """``limits.max_frames_per_second``: a number of at least 1, or absent."""
    rate = limits.get("max_frames_per_second")
    if rate is None:
        return None
    if rate < 1:
        raise _fail(where, "limits.max_frames_per_second", f"must be at least 1, not {rate}")
    return float(rate)


def _parse_load(data: Mapping[str, Any], max_length: int, where: str) -> Load:
    """``[load]``: each size within :data:`LOAD_BOUNDS`, a body that fits the target's length
    limit, at most :data:`MAX_BURST_EVENTS` events in a burst."""
    for key, value in data.items():
        low, high = LOAD_BOUNDS[key]
        if not low <= value <= high:
            raise _fail(where, f"load.{key}", f"must be within {low:g}-{high:g}, not {value!r}")
    sizes: dict[str, Any] = {k: float(v) if k in ("rate", "lag") else v for k, v in data.items()}
    sizes.setdefault("body_length", min(Load.body_length, max_length))
    load = Load(**sizes)
    if load.body_length > max_length:
        raise _fail(
            where,
            "load.body_length",
            f"{load.body_length} is over the length limit ({max_length}): the server would "
            "answer every message with an error",
        )
    if load.total > MAX_BURST_EVENTS:
        raise _fail(
            where,
            "load.messages",
            f"senders x messages is {load.total:,}; at most {MAX_BURST_EVENTS:,} events a burst",
        )
    deliveries = load.total * (load.senders + load.receivers)
    if deliveries > MAX_DELIVERIES:
        raise _fail(
            where,
            "load.receivers",
            f"a burst of {load.total:,} events to {load.senders + load.receivers} connections is "
            f"{deliveries:,} deliveries; at most {MAX_DELIVERIES:,} (the harness keeps each)",
        )
    return load


def _parse_headers(data: Mapping[str, str], auth: Auth, where: str) -> dict[str, str]:
    """``[headers]``: valid names, none the handshake or the token transport sets, values on
    one line. Every value is registered as a secret (redacted wherever it would appear)."""
    taken = dict(_HANDSHAKE_HEADERS)
    if auth.transport == "header":
        taken[auth.param_name.lower()] = "auth.transport = header (the token's header)"
    if auth.transport == "cookie":
        taken["cookie"] = "auth.transport = cookie (the token's cookie)"
    headers: dict[str, str] = {}
    for name, value in data.items():
        key = f"headers.{name}"
        if not _HEADER_NAME.match(name):
            raise _fail(where, key, "is not a valid HTTP header name")
        if name.lower() in taken:
            raise _fail(where, key, f"is set by {taken[name.lower()]}; it cannot be set here")
        if "\r" in value or "\n" in value or "\0" in value:
            raise _fail(where, key, "the value must be one line")
        if any(other.lower() == name.lower() for other in headers):
            raise _fail(where, key, "given twice (header names ignore case)")
        headers[name] = value
        redact.register_header(value)
    return headers


def _parse_tls(data: Mapping[str, Any], scheme: str, where: str, base: Path) -> Tls:
    """``[tls]``: files exist (relative to the target file), a key goes with a certificate,
    and the settings load (a CA file, a client certificate and its key)."""
    if not data:
        return Tls()
    if scheme != "wss":
        first = next(iter(data))
        raise _fail(where, f"tls.{first}", "applies to wss:// URLs only; url is ws://")
    files: dict[str, str | None] = {}
    for key in ("ca_file", "client_cert", "client_key"):
        value = data.get(key)
        if value is None:
            files[key] = None
            continue
        path = (base / Path(value).expanduser()).resolve()
        if not path.is_file():
            raise _fail(where, f"tls.{key}", f"no such file: {path}")
        files[key] = str(path)
    if files["client_key"] and not files["client_cert"]:
        raise _fail(where, "tls.client_key", "needs tls.client_cert (the certificate it signs)")
    server_name = data.get("server_name")
    if server_name is not None and not server_name.strip():
        raise _fail(where, "tls.server_name", "must not be empty")
    tls = Tls(
        ca_file=files["ca_file"],
        verify=data.get("verify", True),
        client_cert=files["client_cert"],
        client_key=files["client_key"],
        server_name=server_name,
    )
    try:
        tls.context()
    except TlsError as exc:
        raise TargetError(f"{where}: {exc}") from None
    return tls


def run_command(command: str, key: str, timeout: float) -> str:
    """Run a target-file command (``provision.command``, ``restart.command``); its stdout."""
    try:
        done = subprocess.run(
            shlex.split(command), capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError as exc:
        raise TargetError(f"{key}: command not found: {exc.filename}") from None
    except subprocess.TimeoutExpired:
        raise TargetError(f"{key}: command did not finish within {timeout:.0f} s") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise TargetError(f"{key}: command exited {done.returncode}: {redact.redact(last)}")
    return done.stdout


def apply_provision(target: Target, output: str) -> Target:
    """Merge the JSON a provision command printed (``accounts`` and ``rooms``) into ``target``."""
    try:
        data = json.loads(output)
    except json.JSONDecodeError as exc:
        raise TargetError(f"provision.command: output is not JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise TargetError("provision.command: output must be a JSON object")
    accounts = dict(target.accounts)
    for role, values in (data.get("accounts") or {}).items():
        if role not in ROLES:
            raise TargetError(
                f"provision.command: accounts.{role}: unknown account role; roles: "
                + ", ".join(ROLES)
            )
        if not isinstance(values, dict):
            raise TargetError(f"provision.command: accounts.{role} must be an object")
        known = {"username", "email", "user_id", "token"}
        values = {k: (str(v) if v is not None else None) for k, v in values.items() if k in known}
        redact.register(values.get("token"))
        base = accounts.get(role)
        if base is None:
            if "username" not in values:
                raise TargetError(f"provision.command: accounts.{role}.username missing")
            accounts[role] = Account(role=role, **values)
        else:
            accounts[role] = replace(base, **values)
    rooms = dict(target.rooms)
    for key, slug in (data.get("rooms") or {}).items():
        if key not in ROOM_ROLES:
            raise TargetError(
                f"provision.command: rooms.{key}: unknown room key; keys: {', '.join(ROOM_ROLES)}"
            )
        rooms[key] = str(slug)
    return replace(target, accounts=accounts, rooms=rooms)


def _check_fixtures(
    accounts: Mapping[str, Account], rooms: Mapping[str, str], where: str, after: str = ""
) -> None:
    """The accounts and room every suite needs are named (by the file or its provision)."""
    for role in ("host", "member"):
        if role not in accounts:
            raise _fail(
                where,
                f"accounts.{role}",
                f"missing{after} (the room host and one participant are required)",
            )
    if "main" not in rooms:
        raise _fail(where, "rooms.main", f"missing{after} (the slug of a room of the host)")


def _check_usable(auth: Auth, accounts: Mapping[str, Account], where: str, after: str = "") -> None:
    """Every account can connect: a target where none can would make every test skip.

    With ``auth.secret`` the harness mints each account's tokens from ``auth.claims``, so every
    placeholder of the claims must be fillable from every account; without it, every account
    needs its own ``token``.
    """
    if auth.secret:
        for claim, template in auth.claims.items():
            if not isinstance(template, str):
                continue
            for name in _PLACEHOLDER.findall(template):
                if name not in ("username", "email", "user_id"):
                    continue  # exp, iat: the harness's own
                lacking = [role for role, acc in accounts.items() if getattr(acc, name) is None]
                if lacking:
                    raise _missing(
                        where,
                        lacking,
                        name,
                        f"{after}{{more}}; auth.claims.{claim} = {template!r} needs it to mint the "
                        f"account's tokens (give every account a {name}, or change the claim)",
                    )
        return
    lacking = [role for role, acc in accounts.items() if not acc.token]
    if lacking:
        raise _missing(
            where,
            lacking,
            "token",
            f"{after}{{more}}, and there is no auth.secret to mint one (give every account a "
            "token, or give auth.secret)",
        )


def _missing(where: str, roles: list[str], name: str, why: str) -> TargetError:
    """``accounts.<first of roles>.<name>: missing<why>``; ``{more}`` in ``why`` says how many
    other accounts lack it too."""
    more = f" (and {len(roles) - 1} more accounts)" if len(roles) > 1 else ""
    return _fail(where, f"accounts.{roles[0]}.{name}", "missing" + why.replace("{more}", more))


def load(path: str | Path, env: Mapping[str, str] | None = None) -> Target:
    """Read, check and (with ``[provision]``) complete a target file."""
    try:
        data = read_toml(path, "target file")
    except TomlFileError as exc:
        raise TargetError(str(exc)) from None
    target = parse(data, str(path), env, base=Path(path).resolve().parent)
    if target.provision_command:
        try:
            out = run_command(target.provision_command, "provision.command", timeout=120.0)
            target = apply_provision(target, out)
            after = " from the file and from the output of provision.command"
            _check_fixtures(target.accounts, target.rooms, str(path), after=after)
            _check_usable(target.auth, target.accounts, str(path), after=after)
        except TargetError as exc:
            raise ProvisionError(str(exc)) from None
    return target


def refuse_bare_url(value: str) -> TargetError:
    return TargetError(
        f"--target {value}: a URL alone is not enough; write a target file naming the accounts, "
        "rooms and token settings as well (see targets/example.toml)"
    )


# --- handing a loaded target to another process -------------------------------------------


def to_data(target: Target) -> dict[str, Any]:
    """A loaded (and provisioned) target as plain data, for pytest-xdist workers: they get the
    target the controller loaded instead of loading it (and running its commands) again."""
    return {
        "url": target.url,
        "auth": {**asdict(target.auth), "claims": dict(target.auth.claims)},
        "accounts": {role: asdict(acc) for role, acc in target.accounts.items()},
        "rooms": dict(target.rooms),
        "origin": target.origin,
        "connect_timeout": target.connect_timeout,
        "receive_timeout": target.receive_timeout,
        "max_length": target.max_length,
        "max_frame_bytes": target.max_frame_bytes,
        "max_frames_per_second": target.max_frames_per_second,
        "max_received_frame_bytes": target.max_received_frame_bytes,
        "max_buffered_frames": target.max_buffered_frames,
        "max_buffered_bytes": target.max_buffered_bytes,
        "refusal": target.refusal,
        "provision_command": target.provision_command,
        "restart_command": target.restart_command,
        "examples": target.examples,
        "property_budget": target.property_budget,
        "source": target.source,
        "headers": dict(target.headers),
        "tls": asdict(target.tls),
        "nodes": list(target.nodes),
        "load": asdict(target.load),
        "asgi_app": target.asgi_app,
    }


def from_data(data: Mapping[str, Any]) -> Target:
    """The inverse of :func:`to_data`; registers the secrets it carries for redaction."""
    auth = Auth(**data["auth"])
    accounts = {role: Account(**acc) for role, acc in data["accounts"].items()}
    redact.register(auth.secret)
    for acc in accounts.values():
        redact.register(acc.token)
    for value in data.get("headers", {}).values():
        redact.register_header(value)
    fields = {
        k: v for k, v in data.items() if k not in ("auth", "accounts", "tls", "nodes", "load")
    }
    return Target(
        auth=auth,
        accounts=accounts,
        tls=Tls(**data.get("tls", {})),
        nodes=tuple(data.get("nodes", ())),
        load=Load(**data.get("load", {})),
        **fields,
    )
