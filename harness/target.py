"""The target file: one TOML file that points the suites at a server.

The keys are a contract (see README, "Target file reference"), described by one JSON Schema,
``schemas/target.json``, which editors can use too. A bad file stops the run before any test
with one line that names the key: :class:`TargetError`. This module is the target as a value,
and reading it runs nothing: :mod:`harness.commands` runs its ``[provision]`` and ``[restart]``
commands. :mod:`harness.targetcheck` holds the checks of single keys.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints
from urllib.parse import urlsplit

from harness import redact, spec
from harness import targetcheck as check
from harness.targetcheck import ProvisionError as ProvisionError
from harness.targetcheck import TargetError as TargetError
from harness.tomlfile import TomlFileError, read_toml
from harness.wire.tls import Tls as Tls

ROLES = ("host", "member", "member2", "outsider")
ROOM_ROLES = ("main", "other", "missing", "twin_host")
#: Defaults of the harness's own resource bounds (README, "Bounded resources").
MAX_RECEIVED_FRAME_BYTES = 1024 * 1024
MAX_BUFFERED_FRAMES = 10_000
MAX_BUFFERED_BYTES = 16 * 1024 * 1024
#: The endpoint template of an ``[asgi]`` target without ``url``: the seed's path; the host
#: Starlette's and Django's test clients use.
ASGI_URL = "ws://testserver/ws/chat/{host}/{room}"


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
    #: Seconds each flood (the burst, the lag's flood, RECON-002's) may take to be served at the
    #: pace the preflight measured: a slower server gets fewer messages a sender, or more
    #: senders, and a flood paced by its readers still sending after 2.5 times it stops there
    #: (README, "Timeouts and budgets").
    time_budget: float = 2.0

    @property
    def total(self) -> int:
        """Events in one burst."""
        return self.senders * self.messages


#: The shortest load message: it carries the test's tag, its sender and its number.
MIN_BODY = 48
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
    #: ``[conversations]``: sequences the stateful suite draws, steps per sequence, and the
    #: seconds it may spend (None: 2 x receive_timeout).
    sequences: int = 50
    sequence_steps: int = 10
    conversation_budget: float | None = None
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
    def conversations_budget_s(self) -> float:
        """Seconds the conversation suite may spend drawing sequences (as many again for
        shrinking a failing one): ``conversations.time_budget``, else twice
        ``receive_timeout``."""
        if self.conversation_budget is not None:
            return self.conversation_budget
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


def address_of(url: str) -> tuple[str, int]:
    """Host and port of an endpoint template (the scheme's port when it names none)."""
    parts = urlsplit(url.replace("{host}", "h").replace("{room}", "r"))
    default = 443 if parts.scheme == "wss" else 80
    return parts.hostname or "localhost", parts.port or default


# --- parsing ------------------------------------------------------------------------------

#: The :class:`Target` fields that are one key of the file each, as they are: field -> key.
_KEYS = {
    "origin": "origin",
    "connect_timeout": "connect_timeout",
    "receive_timeout": "receive_timeout",
    "max_length": "limits.max_length",
    "max_frame_bytes": "limits.max_frame_bytes",
    "max_frames_per_second": "limits.max_frames_per_second",
    "max_received_frame_bytes": "limits.max_received_frame_bytes",
    "max_buffered_frames": "limits.max_buffered_frames",
    "max_buffered_bytes": "limits.max_buffered_bytes",
    "refusal": "expect.refusal",
    "provision_command": "provision.command",
    "restart_command": "restart.command",
    "examples": "properties.examples",
    "property_budget": "properties.time_budget",
    "sequences": "conversations.sequences",
    "sequence_steps": "conversations.steps",
    "conversation_budget": "conversations.time_budget",
}


def parse(
    data: Mapping[str, Any],
    where: str = "target",
    env: Mapping[str, str] | None = None,
    base: Path | None = None,
) -> Target:
    """Check and build a :class:`Target` from a parsed TOML document: the schema first
    (:func:`harness.targetcheck.checked`), then what involves several keys. ``base``: the
    directory relative file names (``[tls]``) are resolved against (the target file's;
    default: the working directory)."""
    data = check.checked(data, where, os.environ if env is None else env)
    asgi_app = check.asgi_app(data, where)
    if asgi_app is not None:
        data.setdefault("url", ASGI_URL)
    url, nodes = check.endpoints(data, where)
    auth = _auth(data.get("auth", {}), where)
    accounts = {role: Account(role, **acc) for role, acc in data.get("accounts", {}).items()}
    for account in accounts.values():
        redact.register(account.token)
    rooms = dict(data.get("rooms", {}))
    if not data.get("provision", {}).get("command"):
        # With a provision command these may come from its output (checked after it ran).
        check_fixtures(auth, accounts, rooms, where)
    values = {name: _at(data, key) for name, key in _KEYS.items()}
    max_length = spec.MAX_LENGTH if values["max_length"] is None else values["max_length"]
    return Target(
        url=url,
        auth=auth,
        accounts=accounts,
        rooms=rooms,
        source=where,
        headers=check.headers(data.get("headers", {}), auth.transport, auth.param_name, where),
        tls=check.tls(data.get("tls", {}), urlsplit(url).scheme, where, base or Path.cwd()),
        nodes=nodes,
        load=_load(data.get("load", {}), max_length, where),
        asgi_app=asgi_app,
        **_floats(Target, {k: v for k, v in values.items() if v is not None}),
    )


def _at(data: Mapping[str, Any], key: str) -> Any:
    """The value at a dotted key, None when absent."""
    value: Any = data
    for part in key.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _floats(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` with the integers of ``cls``'s float fields made floats (TOML's ``5`` is
    ``5.0`` for a number of seconds)."""
    hints = _hints(cls)
    return {
        k: float(v) if float in (hints[k], *get_args(hints[k])) and isinstance(v, int) else v
        for k, v in values.items()
    }


@cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def _auth(data: Mapping[str, Any], where: str) -> Auth:
    """``[auth]``: its placeholders known; an empty secret is none. The secret is registered
    for redaction."""
    check.check_claims(data.get("claims", {}), where)
    auth = Auth(**{**data, "secret": data.get("secret") or None})
    redact.register(auth.secret)
    return auth


def _load(data: Mapping[str, Any], max_length: int, where: str) -> Load:
    """``[load]`` (each size within the schema's bounds): a body that fits the target's length
    limit, at most :data:`MAX_BURST_EVENTS` events and :data:`MAX_DELIVERIES` deliveries."""
    load = Load(**_floats(Load, {"body_length": min(Load.body_length, max_length), **data}))
    if load.body_length > max_length:
        raise check.fail(
            where,
            "load.body_length",
            f"{load.body_length} is over the length limit ({max_length}): the server would "
            "answer every message with an error",
        )
    if load.total > MAX_BURST_EVENTS:
        raise check.fail(
            where,
            "load.messages",
            f"senders x messages is {load.total:,}; at most {MAX_BURST_EVENTS:,} events a burst",
        )
    deliveries = load.total * (load.senders + load.receivers)
    if deliveries > MAX_DELIVERIES:
        raise check.fail(
            where,
            "load.receivers",
            f"a burst of {load.total:,} events to {load.senders + load.receivers} connections is "
            f"{deliveries:,} deliveries; at most {MAX_DELIVERIES:,} (the harness keeps each)",
        )
    return load


def check_fixtures(
    auth: Auth,
    accounts: Mapping[str, Account],
    rooms: Mapping[str, str],
    where: str,
    after: str = "",
) -> None:
    """The accounts and room every suite needs are named (by the file or, ``after``, its
    provision), and every account can connect: a target where none can would make every test
    skip.

    With ``auth.secret`` the harness mints each account's tokens from ``auth.claims``, so every
    placeholder of the claims must be fillable from every account; without it, every account
    needs its own ``token``.
    """
    for role in ("host", "member"):
        if role not in accounts:
            why = f"missing{after} (the room host and one participant are required)"
            raise check.fail(where, f"accounts.{role}", why)
    if "main" not in rooms:
        raise check.fail(where, "rooms.main", f"missing{after} (the slug of a room of the host)")
    if not auth.secret:
        lacking = [role for role, acc in accounts.items() if not acc.token]
        if lacking:
            raise _missing(
                where,
                lacking,
                "token",
                f"{after}{{more}}, and there is no auth.secret to mint one (give every account a "
                "token, or give auth.secret)",
            )
        return
    for claim, template in auth.claims.items():
        for name in check.claimed(template):
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


def _missing(where: str, roles: list[str], name: str, why: str) -> TargetError:
    """``accounts.<first of roles>.<name>: missing<why>``; ``{more}`` in ``why`` says how many
    other accounts lack it too."""
    more = f" (and {len(roles) - 1} more accounts)" if len(roles) > 1 else ""
    return check.fail(where, f"accounts.{roles[0]}.{name}", "missing" + why.replace("{more}", more))


def load(path: str | Path, env: Mapping[str, str] | None = None) -> Target:
    """Read and check a target file. Nothing runs: its ``[provision] command`` is
    :func:`harness.commands.load_target`'s."""
    try:
        data = read_toml(path, "target file")
    except TomlFileError as exc:
        raise TargetError(str(exc)) from None
    return parse(data, str(path), env, base=Path(path).resolve().parent)


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


def refuse_bare_url(value: str) -> TargetError:
    return TargetError(
        f"--target {value}: a URL alone is not enough; write a target file naming the accounts, "
        "rooms and token settings as well (see targets/example.toml)"
    )


# --- handing a loaded target to another process -------------------------------------------


def to_data(target: Target) -> dict[str, Any]:
    """A loaded (and provisioned) target as plain data, for pytest-xdist workers: they get the
    target the controller loaded instead of loading it (and running its commands) again.

    Every field that is part of the value (``compare``: not ``restart_hook``, a callable of
    this process), nested dataclasses as dicts, mappings as dicts, tuples as lists."""
    data: dict[str, Any] = _plain(target)
    return data


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value) if f.compare}
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def from_data(data: Mapping[str, Any]) -> Target:
    """The inverse of :func:`to_data` (read from the field types); registers the secrets it
    carries for redaction."""
    target: Target = _build(Target, data)
    redact.register(target.auth.secret)
    for account in target.accounts.values():
        redact.register(account.token)
    for value in target.headers.values():
        redact.register_header(value)
    return target


def _build(cls: Any, data: Mapping[str, Any]) -> Any:
    hints = _hints(cls)
    return cls(
        **{f.name: _typed(hints[f.name], data[f.name]) for f in fields(cls) if f.name in data}
    )


def _typed(hint: Any, value: Any) -> Any:
    """``value`` (plain data) as a field typed ``hint``: a dataclass, a tuple, a mapping of
    dataclasses; anything else as it is."""
    if isinstance(hint, type) and is_dataclass(hint):
        return _build(hint, value)
    if get_origin(hint) is tuple:
        return tuple(value)
    if get_origin(hint) is Mapping and is_dataclass(get_args(hint)[1]):
        return {k: _build(get_args(hint)[1], v) for k, v in value.items()}
    return value
