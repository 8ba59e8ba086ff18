"""Demo data and a target description for it (``serve --demo``).

Users alice (host), bob, carol (participants) and dave (outsider); rooms alice/general and
alice/random with alice, bob and carol. A second host, erin (no account of the target file),
hosts erin/general with bob and carol: a room of another host with the main room's slug
(``rooms.twin_host``; ISO-007: they are two rooms). Ids are uuid5(NAMESPACE_URL,
"edusphere-demo:" + name) so that a static target file can name them.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, Final

from reference_server.config import DEMO_SECRET, ServerConfig

if TYPE_CHECKING:
    from reference_server.store import Store

__all__ = [
    "DEMO_ALGORITHM",
    "DEMO_HOST",
    "DEMO_MISSING_ROOM",
    "DEMO_ROOMS",
    "DEMO_SECRET",
    "DEMO_TOKEN_NAME",
    "DEMO_TWIN_EMAIL",
    "DEMO_TWIN_HOST",
    "DEMO_USERS",
    "demo_config",
    "demo_room_id",
    "demo_target_dict",
    "demo_user_id",
    "seed_demo",
]
DEMO_ALGORITHM: Final = "HS256"
DEMO_TOKEN_NAME: Final = "token"
DEMO_HOST: Final = "alice"
DEMO_ROOMS: Final = ("general", "random")
DEMO_MISSING_ROOM: Final = "no-such-room-7f3a"
DEMO_TWIN_HOST: Final = "erin"
"""The host of a room with the main room's slug (``DEMO_ROOMS[0]``): not an account of the
target file, only the ``{host}`` of that room's URL."""
DEMO_TWIN_EMAIL: Final = "erin@example.test"

# username -> (email, avatar, role in the target file)
DEMO_USERS: Final[dict[str, tuple[str, str | None, str]]] = {
    "alice": ("alice@example.test", "avatars/alice.png", "host"),
    "bob": ("bob@example.test", "avatars/bob.jpg", "member"),
    "carol": ("carol@example.test", None, "member2"),
    "dave": ("dave@example.test", None, "outsider"),
}


def demo_user_id(username: str) -> str:
    """The fixed id of a demo user."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "edusphere-demo:" + username))


def demo_room_id(slug: str, host: str = DEMO_HOST) -> str:
    """The fixed id of a demo room (of ``host``, by default alice)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"edusphere-demo:{host}/{slug}"))


def seed_demo(store: Store) -> None:
    """Create the demo users and rooms; idempotent."""
    users = {
        name: store.add_user(name, email, avatar, user_id=demo_user_id(name))
        for name, (email, avatar, _role) in DEMO_USERS.items()
    }
    members = [users["bob"], users["carol"]]
    for slug in DEMO_ROOMS:
        store.add_room(users[DEMO_HOST], slug, members, room_id=demo_room_id(slug))
    twin = DEMO_TWIN_HOST
    erin = store.add_user(twin, DEMO_TWIN_EMAIL, None, user_id=demo_user_id(twin))
    main = DEMO_ROOMS[0]
    store.add_room(erin, main, members, room_id=demo_room_id(main, twin))


def demo_config(**changes: Any) -> ServerConfig:
    """A ServerConfig for the demo data: demo seeding, the demo secret, query name ``token``.

    This is the configuration ``demo_target_dict`` describes; pass e.g. ``database=":memory:"``
    or ``faults=frozenset({"no-echo"})`` to change it.
    """
    settings: dict[str, Any] = {
        "demo": True,
        "secret": DEMO_SECRET,
        "algorithm": DEMO_ALGORITHM,
        "token_name": DEMO_TOKEN_NAME,
    }
    settings.update(changes)
    return ServerConfig(**settings)


def demo_target_dict(url_template: str) -> dict[str, Any]:
    """A target description (the target file's shape) for a server run with ``demo_config()``."""
    accounts = {
        role: {"username": name, "email": email, "user_id": demo_user_id(name)}
        for name, (email, _avatar, role) in DEMO_USERS.items()
    }
    return {
        "url": url_template,
        "connect_timeout": 5.0,
        "receive_timeout": 5.0,
        "auth": {
            "transport": "query",
            "name": DEMO_TOKEN_NAME,
            "algorithm": DEMO_ALGORITHM,
            "secret": DEMO_SECRET,
            "claims": {"sub": "{user_id}", "exp": "{exp}", "iat": "{iat}"},
            "lifetime": 3600,
        },
        "accounts": accounts,
        "rooms": {
            "main": DEMO_ROOMS[0],
            "other": DEMO_ROOMS[1],
            "missing": DEMO_MISSING_ROOM,
            "twin_host": DEMO_TWIN_HOST,
        },
        "limits": {"max_length": 500},
        "expect": {"refusal": "any"},
    }
