"""Token transport and verification, unit and over a socket."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from refserver_support import client, make_token, refusal, room_url, run
from websockets.asyncio.client import connect
from websockets.datastructures import Headers

from reference_server.auth import AuthError, TokenVerifier, find_credentials
from reference_server.config import ServerConfig
from reference_server.demo import DEMO_SECRET, demo_user_id
from reference_server.runner import ServerThread

BOB = demo_user_id("bob")
OTHER_SECRET = "another-secret-that-is-long-enough-0123456789"


def _tamper(token: str, **changes: Any) -> str:
    """Change the payload and keep the original signature."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    raw = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{raw}.{signature}"


def _verify(token: str, **changes: Any) -> str:
    return TokenVerifier(ServerConfig(**changes)).verify(token)


# -- where the token travels ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "query", "transport"),
    [
        ({"Authorization": "Bearer T.T.T"}, "", "header"),
        ({"Authorization": "bearer T.T.T"}, "", "header"),
        ({"Sec-WebSocket-Protocol": "T.T.T"}, "", "subprotocol"),
        ({}, "a=1&JWT=T.T.T", "query"),
        ({"Cookie": 'a=1; JWT="T.T.T"'}, "", "cookie"),
    ],
)
def test_token_is_found_in_each_transport(
    headers: dict[str, str], query: str, transport: str
) -> None:
    found = find_credentials(ServerConfig(), Headers(headers), query)
    assert found is not None
    assert (found.token, found.transport) == ("T.T.T", transport)


def test_disabled_transports_are_not_looked_at() -> None:
    config = ServerConfig(transports=frozenset({"cookie"}))
    headers = Headers({"Authorization": "Bearer T.T.T", "Sec-WebSocket-Protocol": "T.T.T"})
    assert find_credentials(config, headers, "JWT=T.T.T") is None


def test_other_authorization_schemes_are_ignored() -> None:
    headers = Headers({"Authorization": "Basic abc"})
    assert find_credentials(ServerConfig(), headers, "") is None


def test_named_subprotocol_selects_the_name_and_takes_the_other_value() -> None:
    config = ServerConfig(subprotocol_name="edusphere")
    found = find_credentials(config, Headers({"Sec-WebSocket-Protocol": "edusphere, T.T.T"}), "")
    assert found is not None
    assert (found.token, found.subprotocol) == ("T.T.T", "edusphere")
    assert find_credentials(config, Headers({"Sec-WebSocket-Protocol": "T.T.T"}), "") is None


# -- verification ---------------------------------------------------------------------------------


def test_valid_token_yields_the_user_claim() -> None:
    assert _verify(make_token("bob")) == BOB


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (make_token("bob", secret=OTHER_SECRET), "bad signature"),
        (make_token("bob", lifetime=-10), "token expired"),
        (jwt.encode({"sub": BOB, "exp": int(time.time()) + 3600}, None, algorithm="none"), "alg"),
        (make_token("bob", secret=DEMO_SECRET * 2, algorithm="HS512"), "algorithm"),
        (jwt.encode({"sub": BOB}, DEMO_SECRET, algorithm="HS256"), "lacks exp"),
        (_tamper(make_token("bob"), sub=demo_user_id("alice")), "bad signature"),
        ("not-a-jwt", "malformed"),
        (make_token(claims={"user": BOB, "exp": int(time.time()) + 3600}), "sub"),
    ],
    ids=[
        "wrong-key",
        "expired",
        "alg-none",
        "other-alg",
        "no-exp",
        "tampered",
        "garbage",
        "no-sub",
    ],
)
def test_bad_tokens_are_rejected(token: str, reason: str) -> None:
    with pytest.raises(AuthError, match=reason):
        _verify(token)


def test_claim_name_is_configurable() -> None:
    token = make_token(claims={"username": "bob", "exp": int(time.time()) + 3600})
    assert _verify(token, user_claim="username", user_claim_kind="username") == "bob"


def test_rs256_verifies_with_a_public_key() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    token = jwt.encode({"sub": BOB, "exp": int(time.time()) + 3600}, key, algorithm="RS256")
    assert _verify(token, algorithm="RS256", secret=public.decode()) == BOB
    forged = make_token("bob", secret=public.decode()[:64], algorithm="HS256")
    with pytest.raises(AuthError):
        _verify(forged, algorithm="RS256", secret=public.decode())


def test_fault_switches_relax_exactly_one_check() -> None:
    expired = make_token("bob", lifetime=-10)
    unsigned = jwt.encode({"sub": BOB, "exp": int(time.time()) + 3600}, None, algorithm="none")
    forged = make_token("bob", secret=OTHER_SECRET)
    assert _verify(expired, faults={"accept-expired"}) == BOB
    assert _verify(unsigned, faults={"accept-alg-none"}) == BOB
    assert _verify(forged, faults={"skip-signature"}) == BOB
    with pytest.raises(AuthError, match="expired"):
        _verify(expired, faults={"skip-signature"})
    with pytest.raises(AuthError, match="alg"):
        _verify(unsigned, faults={"skip-signature"})
    with pytest.raises(AuthError, match="bad signature"):
        _verify(forged, faults={"accept-alg-none", "accept-expired"})
    unsigned_expired = jwt.encode(
        {"sub": BOB, "exp": int(time.time()) - 10}, None, algorithm="none"
    )
    with pytest.raises(AuthError, match="expired"):
        _verify(unsigned_expired, faults={"accept-alg-none"})


# -- over a socket --------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["query", "cookie", "header", "subprotocol"])
def test_participant_is_accepted_with_the_token_in_each_transport(
    server: ServerThread, transport: str
) -> None:
    async def scenario() -> None:
        async with client(server.url_template, "bob", transport=transport) as bob:
            event = await bob.say(f"via {transport}")
            assert event["user"] == "bob"

    run(scenario())


def test_subprotocol_token_is_echoed_as_the_selected_subprotocol(server: ServerThread) -> None:
    async def scenario() -> None:
        token = make_token("bob")
        async with client(server.url_template, token=token, transport="subprotocol") as bob:
            assert bob.ws.subprotocol == token

    run(scenario())


def test_named_subprotocol_is_selected(make_server: Callable[..., ServerThread]) -> None:
    srv = make_server(subprotocol_name="edusphere")

    async def scenario() -> None:
        url = room_url(srv.url_template)
        async with connect(url, subprotocols=["edusphere", make_token("bob")], proxy=None) as ws:
            assert ws.subprotocol == "edusphere"

    run(scenario())


def test_client_offering_no_subprotocol_is_not_refused_when_subprotocols_are_enabled(
    server: ServerThread,
) -> None:
    async def scenario() -> None:
        async with client(server.url_template, transport="cookie") as bob:
            assert bob.ws.subprotocol is None

    run(scenario())


@pytest.mark.parametrize(
    "token",
    [
        None,
        "garbage",
        make_token("bob", lifetime=-10),
        make_token("bob", secret=OTHER_SECRET),
        jwt.encode({"sub": BOB, "exp": int(time.time()) + 3600}, None, algorithm="none"),
        _tamper(make_token("bob"), sub=demo_user_id("alice")),
        make_token(claims={"sub": demo_user_id("nobody"), "exp": int(time.time()) + 3600}),
    ],
    ids=["none", "garbage", "expired", "wrong-key", "alg-none", "tampered", "unknown-user"],
)
def test_bad_tokens_are_refused_with_403(server: ServerThread, token: str | None) -> None:
    transport = "none" if token is None else "query"
    outcome = run(refusal(client(server.url_template, token=token or "", transport=transport)))
    assert outcome == "http 403"


def test_disabled_transport_is_refused(make_server: Callable[..., ServerThread]) -> None:
    srv = make_server(transports=frozenset({"header"}))
    assert run(refusal(client(srv.url_template, transport="query"))) == "http 403"
    assert run(refusal(client(srv.url_template, transport="header"))) == "open"


def test_refusal_by_close_closes_at_once_with_the_configured_code(
    make_server: Callable[..., ServerThread],
) -> None:
    srv = make_server(refusal="close", refusal_close_code=4401)
    assert run(refusal(client(srv.url_template, "dave"))) == "close 4401"
    assert run(refusal(client(srv.url_template, "bob"))) == "open"


def test_refusal_status_is_configurable(make_server: Callable[..., ServerThread]) -> None:
    srv = make_server(refusal_status=401)
    assert run(refusal(client(srv.url_template, token="garbage"))) == "http 401"


@pytest.mark.parametrize(("kind", "value"), [("username", "bob"), ("email", "bob@example.test")])
def test_user_claim_kind_matches_username_or_email(
    make_server: Callable[..., ServerThread], kind: str, value: str
) -> None:
    srv = make_server(user_claim="who", user_claim_kind=kind)
    token = make_token(claims={"who": value, "exp": int(time.time()) + 3600})
    assert run(refusal(client(srv.url_template, token=token))) == "open"
    assert run(refusal(client(srv.url_template, "bob"))) == "http 403"  # sub is not read
