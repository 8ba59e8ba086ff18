"""Server settings: one frozen dataclass, every knob a deployment may turn.

The seed leaves several details open (protocol notes: "Where the seed is loose"): where the token
travels, which claim names the user, how a refusal looks, the trailing slash, the timestamp style.
Each is a setting here so that the reference server can play any reasonable deployment.
"""

from __future__ import annotations

import difflib
import math
import ssl
from collections.abc import Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Final, Literal
from urllib.parse import urlsplit

import jwt

from reference_server.behaviour import Behaviour
from reference_server.faults import FAULTS, behaviour_for

# 64+ bytes: long enough for HS512 too (RFC 7518 3.2). Public: never use it in production. It
# lives here, not in ``demo``, because it is the default secret and demo builds on this module.
DEMO_SECRET: Final = "edusphere-demo-secret-not-for-production-0123456789abcdef0123456789abcdef"
TRANSPORTS: Final = ("cookie", "query", "header", "subprotocol")
CLAIM_KINDS: Final = ("id", "username", "email")
REFUSALS: Final = ("http", "close")
TRAILING_SLASH: Final = ("both", "with", "without")
BROKER_SCHEMES: Final = ("redis", "rediss")
TIMESTAMP_STYLES: Final = ("z-micro", "z-milli", "z-seconds", "offset-micro", "offset-seconds")
ALGORITHMS: Final = (
    "HS256",
    "HS384",
    "HS512",
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)

Transport = Literal["cookie", "query", "header", "subprotocol"]
ClaimKind = Literal["id", "username", "email"]
Refusal = Literal["http", "close"]
TrailingSlash = Literal["both", "with", "without"]
TimestampStyle = Literal["z-micro", "z-milli", "z-seconds", "offset-micro", "offset-seconds"]


_STATUSES: Final = frozenset(status.value for status in HTTPStatus)


class ConfigError(ValueError):
    """A setting is out of range; the message is one line naming it."""


@dataclass(frozen=True)
class ServerConfig:
    """Every setting of the reference server (docs/design.md, "Reference server API").

    ``demo`` seeds the demo users and rooms at start-up (see ``reference_server.demo``); the
    default ``secret`` is the public demo secret, so never expose a server that keeps it.
    """

    host: str = "127.0.0.1"
    port: int = 0
    database: str = "edusphere.sqlite3"
    algorithm: str = "HS256"
    secret: str = DEMO_SECRET
    user_claim: str = "sub"
    user_claim_kind: ClaimKind = "id"
    transports: frozenset[Transport] = frozenset(TRANSPORTS)
    token_name: str = "JWT"
    header_name: str = "Authorization"
    header_scheme: str = "Bearer"
    subprotocol_name: str | None = None
    refusal: Refusal = "http"
    refusal_status: int = 403
    refusal_close_code: int = 4403
    trailing_slash: TrailingSlash = "both"
    timestamp_style: TimestampStyle = "z-micro"
    max_length: int = 500
    max_frame_bytes: int = 65536
    faults: frozenset[str] = field(default_factory=frozenset)
    demo: bool = False
    latency_ms: tuple[float, float] | None = None
    """(LO, HI): every client data frame waits a delay drawn uniformly in [LO, HI] milliseconds
    before it is handled, one frame at a time per connection (``serve --latency``); None: none."""
    latency_seed: int | None = None
    """Seed of the server's latency draws (None: unseeded), so that a run can be reproduced."""
    tls_cert: str | None = None
    """PEM certificate (chain) file: serve ``wss://`` with it and ``tls_key``
    (``serve --tls-cert``)."""
    tls_key: str | None = None
    """PEM private key file of ``tls_cert`` (``serve --tls-key``)."""
    tls_client_ca: str | None = None
    """Mutual TLS: clients must present a certificate this CA file signed
    (``serve --tls-client-ca``)."""
    require_headers: tuple[tuple[str, str], ...] = ()
    """A gateway in front of the server: handshakes lacking any of these headers (name, value)
    are refused with HTTP 401 before anything else is looked at (``serve --require-header``)."""
    broker: str | None = None
    """``redis://HOST:PORT`` (or ``rediss://``): a node of a cluster, whose events go through
    this Redis broker's pub/sub to every node (``serve --broker``); None: one server alone,
    delivering to its own connections."""
    node_name: str | None = None
    """This node's name in logs and, as their origin, in its broker publications
    (``serve --node-name``); None: made up from the host name and process id."""
    ping_interval: float | None = None
    """Heartbeat: ping every client this often, in seconds (``serve --ping-interval``), as
    aiohttp's ``heartbeat=`` or uvicorn's ``--ws-ping-interval`` do; None: websockets' default
    (20 s)."""
    ping_timeout: float | None = None
    """Heartbeat: end (without a close frame, as aiohttp does) a connection whose pong has
    not come this many seconds after its ping, written or still queued behind data the client
    does not read (``serve --ping-timeout``); None: websockets' default (20 s). Either setting
    replaces websockets' keepalive with the server's own heartbeat."""
    idle_timeout: float | None = None
    """Close (1001, "idle") a connection that saw no data frame either way, from its client or
    to it, for this many seconds (``serve --idle-timeout``), as a load balancer's idle timeout
    (AWS ALB, nginx ``proxy_read_timeout``) does; None: never."""
    rate_limit: int | None = None
    """Accept at most this many data frames per connection within any 1 s (a sliding window,
    ``serve --rate-limit``); each frame over it is answered with ``rate_limit_error`` and
    dropped, as Slack's or Discord's gateways do; None: no limit."""
    rate_limit_error: str = "Rate limit exceeded. Slow down."
    """The error text answering a frame over ``rate_limit`` (``serve --rate-limit-error``)."""
    history: int | None = None
    """On connect, send ``{"type": "history", "messages": [...]}`` with the room's N most
    recent messages (``serve --history N``), as Rocket.Chat's or Mattermost's sockets replay a
    backlog; None: no history frame."""
    presence: bool = False
    """On connect, send ``{"type": "presence", "users": [...]}``, and tell the room's other
    connections of each join and leave (``serve --presence``), as Slack's ``presence_change``
    or Phoenix Presence do."""
    fragment: bool = False
    """Send every message in fragments (RFC 6455 5.4; ``serve --fragment``), as a re-framing
    proxy or a streaming server does."""
    compression: bool = False
    """Negotiate permessage-deflate (RFC 7692; ``serve --compression``), as most browsers'
    servers do; False: refuse it, as the reference server always did."""
    refusal_close_codes: tuple[int, int, int] | None = None
    """With ``refusal="close"``: the close code per cause (AUTH: no, bad or unknown-user token;
    PARTICIPANT: not a participant; ROOM: no such room), e.g. (4401, 4403, 4404) as HTTP-minded
    servers map 401 / 403 / 404 (``serve --refusal-codes``); None: ``refusal_close_code`` for
    every cause."""
    audience: str | None = None
    """Tokens must carry an ``aud`` claim naming this audience (``serve --audience``), as an
    API gateway or SimpleJWT's ``AUDIENCE`` checks; None: ``aud`` is not looked at."""
    behaviour: type[Behaviour] = field(init=False, repr=False, compare=False)
    """The decisions of this server: ``Behaviour`` with the overrides of ``faults``, resolved
    once here. The server makes one instance of it per start."""

    def __post_init__(self) -> None:
        # Accept any iterable for the set-valued fields, store frozensets.
        object.__setattr__(self, "transports", frozenset(self.transports))
        object.__setattr__(self, "faults", frozenset(self.faults))
        object.__setattr__(self, "require_headers", tuple(map(tuple, self.require_headers)))
        if self.latency_ms is not None:
            object.__setattr__(self, "latency_ms", _latency(self.latency_ms))
        if self.refusal_close_codes is not None:
            object.__setattr__(self, "refusal_close_codes", _close_codes(self.refusal_close_codes))
        _check(self)
        object.__setattr__(self, "behaviour", behaviour_for(self.faults))


def check_fault_names(names: Iterable[str]) -> None:
    """Raise ConfigError naming each unknown fault and the closest valid names: a misspelt
    fault must never be a silent no-op."""
    unknown = sorted({name for name in names if name not in FAULTS})
    if not unknown:
        return
    parts = []
    for name in unknown:
        close = difflib.get_close_matches(name, FAULTS, n=3, cutoff=0.6)
        parts.append(f"{name} (did you mean {' or '.join(close)}?)" if close else name)
    raise ConfigError(f"unknown fault: {', '.join(parts)}; the faults command lists them")


def _check(config: ServerConfig) -> None:
    def choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
        if value not in allowed:
            raise ConfigError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")

    choice("algorithm", config.algorithm, ALGORITHMS)
    choice("user_claim_kind", config.user_claim_kind, CLAIM_KINDS)
    choice("refusal", config.refusal, REFUSALS)
    choice("trailing_slash", config.trailing_slash, TRAILING_SLASH)
    choice("timestamp_style", config.timestamp_style, TIMESTAMP_STYLES)
    unknown = sorted(t for t in config.transports if t not in TRANSPORTS)
    if unknown or not config.transports:
        raise ConfigError(f"transports must be a non-empty subset of {', '.join(TRANSPORTS)}")
    check_fault_names(config.faults)
    if not config.secret:
        raise ConfigError("secret must not be empty")
    if not config.user_claim:
        raise ConfigError("user_claim must not be empty")
    if not config.token_name:
        raise ConfigError("token_name must not be empty")
    if not 0 <= config.port <= 65535:
        raise ConfigError(f"port must be within 0-65535; got {config.port}")
    if not 400 <= config.refusal_status <= 599 or config.refusal_status not in _STATUSES:
        raise ConfigError(
            f"refusal_status must be an HTTP error status; got {config.refusal_status}"
        )
    if not _is_refusal_close_code(config.refusal_close_code):
        raise ConfigError(
            f"refusal_close_code must be 1008 or within 3000-4999; got {config.refusal_close_code}"
        )
    _check_key(config.algorithm, config.secret)
    if config.max_length < 1:
        raise ConfigError(f"max_length must be at least 1; got {config.max_length}")
    if config.max_frame_bytes < 1024:
        raise ConfigError(f"max_frame_bytes must be at least 1024; got {config.max_frame_bytes}")
    if (config.tls_cert is None) != (config.tls_key is None):
        raise ConfigError("tls_cert and tls_key go together")
    if config.tls_client_ca is not None and config.tls_cert is None:
        raise ConfigError("tls_client_ca needs tls_cert and tls_key (mutual TLS is TLS)")
    server_tls_context(config)  # loads, or says which file does not
    for name, _ in config.require_headers:
        if not name or any(ch in name for ch in " :\r\n"):
            raise ConfigError(f"require_headers: {name!r} is not a header name")
    if config.broker is not None:
        _check_broker(config.broker)
    _check_habits(config)
    if config.node_name is not None and (
        not config.node_name or not config.node_name.isprintable() or " " in config.node_name
    ):
        raise ConfigError(f"node_name must be printable, without spaces; got {config.node_name!r}")


def _is_refusal_close_code(code: object) -> bool:
    """1008 (policy violation) or an application code (RFC 6455 7.4.2: 3000-4999)."""
    return (
        isinstance(code, int)
        and not isinstance(code, bool)
        and (code == 1008 or 3000 <= code <= 4999)
    )


def _close_codes(value: object) -> tuple[int, int, int]:
    """``refusal_close_codes`` (a tuple or list of three codes) as a tuple, each code valid."""
    problem = (
        "refusal_close_codes must be three close codes (AUTH, PARTICIPANT, ROOM), each 1008 or"
        f" within 3000-4999; got {value!r}"
    )
    if not isinstance(value, tuple | list) or len(value) != 3:
        raise ConfigError(problem)
    if not all(_is_refusal_close_code(code) for code in value):
        raise ConfigError(problem)
    auth, participant, room = value
    return auth, participant, room


def _check_habits(config: ServerConfig) -> None:
    """The real-world habits: heartbeat, idle close, rate limit, extra frames, framing,
    audience."""
    for name in ("ping_interval", "ping_timeout", "idle_timeout"):
        value = getattr(config, name)
        if value is None:
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not (math.isfinite(value) and value > 0)
        ):
            raise ConfigError(f"{name} must be a positive number of seconds; got {value!r}")
    for name in ("rate_limit", "history"):
        value = getattr(config, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ConfigError(f"{name} must be a whole number; got {value!r}")
        if value is not None and value < 1:
            raise ConfigError(f"{name} must be at least 1; got {value}")
    if not isinstance(config.rate_limit_error, str) or not config.rate_limit_error:
        raise ConfigError("rate_limit_error must not be empty")
    for name in ("presence", "fragment", "compression"):
        if not isinstance(getattr(config, name), bool):
            raise ConfigError(f"{name} must be True or False; got {getattr(config, name)!r}")
    if config.audience is not None and (
        not isinstance(config.audience, str) or not config.audience
    ):
        raise ConfigError(f"audience must be a non-empty string; got {config.audience!r}")


def _check_broker(url: str) -> None:
    """``broker`` is a Redis URL with a host (its password, if any, is never repeated)."""
    parts = urlsplit(url)
    problem = "broker must be a redis://HOST:PORT or rediss://HOST:PORT URL"
    if parts.scheme not in BROKER_SCHEMES:
        raise ConfigError(f"{problem}; got scheme {parts.scheme or 'none'!r}")
    if not parts.hostname:
        raise ConfigError(f"{problem}; it names no host")
    try:
        _ = parts.port  # a port that is not a number in 0-65535 raises here
    except ValueError:
        raise ConfigError(f"{problem}; its port is not a number within 0-65535") from None


def server_tls_context(config: ServerConfig) -> ssl.SSLContext | None:
    """The server's context: ``wss://`` with ``tls_cert`` / ``tls_key``, mutual TLS with
    ``tls_client_ca``; None without TLS. Raises ConfigError naming the file that does not load
    (the config is checked with it once, before the server listens)."""
    cert, key, client_ca = config.tls_cert, config.tls_key, config.tls_client_ca
    if cert is None or key is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"tls_cert / tls_key ({cert}, {key}) do not load: {exc}") from None
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        try:
            context.load_verify_locations(client_ca)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"tls_client_ca ({client_ca}) does not load: {exc}") from None
    return context


def _latency(value: object) -> tuple[float, float]:
    """``latency_ms`` (a tuple or list of two numbers) as two floats, 0 <= LO <= HI."""
    problem = f"latency_ms must be (LO, HI) milliseconds with 0 <= LO <= HI; got {value!r}"
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise ConfigError(problem)
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        raise ConfigError(problem)
    low, high = float(value[0]), float(value[1])
    if not (math.isfinite(high) and 0 <= low <= high):
        raise ConfigError(problem)
    return low, high


def _check_key(algorithm_name: str, secret: str) -> None:
    """The key must suit the algorithm: RFC 7518 3.2, "A key of the same size as the hash output
    (for instance, 256 bits for "HS256") or larger MUST be used"; a PEM key for RS/ES/PS/EdDSA."""
    try:
        algorithm = jwt.PyJWS().get_algorithm_by_name(algorithm_name)
        key = algorithm.prepare_key(secret)
    except NotImplementedError:
        raise ConfigError(f"algorithm {algorithm_name} needs pyjwt[crypto]") from None
    except (jwt.InvalidKeyError, ValueError, TypeError) as exc:
        raise ConfigError(f"secret is not a usable {algorithm_name} key: {exc}") from None
    problem = algorithm.check_key_length(key)
    if problem:
        raise ConfigError(f"secret too weak for {algorithm_name}: {problem}")
