"""Command line: ``python -m reference_server serve | provision | faults``.

Bad arguments give one line on stderr and exit status 2, never a traceback; a server that cannot
start (its port, its database, its broker) or a cluster whose node dies gives one line and exit
status 1. ``serve --nodes N --broker URL`` runs a cluster of N node processes
(``reference_server.cluster``).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import math
import os
import re
import signal
import sys
import time
import uuid
from collections.abc import Sequence
from typing import Any, NoReturn

import jwt

from harness.core.failures import UsageError
from reference_server.broker import BrokerError
from reference_server.cluster import ClusterError, run_cluster
from reference_server.config import (
    ALGORITHMS,
    CLAIM_KINDS,
    DEMO_SECRET,
    REFUSALS,
    TIMESTAMP_STYLES,
    TRAILING_SLASH,
    TRANSPORTS,
    ConfigError,
    ServerConfig,
    check_fault_names,
)
from reference_server.demo import demo_config
from reference_server.faults import fault_table
from reference_server.logs import configure
from reference_server.server import serve
from reference_server.store import (
    DatabaseError,
    Room,
    Store,
    User,
    is_postgres_url,
    open_store,
)

PROG = "python -m reference_server"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    parser = _Parser(prog=prog, description="EduSphere chat reference server")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    serve_cmd = commands.add_parser("serve", help="run the server until SIGINT / SIGTERM")
    serve_cmd.add_argument("--host", default="127.0.0.1")
    serve_cmd.add_argument(
        "--port",
        type=int,
        default=0,
        help="0: any free port (default); with --nodes, node K's is PORT+K-1",
    )
    serve_cmd.add_argument(
        "--db",
        default="edusphere.sqlite3",
        help="SQLite file, :memory:, or a postgresql://USER:PASSWORD@HOST:PORT/DBNAME URL",
    )
    serve_cmd.add_argument(
        "--demo", action="store_true", help="seed the demo users and rooms; demo secret by default"
    )
    serve_cmd.add_argument(
        "--fault", action="extend", nargs="+", default=[], metavar="NAME", help="see `faults`"
    )
    serve_cmd.add_argument("--refusal", choices=REFUSALS)
    serve_cmd.add_argument("--refusal-status", type=int)
    serve_cmd.add_argument("--refusal-close-code", type=int)
    serve_cmd.add_argument(
        "--refusal-codes",
        type=close_codes,
        metavar="AUTH,PARTICIPANT,ROOM",
        help="with --refusal close: the close code per cause (a bad token, not a participant,"
        " no such room), e.g. 4401,4403,4404",
    )
    serve_cmd.add_argument(
        "--audience", metavar="AUD", help="tokens must carry an aud claim naming AUD"
    )
    serve_cmd.add_argument("--algorithm", choices=ALGORITHMS)
    serve_cmd.add_argument(
        "--secret-env", metavar="VAR", help="environment variable holding the key (HS) or PEM"
    )
    serve_cmd.add_argument("--claim", help="claim naming the user (default sub)")
    serve_cmd.add_argument("--claim-kind", choices=CLAIM_KINDS)
    serve_cmd.add_argument("--transport", action="extend", nargs="+", choices=TRANSPORTS)
    serve_cmd.add_argument("--token-name", help="cookie / query parameter name")
    serve_cmd.add_argument("--subprotocol-name")
    serve_cmd.add_argument("--timestamp-style", choices=TIMESTAMP_STYLES)
    serve_cmd.add_argument("--trailing-slash", choices=TRAILING_SLASH)
    serve_cmd.add_argument("--max-length", type=int)
    serve_cmd.add_argument("--max-frame-bytes", type=int)
    serve_cmd.add_argument(
        "--latency",
        type=latency_range,
        metavar="LO-HI",
        help="delay every client frame by LO-HI ms (uniform; one number: fixed), one frame at a"
        " time per connection; pings are answered at once",
    )
    serve_cmd.add_argument(
        "--latency-seed", type=int, metavar="N", help="seed the latency draws (reproducible runs)"
    )
    serve_cmd.add_argument(
        "--ping-interval",
        type=float,
        metavar="SECONDS",
        help="heartbeat: ping every client this often (default: websockets' 20)",
    )
    serve_cmd.add_argument(
        "--ping-timeout",
        type=float,
        metavar="SECONDS",
        help="heartbeat: end a connection whose pong has not come this long after its ping,"
        " sent or still queued (default: websockets' 20)",
    )
    serve_cmd.add_argument(
        "--idle-timeout",
        type=float,
        metavar="SECONDS",
        help="close (1001) a connection with no data frame either way for this long",
    )
    serve_cmd.add_argument(
        "--rate-limit",
        type=int,
        metavar="N",
        help="accept at most N frames per connection within any second; answer the others"
        " with an error and drop them",
    )
    serve_cmd.add_argument(
        "--rate-limit-error", metavar="TEXT", help="the error text of a frame over --rate-limit"
    )
    serve_cmd.add_argument(
        "--history",
        type=int,
        metavar="N",
        help='on connect, send {"type": "history", "messages": [...]}: the room\'s N most'
        " recent messages",
    )
    serve_cmd.add_argument(
        "--presence",
        action="store_true",
        help='on connect, send {"type": "presence", "users": [...]}; tell the room of each join'
        " and leave",
    )
    serve_cmd.add_argument(
        "--fragment", action="store_true", help="send every message in several fragments"
    )
    serve_cmd.add_argument(
        "--compression", action="store_true", help="negotiate permessage-deflate"
    )
    serve_cmd.add_argument("--tls-cert", metavar="PEM", help="serve wss:// with this certificate")
    serve_cmd.add_argument("--tls-key", metavar="PEM", help="the private key of --tls-cert")
    serve_cmd.add_argument(
        "--tls-client-ca",
        metavar="PEM",
        help="mutual TLS: require a client certificate signed by this CA",
    )
    serve_cmd.add_argument(
        "--require-header",
        action="append",
        default=[],
        type=header_pair,
        metavar="NAME=VALUE",
        help="act as a gateway: refuse (HTTP 401) handshakes without this header (repeatable)",
    )
    serve_cmd.add_argument(
        "--broker",
        metavar="URL",
        help="redis://HOST:PORT: a node of a cluster, its rooms shared through this Redis broker",
    )
    serve_cmd.add_argument("--node-name", metavar="NAME", help="this node's name in logs")
    serve_cmd.add_argument(
        "--nodes",
        type=int,
        metavar="N",
        help="run N node processes on one --broker and one --db (a file or postgresql:// URL);"
        " prints each node's URL and a target file naming them",
    )
    serve_cmd.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])

    provision = commands.add_parser(
        "provision", help="create users, rooms and participants; print ids and tokens as JSON"
    )
    provision.add_argument("--db", required=True, help="SQLite file or postgresql:// URL")
    provision.add_argument(
        "--user", action="append", default=[], metavar="NAME[:EMAIL]", help="repeatable"
    )
    provision.add_argument(
        "--room", action="append", default=[], metavar="HOST/SLUG:MEMBER,MEMBER", help="repeatable"
    )
    provision.add_argument("--algorithm", choices=ALGORITHMS, default="HS256")
    provision.add_argument(
        "--secret-env", metavar="VAR", help="signing key (HS) or private PEM; demo secret if absent"
    )
    provision.add_argument("--claim", default="sub")
    provision.add_argument("--claim-kind", choices=CLAIM_KINDS, default="id")
    provision.add_argument("--lifetime", type=int, default=3600, help="token lifetime, seconds")
    provision.add_argument(
        "--for-target",
        action="store_true",
        help="print what a target's [provision] command prints: accounts by role (host, member,"
        " member2, outsider) and rooms by key (main, other, missing). The first --room is main:"
        " its host is host, its first two members member and member2; a second --room of the"
        " same host is other; outsider is the first user who is not in main; missing is a slug"
        " of the host that names no room",
    )

    commands.add_parser("faults", help="list the fault switches")
    return parser


_NUMBER = r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*"
_LATENCY = re.compile(f"{_NUMBER}(?:-{_NUMBER})?")


def header_pair(text: str) -> tuple[str, str]:
    """``NAME=VALUE`` of ``--require-header``."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name.strip(), value


def close_codes(text: str) -> tuple[int, int, int]:
    """``--refusal-codes``: three close codes, ``AUTH,PARTICIPANT,ROOM`` (ServerConfig checks
    their range)."""
    parts = [part.strip() for part in text.split(",")]
    if len(parts) != 3 or not all(part.isdigit() for part in parts):
        raise argparse.ArgumentTypeError(
            f"expected three close codes AUTH,PARTICIPANT,ROOM (e.g. 4401,4403,4404); got {text!r}"
        )
    auth, participant, room = (int(part) for part in parts)
    return auth, participant, room


def latency_range(text: str) -> tuple[float, float]:
    """``--latency``: ``LO-HI`` or ``MS`` (LO = HI), milliseconds, 0 <= LO <= HI."""
    match = _LATENCY.fullmatch(text)
    if match is None:
        raise argparse.ArgumentTypeError(f"expected LO-HI or MS in milliseconds; got {text!r}")
    low = float(match[1])
    high = low if match[2] is None else float(match[2])
    if not math.isfinite(high):
        raise argparse.ArgumentTypeError(f"{text!r} is too large")
    if low > high:
        raise argparse.ArgumentTypeError(f"LO must not exceed HI; got {text!r}")
    return low, high


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    """Entry point; returns the exit status. ``prog`` names the command in usage lines
    (``edusphere-conformance`` when that command hands ``serve`` over)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser(prog).parse_args(argv)
        if args.command == "faults":
            print(fault_table())
            return 0
        if args.command == "provision":
            check_engines(args)
            print(json.dumps(provision(args), indent=2))
            return 0
        config = serve_config(args)
        if args.nodes is not None:
            check_cluster(args)
        check_engines(args)
    except (UsageError, ConfigError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except DatabaseError as exc:  # provision's database
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0
    configure(args.log_level, node=config.node_name)
    try:
        if args.nodes is not None:
            serve_args = argv[argv.index("serve") + 1 :]
            asyncio.run(run_cluster(serve_args, config, args.nodes))
        else:
            asyncio.run(run_server(config))
    except OSError as exc:
        print(
            f"{prog}: error: cannot listen on {config.host}:{config.port}: {exc}", file=sys.stderr
        )
        return 1
    except (BrokerError, DatabaseError, ClusterError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    return 0


#: The distribution's extra that brings the cluster's engines (pyproject.toml).
CLUSTER_EXTRA = "pip install 'edusphere-conformance[cluster]'"


def check_engines(args: argparse.Namespace) -> None:
    """A Redis broker needs redis-py and a PostgreSQL database psycopg: both are in the
    ``cluster`` extra, not in the core install. Without them, one line naming the extra."""
    needs = []
    if getattr(args, "broker", None) is not None:
        needs.append(("redis", "--broker (a cluster's Redis broker) needs redis-py"))
    if is_postgres_url(args.db or ""):
        needs.append(("psycopg", "--db postgresql:// needs psycopg"))
    for module, what in needs:
        if importlib.util.find_spec(module) is None:
            raise UsageError(f"{what}, which the core install leaves out: {CLUSTER_EXTRA}")


def check_cluster(args: argparse.Namespace) -> None:
    """``--nodes N``: the nodes share one broker and one database."""
    nodes: int = args.nodes
    if nodes < 1:
        raise UsageError(f"--nodes must be at least 1; got {nodes}")
    if nodes > 1 and args.broker is None:
        raise UsageError("nodes share rooms through a broker: add --broker redis://HOST:PORT")
    if nodes > 1 and args.db in (":memory:", ""):
        raise UsageError(
            "nodes must share a database: --db a file or a postgresql:// URL, not :memory:"
        )
    if args.node_name is not None:
        raise UsageError("--node-name names one node; --nodes N names them node-1 ... node-N")
    if args.port and args.port + nodes - 1 > 65535:
        raise UsageError(f"--port {args.port} leaves no port for node {nodes} (65535 at most)")


def _secret(var: str | None) -> str | None:
    if var is None:
        return None
    value = os.environ.get(var)
    if not value:
        raise UsageError(f"environment variable {var} is not set")
    return value


def serve_config(args: argparse.Namespace) -> ServerConfig:
    """The ServerConfig that ``serve`` arguments describe."""
    check_fault_names(args.fault)  # before the key: a misspelt fault is named first
    secret = _secret(args.secret_env)
    if secret is None and not args.demo:
        raise UsageError("no signing key: pass --secret-env VAR, or --demo for the demo secret")
    settings: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "database": args.db,
        "faults": frozenset(args.fault),
    }
    if secret is not None:
        settings["secret"] = secret
    optional = {
        "refusal": args.refusal,
        "refusal_status": args.refusal_status,
        "refusal_close_code": args.refusal_close_code,
        "refusal_close_codes": args.refusal_codes,
        "audience": args.audience,
        "algorithm": args.algorithm,
        "user_claim": args.claim,
        "user_claim_kind": args.claim_kind,
        "transports": frozenset(args.transport) if args.transport else None,
        "token_name": args.token_name,
        "subprotocol_name": args.subprotocol_name,
        "timestamp_style": args.timestamp_style,
        "trailing_slash": args.trailing_slash,
        "max_length": args.max_length,
        "max_frame_bytes": args.max_frame_bytes,
        "latency_ms": args.latency,
        "latency_seed": args.latency_seed,
        "ping_interval": args.ping_interval,
        "ping_timeout": args.ping_timeout,
        "idle_timeout": args.idle_timeout,
        "rate_limit": args.rate_limit,
        "rate_limit_error": args.rate_limit_error,
        "history": args.history,
        "presence": args.presence or None,
        "fragment": args.fragment or None,
        "compression": args.compression or None,
        "tls_cert": args.tls_cert,
        "tls_key": args.tls_key,
        "tls_client_ca": args.tls_client_ca,
        "require_headers": tuple(args.require_header) or None,
        "broker": args.broker,
        "node_name": args.node_name,
    }
    settings.update({key: value for key, value in optional.items() if value is not None})
    return demo_config(**settings) if args.demo else ServerConfig(**settings)


async def run_server(config: ServerConfig) -> None:
    """Serve until SIGINT or SIGTERM, printing the URL template once listening. Raises
    BrokerError if the node loses its broker (it then delivers nothing, so it stops)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with serve(config) as server:
        print(f"listening on {server.url_template}", flush=True)
        waits = [asyncio.create_task(stop.wait()), asyncio.create_task(server.failed.wait())]
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in waits:
            task.cancel()
    if server.failure is not None:
        raise server.failure


def provision(args: argparse.Namespace) -> dict[str, Any]:
    """Create users, rooms and participants (idempotent: existing ones are reused).

    Returns accounts and rooms keyed by username and HOST/SLUG with a token per user, or with
    ``--for-target`` the shape ``harness.target.apply_provision`` merges into a target.
    """
    if args.for_target:
        if not args.room:
            raise UsageError("--for-target needs a --room: the first one is the target's main room")
        hosts = [spec.partition("/")[0] for spec in args.room[:2]]
        if len(set(hosts)) > 1:
            raise UsageError(f"--for-target: the second --room must be {hosts[0]}'s too")
    secret = _secret(args.secret_env) or DEMO_SECRET
    store = open_store(args.db)
    try:
        users: dict[str, User] = {}
        for spec in args.user:
            name, _, email = spec.partition(":")
            if not name:
                raise UsageError(f"--user {spec!r}: empty user name")
            users[name] = store.add_user(name, email or None)
        rooms = [_provision_room(store, users, spec) for spec in args.room]
        now = int(time.time())
        tokens = {}
        for name, user in users.items():
            subject = {"id": user.id, "username": user.username, "email": user.email}
            claims = {args.claim: subject[args.claim_kind], "iat": now, "exp": now + args.lifetime}
            tokens[name] = jwt.encode(claims, secret, algorithm=args.algorithm)
        if args.for_target:
            return _target_shape(store, users, rooms, tokens)
        by_path = {
            f"{room.host}/{room.slug}": {
                "id": room.id,
                "host": room.host,
                "slug": room.slug,
                "participants": store.participants(room.id),
            }
            for room, _members in rooms
        }
    finally:
        store.close()
    accounts = {
        name: {"username": u.username, "email": u.email, "user_id": u.id}
        for name, u in users.items()
    }
    return {"accounts": accounts, "rooms": by_path, "tokens": tokens}


def _provision_room(store: Store, users: dict[str, User], spec: str) -> tuple[Room, list[str]]:
    """Create the room of a ``--room`` spec; the room and its members as listed."""
    path, _, members_text = spec.partition(":")
    host_name, _, slug = path.partition("/")
    if not host_name or not slug or "/" in slug:
        raise UsageError(f"--room {spec!r}: expected HOST/SLUG:MEMBER,MEMBER")
    members = [name for name in members_text.split(",") if name and name != host_name]
    for name in (host_name, *members):
        if name not in users:
            found = store.user("username", name)
            if found is None:
                raise UsageError(f"--room {spec!r}: unknown user {name!r} (add --user {name})")
            users[name] = found
    room = store.add_room(users[host_name], slug, [users[name] for name in members])
    return room, members


def _target_shape(
    store: Store,
    users: dict[str, User],
    rooms: list[tuple[Room, list[str]]],
    tokens: dict[str, str],
) -> dict[str, Any]:
    """Accounts by role and rooms by key, as a target file names them (``--for-target``)."""
    (main, members), *others = rooms
    roles = {"host": main.host}
    roles.update(zip(("member", "member2"), members, strict=False))
    in_main = set(store.participants(main.id))
    outsider = next((name for name in users if name not in in_main), None)
    if outsider is not None:
        roles["outsider"] = outsider
    accounts = {
        role: {
            "username": name,
            "email": users[name].email,
            "user_id": users[name].id,
            "token": tokens[name],
        }
        for role, name in roles.items()
    }
    keyed = {"main": main.slug}
    if others:
        keyed["other"] = others[0][0].slug  # the same host's: checked before creating it
    missing = "no-such-room"
    while store.room(main.host, missing) is not None:
        missing = f"no-such-room-{uuid.uuid4().hex[:8]}"
    keyed["missing"] = missing
    return {"accounts": accounts, "rooms": keyed}
