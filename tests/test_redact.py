"""Secrets never reach a transcript (harness/redact.py, harness.core.transcript.Transcript)."""

from __future__ import annotations

import asyncio
import json
import secrets
import socket

import jwt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness import redact
from harness.core.failures import HarnessError
from harness.core.transcript import Transcript
from harness.server.chat import Chat
from harness.target import Account, Auth, parse
from harness.tokens import Minter

SECRET = "redact-test-secret-0123456789abcdef0123456789"
MEMBER = Account("member", "bob", "bob@example.test", "0b0b0b0b-2222-4c6b-9a55-0f1e2d3c4b5a")


def fresh(label: str) -> str:
    """A string nobody registered yet."""
    return f"{label}-{secrets.token_hex(8)}"


@pytest.fixture(scope="module")
def token() -> str:
    return Minter(Auth(secret=SECRET)).valid(MEMBER)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- the registry -------------------------------------------------------------------------


def test_registered_secret_is_masked_everywhere_in_the_text() -> None:
    secret = fresh("api-key")
    assert redact.redact(f"a {secret} b") == f"a {secret} b"
    redact.register(secret)
    assert secret in redact.registered()
    assert redact.redact(f"a {secret} b {secret}") == f"a {redact.MASK} b {redact.MASK}"


@pytest.mark.parametrize("short", ["", "a", "abc", "abcde"])
def test_short_strings_are_ignored(short: str) -> None:
    redact.register(short)
    assert short not in redact.registered()
    assert redact.redact("abcdef xyz") == "abcdef xyz"


def test_none_is_ignored() -> None:
    before = redact.registered()
    redact.register(None)
    assert redact.registered() == before


def test_six_characters_are_enough_to_register() -> None:
    secret = secrets.token_hex(3)  # 6 characters
    redact.register(secret)
    assert redact.redact(f"[{secret}]") == f"[{redact.MASK}]"


def test_longer_secret_is_masked_before_a_shorter_one_inside_it() -> None:
    short = fresh("pw")
    long = short + "-and-more"
    redact.register(short)
    redact.register(long)
    assert redact.redact(f"x {long} y") == f"x {redact.MASK} y"


def test_unregistered_jwt_shaped_strings_are_masked() -> None:
    unregistered = jwt.encode({"sub": fresh("u")}, fresh("k") * 4, algorithm="HS256")
    assert unregistered not in redact.registered()
    text = f'{{"token": "{unregistered}"}}'
    assert redact.redact(text) == f'{{"token": "{redact.MASK}"}}'


def test_unsigned_jwt_shaped_strings_are_masked() -> None:
    unsigned = jwt.encode({"sub": fresh("u")}, None, algorithm="none")  # type: ignore[arg-type]
    assert unsigned.endswith(".")
    assert unsigned not in redact.redact(f"token={unsigned}")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "plain text with eyJ in it",
        '{"type": "text", "message": "hello.world.again"}',
        "eyJhbGciOiJIUzI1NiJ9 with no dots after",
    ],
)
def test_ordinary_text_is_unchanged(text: str) -> None:
    assert redact.redact(text) == text


# --- property -----------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(before=st.text(max_size=60), after=st.text(max_size=60), times=st.integers(1, 3))
def test_minted_token_never_survives_redaction(
    token: str, before: str, after: str, times: int
) -> None:
    text = before + (token + after) * times
    assert token not in redact.redact(text)


@settings(max_examples=50, deadline=None)
@given(sub=st.text(min_size=1, max_size=30), before=st.text(max_size=40))
def test_unregistered_jwt_never_survives_redaction(sub: str, before: str) -> None:
    unregistered = jwt.encode({"sub": sub}, "k" * 32, algorithm="HS256")
    signature = unregistered.rsplit(".", 1)[1]
    out = redact.redact(before + unregistered + " ")
    assert unregistered not in out
    assert signature not in out


# --- transcripts --------------------------------------------------------------------------


def test_transcript_keeps_no_token_of_a_frame_or_url(token: str) -> None:
    transcript = Transcript(redact.redact)
    frame = {"type": "text", "message": f"my token is {token}", "timestamp": "2024-01-01T00:00:00Z"}
    transcript.log("member#1", "->", json.dumps(frame))
    transcript.log("member#1", "==", f"GET /ws/chat/alice/general?token={token} (token via query)")
    transcript.log("member#1", "==", f"Cookie: JWT={token}")
    transcript.log("member#1", "<-", '{"error": "Message not found."}')
    rendered = transcript.render()
    listed = json.dumps(transcript.as_list())
    signature = token.rsplit(".", 1)[1]
    for text in (rendered, listed):
        assert token not in text
        assert signature not in text
        assert redact.MASK in text
    assert "Message not found." in rendered  # the rest is kept
    assert [e["dir"] for e in transcript.as_list()] == ["->", "==", "==", "<-"]


def test_transcript_keeps_no_configured_secret() -> None:
    secret = fresh("hmac-key")
    parse(
        {
            "url": "ws://h/ws/chat/{host}/{room}",
            "auth": {"secret": secret},
            "accounts": {
                "host": {"username": "a", "user_id": "1"},
                "member": {"username": "b", "user_id": "2"},
            },
            "rooms": {"main": "g"},
        },
        env={},
    )
    transcript = Transcript(redact.redact)
    transcript.log("c", "==", f"note: key {secret}")
    assert secret not in transcript.render()


def test_chat_handshake_line_keeps_no_minted_token() -> None:
    """The real logging path of a handshake (token via query), against a closed port."""
    port = closed_port()
    target = parse(
        {
            "url": f"ws://127.0.0.1:{port}/ws/chat/{{host}}/{{room}}",
            "connect_timeout": 1.0,
            "auth": {"secret": SECRET, "transport": "query"},
            "accounts": {
                "host": {"username": "alice", "user_id": "1"},
                "member": {"username": "bob", "user_id": "2"},
            },
            "rooms": {"main": "general"},
        },
        env={},
    )
    chat = Chat(target)
    minted = chat.minter.valid(MEMBER)
    with pytest.raises(HarnessError, match="unreachable"):
        asyncio.run(chat.attempt(minted, room="general"))
    rendered = chat.transcript.render()
    assert "?token=" in rendered
    assert minted not in rendered
    assert minted.rsplit(".", 1)[1] not in rendered


def test_transcript_truncation_does_not_expose_part_of_a_token(token: str) -> None:
    # Long text with the token at every position, so that wherever the transcript cuts a long
    # entry, some entry has the token across the cut.
    _header, payload, signature = token.split(".")
    transcript = Transcript(redact.redact, limit=10_000)
    for position in range(0, 4000, 5):
        transcript.log("member#1", "<-", "x" * position + token + "y" * (4000 - position))
    rendered = transcript.render()
    assert payload not in rendered
    assert signature not in rendered


def test_query_transport_does_not_expose_an_encoded_account_token() -> None:
    given_token = "opaque+token/with=padding" + secrets.token_hex(4)
    port = closed_port()
    target = parse(
        {
            "url": f"ws://127.0.0.1:{port}/ws/chat/{{host}}/{{room}}",
            "connect_timeout": 1.0,
            "auth": {"transport": "query"},
            "accounts": {
                "host": {"username": "alice", "token": "t-" + given_token},
                "member": {"username": "bob", "token": given_token},
            },
            "rooms": {"main": "general"},
        },
        env={},
    )
    chat = Chat(target)
    with pytest.raises(HarnessError):
        asyncio.run(chat.attempt(chat.token("member"), room="general"))
    rendered = chat.transcript.render()
    assert "opaque" not in rendered


def test_unregistered_jwt_after_a_jwt_like_fragment_is_masked_whole() -> None:
    unregistered = jwt.encode({"sub": fresh("u")}, "k" * 32, algorithm="HS256")
    out = redact.redact(f"eyJpart.{unregistered}")
    assert unregistered.rsplit(".", 1)[1] not in out
