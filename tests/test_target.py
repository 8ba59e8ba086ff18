"""The target file contract (harness/target.py): every key parses, every mistake is one line.

A bad target file must stop the run before any test with one line naming the key, so each error
test checks both the key in the message and that the message is a single line.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import json
import shlex
import socket
import sys
import textwrap
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator  # type: ignore[import-untyped, unused-ignore]

from harness import commands, redact, schemas
from harness import target as target_mod
from harness.target import (
    MIN_BODY,
    ROLES,
    ROOM_ROLES,
    Account,
    Auth,
    Load,
    ProvisionError,
    Target,
    TargetError,
    Tls,
    apply_provision,
    from_data,
    load,
    parse,
    refuse_bare_url,
    to_data,
)
from tests.support import ROOT, to_toml, write_target

EXAMPLE = ROOT / "targets" / "example.toml"
SECRET = "example-secret-for-the-target-tests-0123456789abcdef"


def minimal() -> dict[str, Any]:
    """The least a target needs: the url, a room, and tokens for the host and a member."""
    return {
        "url": "ws://127.0.0.1:8000/ws/chat/{host}/{room}",
        "accounts": {
            "host": {"username": "alice", "token": "tok-alice"},
            "member": {"username": "bob", "token": "tok-bob"},
        },
        "rooms": {"main": "general"},
    }


def full() -> dict[str, Any]:
    """A target naming every key of the contract."""
    return {
        "url": "wss://chat.example.test:8443/ws/chat/{host}/{room}/",
        "origin": "https://chat.example.test",
        "connect_timeout": 2.5,
        "receive_timeout": 4.0,
        "auth": {
            "transport": "header",
            "name": "X-Token",
            "scheme": "JWT",
            "algorithm": "HS512",
            "secret": SECRET,
            "claims": {"user_id": "{user_id}", "name": "user:{username}", "exp": "{exp}"},
            "lifetime": 120,
        },
        "accounts": {
            "host": {"username": "alice", "email": "a@x.test", "user_id": "1", "token": "tok-a1"},
            "member": {"username": "bob", "email": "b@x.test", "user_id": "2"},
            "member2": {"username": "carol", "user_id": "3"},
            "outsider": {"username": "dave", "user_id": "4"},
        },
        "rooms": {
            "main": "general",
            "other": "random",
            "missing": "nope-404",
            "twin_host": "erin",
        },
        "limits": {"max_length": 280, "max_frame_bytes": 4096, "max_frames_per_second": 30},
        "expect": {"refusal": "close"},
        "provision": {"command": "true"},
        "restart": {"command": "systemctl restart chat"},
        "properties": {"examples": 7},
        "headers": {"X-Api-Key": "gateway-key-0123456789", "X-Tenant": "tenant-7f3e9b21c4"},
        "tls": {"verify": False, "server_name": "chat.internal"},
        "nodes": [
            "wss://node1.example.test:8443/ws/chat/{host}/{room}/",
            "wss://node2.example.test:8443/ws/chat/{host}/{room}/",
        ],
        "load": {
            "senders": 4,
            "messages": 50,
            "receivers": 2,
            "body_length": 64,
            "rate": 200.0,
            "lag": 0.5,
            "lag_bytes": 1048576,
        },
    }


def error_of(data: dict[str, Any], env: dict[str, str] | None = None) -> str:
    with pytest.raises(TargetError) as info:
        parse(data, where="t.toml", env={} if env is None else env)
    message = str(info.value)
    assert "\n" not in message, message
    assert message.startswith("t.toml: ")
    return message


def load_error(path: Path, env: dict[str, str] | None = None, reader: Any = load) -> str:
    """The one line ``reader`` (:func:`load`, or :func:`commands.load_target` to provision)
    refuses the file at ``path`` with."""
    with pytest.raises(TargetError) as info:
        reader(path, env={} if env is None else env)
    message = str(info.value)
    assert "\n" not in message, message
    return message


def py_command(tmp_path: Path, source: str) -> str:
    """A command line running a small Python script with this interpreter."""
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(source), encoding="utf-8")
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}"


# --- the example file and a file with every key -------------------------------------------


def test_example_target_loads_with_its_secret_set() -> None:
    target = load(EXAMPLE, env={"CHAT_JWT_SECRET": SECRET})
    assert target.url == "wss://chat.example.com/ws/chat/{host}/{room}"
    assert target.origin == "https://chat.example.com"
    assert (target.connect_timeout, target.receive_timeout) == (5.0, 5.0)
    assert target.auth.transport == "cookie"
    assert target.auth.param_name == "JWT"
    assert target.auth.secret == SECRET
    assert dict(target.auth.claims) == {"sub": "{user_id}", "exp": "{exp}", "iat": "{iat}"}
    assert {role: acc.username for role, acc in target.accounts.items()} == {
        "host": "alice",
        "member": "bob",
        "member2": "carol",
        "outsider": "dave",
    }
    assert target.accounts["outsider"].user_id == "7d4f9a8e-4444-4c6b-9a55-0f1e2d3c4b5a"
    assert dict(target.rooms) == {
        "main": "general",
        "other": "random",
        "missing": "no-such-room-7f3a",
    }
    assert (target.max_length, target.max_frame_bytes) == (500, None)
    assert (target.refusal, target.examples) == ("any", 25)
    assert target.provision_command is None and target.restart_command is None
    assert target.source == str(EXAMPLE)


def test_example_target_without_its_secret_names_the_key_and_variable() -> None:
    message = load_error(EXAMPLE, env={})
    assert "auth.secret" in message
    assert "CHAT_JWT_SECRET" in message


def test_every_key_of_the_contract_is_read() -> None:
    data = full()
    del data["provision"]  # run by load(), tested below
    target = parse(data, env={})
    assert target.url == data["url"]
    assert target.origin == "https://chat.example.test"
    assert (target.connect_timeout, target.receive_timeout) == (2.5, 4.0)
    auth = target.auth
    assert (auth.transport, auth.name, auth.scheme, auth.algorithm) == (
        "header",
        "X-Token",
        "JWT",
        "HS512",
    )
    assert (auth.secret, auth.lifetime) == (SECRET, 120)
    assert dict(auth.claims) == data["auth"]["claims"]
    assert target.accounts["host"] == Account("host", "alice", "a@x.test", "1", "tok-a1")
    assert target.accounts["member"] == Account("member", "bob", "b@x.test", "2", None)
    assert target.accounts["outsider"].username == "dave"
    assert dict(target.rooms) == data["rooms"]
    assert (target.max_length, target.max_frame_bytes) == (280, 4096)
    assert target.refusal == "close"
    assert target.restart_command == "systemctl restart chat"
    assert target.can_restart
    assert target.examples == 7
    assert dict(target.headers) == data["headers"]
    assert (target.tls.verify, target.tls.server_name, target.server_name) == (
        False,
        "chat.internal",
        "chat.internal",
    )
    assert target.warnings == [
        "TLS certificate verification is off (tls.verify = false): the server's identity was "
        "not checked"
    ]


def test_defaults_of_a_minimal_target() -> None:
    target = parse(minimal(), env={})
    assert target.origin is None
    assert (target.connect_timeout, target.receive_timeout) == (5.0, 5.0)
    assert target.auth.transport == "query"
    assert target.auth.secret is None
    assert dict(target.auth.claims) == {"sub": "{user_id}", "exp": "{exp}", "iat": "{iat}"}
    assert (target.auth.lifetime, target.auth.algorithm, target.auth.scheme) == (
        600,
        "HS256",
        "Bearer",
    )
    assert (target.max_length, target.max_frame_bytes, target.refusal) == (500, None, "any")
    assert target.examples == 25
    assert not target.can_restart


def test_integer_timeouts_become_floats() -> None:
    data = minimal() | {"connect_timeout": 3, "receive_timeout": 7}
    target = parse(data, env={})
    assert (target.connect_timeout, target.receive_timeout) == (3.0, 7.0)
    assert isinstance(target.connect_timeout, float)


def test_secret_and_tokens_are_registered_for_redaction() -> None:
    data = full()
    data["auth"]["secret"] = "registered-secret-7c1e2a"
    data["accounts"]["host"]["token"] = "registered-token-5b9d0f"
    parse(data, env={})
    assert "registered-secret-7c1e2a" not in redact.redact("k=registered-secret-7c1e2a")
    assert "registered-token-5b9d0f" not in redact.redact("t=registered-token-5b9d0f")


# --- missing keys -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "key"),
    [
        (("url",), "url"),
        (("accounts", "host"), "accounts.host"),
        (("accounts", "member"), "accounts.member"),
        (("rooms", "main"), "rooms.main"),
        (("accounts", "host", "username"), "accounts.host.username"),
    ],
)
def test_missing_key_is_named(path: tuple[str, ...], key: str) -> None:
    data = minimal()
    node = data
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]
    message = error_of(data)
    assert f"t.toml: {key}: missing" in message


def test_missing_accounts_and_rooms_tables_are_named() -> None:
    assert "accounts.host: missing" in error_of({"url": minimal()["url"]})
    data = minimal()
    del data["rooms"]
    assert "rooms.main: missing" in error_of(data)


# --- unknown keys -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "typo", "meant"),
    [
        ("auth", "tranport", "auth.transport"),
        (None, "recieve_timeout", "receive_timeout"),
        ("rooms", "mian", "rooms.main"),
        ("limits", "max_lenght", "limits.max_length"),
        ("expect", "refusals", "expect.refusal"),
    ],
)
def test_unknown_key_suggests_the_key_meant(table: str | None, typo: str, meant: str) -> None:
    data = minimal()
    if table is None:
        data[typo] = 1.0
    else:
        data.setdefault(table, {})[typo] = "x"
    message = error_of(data)
    key = typo if table is None else f"{table}.{typo}"
    assert f"{key}: unknown key" in message
    assert f"did you mean '{meant}'?" in message


def test_unknown_key_in_an_account_suggests_the_key_meant() -> None:
    data = minimal()
    data["accounts"]["host"]["usernme"] = "alice"
    message = error_of(data)
    assert "accounts.host.usernme: unknown key (did you mean 'accounts.host.username'?)" in message


def test_unknown_key_unlike_any_other_has_no_suggestion() -> None:
    data = minimal() | {"zzzzzz": 1}
    message = error_of(data)
    assert "zzzzzz: unknown key" in message
    assert "did you mean" not in message


def test_unknown_account_role_is_refused() -> None:
    data = minimal()
    data["accounts"]["outsidr"] = {"username": "dave"}
    message = error_of(data)
    assert "accounts.outsidr" in message


# --- wrong types and values ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "key", "words"),
    [
        ({"connect_timeout": "5"}, "connect_timeout", "must be a number"),
        ({"receive_timeout": True}, "receive_timeout", "must be a number"),
        ({"connect_timeout": 0}, "connect_timeout", "must be positive"),
        ({"receive_timeout": -1.5}, "receive_timeout", "must be positive"),
        ({"url": 8000}, "url", "must be a string"),
        ({"origin": ["x"]}, "origin", "must be a string"),
        ({"auth": {"lifetime": 1.5}}, "auth.lifetime", "must be an integer"),
        ({"auth": {"lifetime": 0}}, "auth.lifetime", "must be positive"),
        ({"auth": {"claims": "sub"}}, "auth.claims", "must be a table"),
        ({"auth": "query"}, "auth", "must be a table"),
        ({"rooms": {"main": 1}}, "rooms.main", "must be a string"),
        ({"accounts": {"host": "alice"}}, "accounts.host", "must be a table"),
        ({"limits": {"max_length": "500"}}, "limits.max_length", "must be an integer"),
        ({"limits": {"max_frame_bytes": 1.5}}, "limits.max_frame_bytes", "must be an integer"),
        ({"properties": {"examples": 0}}, "properties.examples", "must be at least 1"),
        ({"properties": {"examples": False}}, "properties.examples", "must be an integer"),
        ({"provision": {"command": ["x"]}}, "provision.command", "must be a string"),
    ],
)
def test_wrong_type_or_value_is_named(change: dict[str, Any], key: str, words: str) -> None:
    data = minimal() | change
    message = error_of(data)
    assert f"t.toml: {key}: {words}" in message


@pytest.mark.parametrize("value", [float("nan"), float("inf")], ids=["nan", "inf"])
def test_non_finite_timeout_is_refused(value: float) -> None:
    message = error_of(minimal() | {"connect_timeout": value})
    assert "connect_timeout" in message


@pytest.mark.parametrize("value", [0, -5])
def test_non_positive_max_length_is_refused(value: int) -> None:
    message = error_of(minimal() | {"limits": {"max_length": value}})
    assert "limits.max_length" in message


@pytest.mark.parametrize("transport", ["websocket", "Cookie", "bearer", ""])
def test_bad_transport_is_named(transport: str) -> None:
    message = error_of(minimal() | {"auth": {"transport": transport}})
    assert "auth.transport: must be one of cookie, query, header, subprotocol" in message
    assert repr(transport) in message


@pytest.mark.parametrize("refusal", ["reset", "HTTP", "both"])
def test_bad_refusal_is_named(refusal: str) -> None:
    message = error_of(minimal() | {"expect": {"refusal": refusal}})
    assert "expect.refusal: must be one of any, http, close" in message
    assert repr(refusal) in message


@pytest.mark.parametrize("refusal", ["any", "http", "close"])
def test_each_refusal_style_is_accepted(refusal: str) -> None:
    assert parse(minimal() | {"expect": {"refusal": refusal}}, env={}).refusal == refusal


@pytest.mark.parametrize("template", ["{name}", "user:{userid}", "{user_id}-{role}"])
def test_unknown_claim_placeholder_is_named(template: str) -> None:
    message = error_of(minimal() | {"auth": {"claims": {"sub": template}}})
    assert "auth.claims.sub: unknown placeholder" in message
    assert "known: username, email, user_id, exp, iat" in message


def test_every_known_placeholder_is_accepted_alone_and_mixed() -> None:
    claims = {
        "a": "{username}",
        "b": "{email}",
        "c": "{user_id}",
        "d": "{exp}",
        "e": "{iat}",
        "f": "user:{username}/{user_id}",
        "g": 42,
    }
    target = parse(minimal() | {"auth": {"claims": claims}}, env={})
    assert dict(target.auth.claims) == claims


@pytest.mark.parametrize(
    "url",
    [
        "http://h/ws/chat/{host}/{room}",
        "https://h/ws/chat/{host}/{room}",
        "h/ws/chat/{host}/{room}",
        "ftp://h/{room}",
    ],
)
def test_non_websocket_url_is_refused(url: str) -> None:
    message = error_of(minimal() | {"url": url})
    assert "url: must start with ws:// or wss://" in message


def test_url_without_room_placeholder_is_refused() -> None:
    message = error_of(minimal() | {"url": "ws://h/ws/chat/{host}/general"})
    assert "url: must contain the {room} placeholder" in message


# --- environment variables ----------------------------------------------------------------


def test_environment_variables_are_substituted_everywhere() -> None:
    data = minimal()
    data["url"] = "ws://${HOST}:${PORT}/ws/chat/{host}/{room}"
    data["auth"] = {
        "secret": "${SECRET}",
        "transport": "${TRANSPORT}",
        "claims": {"u": "{username}"},
    }
    data["accounts"]["member"]["token"] = "pre-${TOKEN}-post"
    env = {
        "HOST": "chat.test",
        "PORT": "9000",
        "SECRET": SECRET,
        "TRANSPORT": "cookie",
        "TOKEN": "abc",
    }
    target = parse(data, env=env)
    assert target.url == "ws://chat.test:9000/ws/chat/{host}/{room}"
    assert target.auth.secret == SECRET
    assert target.auth.transport == "cookie"
    assert target.accounts["member"].token == "pre-abc-post"


def test_environment_defaults_to_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDUSPHERE_TEST_ROOM", "lobby")
    data = minimal()
    data["rooms"]["main"] = "${EDUSPHERE_TEST_ROOM}"
    assert parse(data).rooms["main"] == "lobby"


@pytest.mark.parametrize(
    ("path", "key"),
    [
        (("auth", "secret"), "auth.secret"),
        (("accounts", "member", "token"), "accounts.member.token"),
        (("url",), "url"),
    ],
)
def test_unset_environment_variable_names_key_and_variable(path: tuple[str, ...], key: str) -> None:
    data = minimal()
    data.setdefault("auth", {})
    node = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = "ws://h/{room}/${NOT_SET_ANYWHERE}" if key == "url" else "${NOT_SET_ANYWHERE}"
    message = error_of(data, env={"OTHER": "x"})
    assert f"{key}: environment variable NOT_SET_ANYWHERE is not set" in message


def test_substituted_transport_is_still_checked() -> None:
    data = minimal() | {"auth": {"transport": "${T}"}}
    assert "auth.transport: must be one of" in error_of(data, env={"T": "carrier-pigeon"})


def test_dollar_without_braces_is_kept() -> None:
    data = minimal() | {"auth": {"secret": "pa$$word-$HOME-0123456789abcdef", "claims": {}}}
    assert parse(data, env={}).auth.secret == "pa$$word-$HOME-0123456789abcdef"


# --- derived values -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("transport", "name"),
    [("cookie", "JWT"), ("query", "token"), ("header", "Authorization"), ("subprotocol", "")],
)
def test_default_parameter_name_per_transport(transport: str, name: str) -> None:
    assert parse(minimal() | {"auth": {"transport": transport}}, env={}).auth.param_name == name


@pytest.mark.parametrize("transport", ["cookie", "query", "header", "subprotocol"])
def test_explicit_name_wins_over_the_default(transport: str) -> None:
    auth = {"transport": transport, "name": "access_token"}
    assert parse(minimal() | {"auth": auth}, env={}).auth.param_name == "access_token"


def test_url_for_fills_host_and_room() -> None:
    target = parse(minimal(), env={})
    assert target.url_for("general") == "ws://127.0.0.1:8000/ws/chat/alice/general"
    assert target.url_for("random", host="bob") == "ws://127.0.0.1:8000/ws/chat/bob/random"


def test_url_for_keeps_the_trailing_slash_and_query_of_the_template() -> None:
    data = minimal() | {"url": "wss://h/ws/chat/{host}/{room}/?v=2"}
    assert parse(data, env={}).url_for("r1") == "wss://h/ws/chat/alice/r1/?v=2"


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("ws://127.0.0.1:8000/ws/chat/{host}/{room}", ("127.0.0.1", 8000)),
        ("ws://chat.test/ws/chat/{host}/{room}", ("chat.test", 80)),
        ("wss://chat.test/ws/chat/{host}/{room}", ("chat.test", 443)),
        ("wss://chat.test:9443/{host}/{room}", ("chat.test", 9443)),
        ("ws://[::1]:7000/ws/chat/{host}/{room}", ("::1", 7000)),
    ],
)
def test_address(url: str, address: tuple[str, int]) -> None:
    assert parse(minimal() | {"url": url}, env={}).address == address


# --- provisioning -------------------------------------------------------------------------


def test_apply_provision_overrides_and_fills_accounts_and_rooms() -> None:
    target = parse(minimal(), env={})
    output = json.dumps(
        {
            "accounts": {
                "member": {"token": "prov-token-bob-1234", "user_id": 42},
                "outsider": {"username": "dave", "email": "d@x.test", "ignored": "x", "token": "t"},
            },
            "rooms": {"main": "general-2", "other": "random-2"},
        }
    )
    merged = apply_provision(target, output)
    assert merged.accounts["host"] == target.accounts["host"]
    assert merged.accounts["member"] == Account("member", "bob", None, "42", "prov-token-bob-1234")
    assert merged.accounts["outsider"] == Account("outsider", "dave", "d@x.test", None, "t")
    assert dict(merged.rooms) == {"main": "general-2", "other": "random-2"}
    assert "prov-token-bob-1234" not in redact.redact("token prov-token-bob-1234")
    assert target.accounts["member"].token == "tok-bob"  # the original is unchanged


def test_apply_provision_with_an_empty_object_changes_nothing() -> None:
    target = parse(minimal(), env={})
    assert apply_provision(target, "{}") == target


@pytest.mark.parametrize(
    ("output", "words"),
    [
        ("not json", "output is not JSON"),
        ("", "output is not JSON"),
        ("[1, 2]", "output must be a JSON object"),
        ('{"accounts": {"member": "bob"}}', "accounts.member must be an object"),
        ('{"accounts": {"outsider": {"email": "d@x"}}}', "accounts.outsider.username missing"),
        ('{"accounts": {"alice": {"username": "alice"}}}', "accounts.alice: unknown account role"),
        ('{"rooms": {"alice/general": "general"}}', "rooms.alice/general: unknown room key"),
    ],
)
def test_apply_provision_refuses_bad_output(output: str, words: str) -> None:
    with pytest.raises(TargetError) as info:
        apply_provision(parse(minimal(), env={}), output)
    message = str(info.value)
    assert message.startswith("provision.command: ")
    assert words in message
    assert "\n" not in message


def test_load_runs_the_provision_command(tmp_path: Path) -> None:
    command = py_command(
        tmp_path,
        """
        import json
        print(json.dumps({"accounts": {"member2": {"username": "carol", "user_id": "c-3",
                                                   "token": "t-c"}},
                          "rooms": {"missing": "gone-404"}}))
        """,
    )
    path = write_target(tmp_path / "t.toml", minimal() | {"provision": {"command": command}})
    target = commands.load_target(path, env={})
    assert target.accounts["member2"] == Account("member2", "carol", None, "c-3", "t-c")
    assert target.rooms["missing"] == "gone-404"
    assert target.rooms["main"] == "general"
    assert target.provision_command == command


def test_failing_provision_command_gives_its_last_stderr_line(tmp_path: Path) -> None:
    command = py_command(
        tmp_path,
        """
        import sys
        print("some progress", file=sys.stderr)
        print("database is locked", file=sys.stderr)
        sys.exit(1)
        """,
    )
    path = write_target(tmp_path / "t.toml", minimal() | {"provision": {"command": command}})
    message = load_error(path, reader=commands.load_target)
    assert message == "provision.command: command exited 1: database is locked"


def test_missing_provision_command_is_named(tmp_path: Path) -> None:
    command = str(tmp_path / "no-such-provisioner")
    path = write_target(tmp_path / "t.toml", minimal() | {"provision": {"command": command}})
    message = load_error(path, reader=commands.load_target)
    assert message.startswith("provision.command: command not found")
    assert "no-such-provisioner" in message


def test_provision_command_printing_no_json_is_named(tmp_path: Path) -> None:
    command = py_command(tmp_path, 'print("created 3 users")')
    path = write_target(tmp_path / "t.toml", minimal() | {"provision": {"command": command}})
    assert load_error(path, reader=commands.load_target).startswith(
        "provision.command: output is not JSON"
    )


def test_restart_runs_the_restart_command(tmp_path: Path) -> None:
    marker = tmp_path / "restarted"
    command = py_command(tmp_path, f"open({str(marker)!r}, 'w').write('yes')")
    target = parse(minimal() | {"restart": {"command": command}}, env={})
    assert target.can_restart
    commands.restart(target)
    assert marker.read_text() == "yes"


# --- files --------------------------------------------------------------------------------


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    assert load_error(path) == f"{path}: no such target file"


def test_directory_is_not_a_target_file(tmp_path: Path) -> None:
    assert "no such target file" in load_error(tmp_path)


@pytest.mark.parametrize(
    "text", ['url = "ws://h/{room}', "url = \n", "[auth\ntransport = 'query'", "a = 1\na = 2\n"]
)
def test_bad_toml_is_one_line(tmp_path: Path, text: str) -> None:
    path = tmp_path / "t.toml"
    path.write_text(text, encoding="utf-8")
    message = load_error(path)
    assert message.startswith(f"{path}: not valid TOML: ")


def test_non_utf8_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_bytes(to_toml(minimal()).encode() + b'origin = "caf\xe9"\n')
    assert str(path) in load_error(path)


def test_errors_name_the_file(tmp_path: Path) -> None:
    path = write_target(tmp_path / "mine.toml", minimal() | {"auth": {"tranport": "cookie"}})
    assert load_error(path).startswith(f"{path}: auth.tranport: unknown key")


def test_refuse_bare_url_is_one_line_naming_the_url() -> None:
    error = refuse_bare_url("wss://x/ws/chat/{host}/{room}")
    assert isinstance(error, TargetError)
    message = str(error)
    assert "\n" not in message
    assert message.startswith("--target wss://x/ws/chat/{host}/{room}: ")
    assert "target file" in message


def test_unreachable_port_is_not_checked_by_parsing() -> None:
    """Parsing never touches the network: a closed port still parses."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    target = parse(minimal() | {"url": f"ws://127.0.0.1:{port}/{{host}}/{{room}}"}, env={})
    assert target.address == ("127.0.0.1", port)


# --- properties ---------------------------------------------------------------------------

NAME_CHARS = st.characters(
    categories=["Lu", "Ll", "Nd"], include_characters="_.@+-", max_codepoint=0x2FFF
)
usernames = st.text(NAME_CHARS, min_size=1, max_size=24)
slugs = st.from_regex(r"[a-z0-9][a-z0-9-]{0,30}", fullmatch=True)
timeouts = st.floats(min_value=0.01, max_value=3600, allow_nan=False, allow_infinity=False)


@st.composite
def target_dicts(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(usernames, min_size=4, max_size=4, unique=True))
    rooms = draw(st.lists(slugs, min_size=3, max_size=3, unique=True))
    accounts: dict[str, dict[str, Any]] = {}
    for role, name in zip(("host", "member", "member2", "outsider"), names, strict=True):
        account: dict[str, Any] = {"username": name}
        if draw(st.booleans()):
            account["email"] = f"{name}@example.test"
        if draw(st.booleans()):
            account["user_id"] = str(draw(st.uuids()))
        account["token"] = f"token-of-{role}"  # no auth.secret: every account brings a token
        accounts[role] = account
    return {
        "url": draw(st.sampled_from(["ws", "wss"]))
        + "://chat.test:"
        + str(draw(st.integers(1, 65535)))
        + "/ws/chat/{host}/{room}"
        + draw(st.sampled_from(["", "/"])),
        "connect_timeout": draw(timeouts),
        "receive_timeout": draw(timeouts),
        "auth": {
            "transport": draw(st.sampled_from(["cookie", "query", "header", "subprotocol"])),
            "lifetime": draw(st.integers(1, 10**6)),
        },
        "accounts": accounts,
        "rooms": dict(zip(("main", "other", "missing"), rooms, strict=True)),
        "limits": {"max_length": draw(st.integers(1, 10**5))},
        "properties": {"examples": draw(st.integers(1, 500))},
    }


def _assert_same(target: Target, data: dict[str, Any]) -> None:
    assert target.url == data["url"]
    assert target.connect_timeout == data["connect_timeout"]
    assert target.receive_timeout == data["receive_timeout"]
    assert target.auth.transport == data["auth"]["transport"]
    assert target.auth.lifetime == data["auth"]["lifetime"]
    assert dict(target.rooms) == data["rooms"]
    assert target.max_length == data["limits"]["max_length"]
    assert target.examples == data["properties"]["examples"]
    for role, values in data["accounts"].items():
        account = target.accounts[role]
        assert account.username == values["username"]
        assert account.email == values.get("email")
        assert account.user_id == values.get("user_id")
    host, main = data["accounts"]["host"]["username"], data["rooms"]["main"]
    assert target.url_for(main) == data["url"].replace("{host}", host).replace("{room}", main)


@settings(max_examples=50, deadline=None)
@given(data=target_dicts())
def test_generated_target_round_trips_through_toml_and_parse(data: dict[str, Any]) -> None:
    _assert_same(parse(tomllib.loads(to_toml(data)), env={}), data)


@settings(max_examples=50, deadline=None)
@given(data=target_dicts())
def test_generated_target_round_trips_through_a_file_and_load(
    tmp_path_factory: pytest.TempPathFactory, data: dict[str, Any]
) -> None:
    path = write_target(tmp_path_factory.mktemp("prop") / "t.toml", data)
    _assert_same(load(path, env={}), data)


def test_minimal_target_is_not_mutated_by_parse() -> None:
    data = minimal()
    before = copy.deepcopy(data)
    parse(data, env={})
    assert data == before


def test_a_provision_command_may_supply_the_required_accounts_and_room(tmp_path: Path) -> None:
    command = py_command(
        tmp_path,
        """
        import json
        print(json.dumps({"accounts": {"host": {"username": "alice", "token": "t-a"},
                                       "member": {"username": "bob", "token": "t-b"}},
                          "rooms": {"main": "general"}}))
        """,
    )
    data = {"url": minimal()["url"], "provision": {"command": command}}
    target = commands.load_target(write_target(tmp_path / "t.toml", data), env={})
    assert (target.accounts["host"].username, target.rooms["main"]) == ("alice", "general")


def test_what_neither_the_file_nor_its_provision_names_is_one_line(tmp_path: Path) -> None:
    command = py_command(tmp_path, 'print(\'{"accounts": {"host": {"username": "alice"}}}\')')
    data = {"url": minimal()["url"], "provision": {"command": command}}
    message = load_error(write_target(tmp_path / "t.toml", data), reader=commands.load_target)
    assert "accounts.member: missing from the file and from the output of provision.command" in (
        message
    )
    assert "\n" not in message


# --- a target where every test would skip is an error at load ------------------------------


def test_a_claim_no_account_can_fill_is_an_error_naming_the_key() -> None:
    data = minimal()
    data["auth"] = {"secret": SECRET}  # the default claims: sub = "{user_id}"
    for account in data["accounts"].values():
        del account["token"]
    message = error_of(data)
    assert message.startswith("t.toml: accounts.host.user_id: missing (and 1 more accounts);")
    assert "auth.claims.sub = '{user_id}'" in message
    assert "\n" not in message


def test_one_account_without_the_claimed_field_is_an_error_too() -> None:
    data = minimal()
    data["auth"] = {"secret": SECRET, "claims": {"email": "{email}"}}
    data["accounts"]["host"]["email"] = "a@x.test"
    assert error_of(data).startswith("t.toml: accounts.member.email: missing;")


def test_claims_the_accounts_fill_are_accepted() -> None:
    data = minimal()
    data["auth"] = {"secret": SECRET, "claims": {"name": "user:{username}", "exp": "{exp}"}}
    assert parse(data, env={}).auth.secret == SECRET


def test_no_secret_and_no_token_is_an_error_naming_the_account() -> None:
    data = minimal()
    del data["accounts"]["member"]["token"]
    message = error_of(data)
    assert message.startswith("t.toml: accounts.member.token: missing, and there is no auth.secret")


def test_an_account_the_provision_command_leaves_without_a_token_is_an_error(
    tmp_path: Path,
) -> None:
    command = py_command(tmp_path, 'print(\'{"accounts": {"outsider": {"username": "dave"}}}\')')
    path = write_target(tmp_path / "t.toml", minimal() | {"provision": {"command": command}})
    message = load_error(path, reader=commands.load_target)
    assert "accounts.outsider.token: missing from the file and from the output of provision" in (
        message
    )


# --- [headers] ------------------------------------------------------------------------------


def test_headers_are_read_with_environment_variables_and_registered_as_secrets() -> None:
    data = minimal() | {"headers": {"Authorization": "Basic ${GW_AUTH}", "X-Api-Key": "${GW_KEY}"}}
    target = parse(data, env={"GW_AUTH": "Z3c6aHVudGVyMjAyNg==", "GW_KEY": "key-from-env-42"})
    assert dict(target.headers) == {
        "Authorization": "Basic Z3c6aHVudGVyMjAyNg==",
        "X-Api-Key": "key-from-env-42",
    }
    shown = redact.redact("Basic Z3c6aHVudGVyMjAyNg== gw:hunter2026 hunter2026 key-from-env-42")
    assert "Z3c6" not in shown and "hunter2026" not in shown and "key-from-env" not in shown


@pytest.mark.parametrize(
    ("headers", "auth", "key", "words"),
    [
        ({"X Api": "v"}, {}, "headers.X Api", "not a valid HTTP header name"),
        ({"Host": "evil.test"}, {}, "headers.Host", "set by the URL's host"),
        ({"Sec-WebSocket-Key": "x"}, {}, "headers.Sec-WebSocket-Key", "WebSocket handshake"),
        ({"origin": "https://x"}, {}, "headers.origin", "the origin key"),
        ({"Authorization": "Basic x"}, {"transport": "header"}, "headers.Authorization", "token"),
        ({"Cookie": "a=b"}, {"transport": "cookie"}, "headers.Cookie", "auth.transport = cookie"),
        ({"X-Key": "a\nInjected: 1"}, {}, "headers.X-Key", "one line"),
        ({"X-Key": "a", "x-key": "b"}, {}, "headers.x-key", "given twice"),
        ({"X-Key": 5}, {}, "headers.X-Key", "must be a string"),
    ],
)
def test_a_bad_header_is_named(
    headers: dict[str, Any], auth: dict[str, Any], key: str, words: str
) -> None:
    data = minimal() | {"headers": headers}
    if auth:
        data["auth"] = auth
    message = error_of(data)
    assert f"t.toml: {key}: " in message and words in message, message


def test_an_unset_variable_in_a_header_is_named() -> None:
    message = error_of(minimal() | {"headers": {"X-Api-Key": "${GW_KEY}"}})
    assert "headers.X-Api-Key" in message and "GW_KEY" in message


def test_the_authorization_header_is_free_when_the_token_travels_elsewhere() -> None:
    data = minimal() | {"headers": {"Authorization": "Basic Z3c6cGFzcw=="}}
    assert parse(data, env={}).headers["Authorization"] == "Basic Z3c6cGFzcw=="


# --- nodes and [load] ----------------------------------------------------------------------


def test_nodes_are_the_endpoints_in_round_robin_order() -> None:
    target = parse(full())
    assert target.endpoints == tuple(full()["nodes"])
    assert target.url_for("general", node=3).startswith("wss://node2.example.test:8443/")
    assert target.node_label(0) == "node 1 (node1.example.test:8443)"
    assert target.lacking == frozenset()


def test_without_nodes_the_url_is_the_only_endpoint_and_nodes_are_lacking() -> None:
    target = parse(minimal())
    assert target.endpoints == (target.url,)
    assert target.url_for("general", node=5) == target.url_for("general")
    assert target.node_label(0) == ""
    assert target.lacking == frozenset({"nodes", "twin"})  # no rooms.twin_host either


def test_one_node_is_still_lacking_nodes() -> None:
    data = minimal()
    data["nodes"] = [data["url"]]
    assert parse(data).lacking == frozenset({"nodes", "twin"})


def test_a_twin_host_offers_iso_007s_fixture() -> None:
    data = minimal()
    data["rooms"] = {**data.get("rooms", {}), "twin_host": "erin"}
    assert "twin" not in parse(data).lacking


def test_nodes_without_url_take_the_first_node_as_url() -> None:
    data = minimal()
    url = data.pop("url")
    data["nodes"] = [url, url.replace("8000", "8001")]
    assert parse(data).url == url


@pytest.mark.parametrize(
    ("nodes", "key", "words"),
    [
        ([], "nodes", "must name at least one node"),
        ("ws://a/{room}", "nodes", "must be an array of strings"),
        ([1], "nodes[0]", "must be a string"),
        (["http://a/{room}"], "nodes[0]", "must start with ws:// or wss://"),
        (["ws://a/chat"], "nodes[0]", "must contain the {room} placeholder"),
        (["ws://a/{room}", "ws://a/{room}"], "nodes[1]", "is named twice"),
        (["wss://a/{room}"], "nodes[0]", "must use ws:// as url does"),
    ],
)
def test_a_bad_nodes_list_is_one_line_naming_the_node(nodes: Any, key: str, words: str) -> None:
    data = minimal()
    data["nodes"] = nodes
    message = error_of(data)
    assert f"t.toml: {key}: " in message and words in message


def test_load_defaults_make_a_busy_room() -> None:
    load_ = parse(minimal()).load
    assert load_.senders >= 10 and load_.total >= 1000
    assert load_.rate is None and load_.lag_bytes > 4 * 2**20  # past Linux's socket buffers


def test_load_body_defaults_to_the_length_limit_when_it_is_lower() -> None:
    data = minimal()
    data["limits"] = {"max_length": 120}
    assert parse(data).load.body_length == 120


@pytest.mark.parametrize(
    ("load_", "key", "words"),
    [
        ({"senders": 0}, "load.senders", "must be within 1-200"),
        ({"rate": 0}, "load.rate", "must be positive"),
        ({"lag_bytes": 10}, "load.lag_bytes", "must be within"),
        ({"body_length": 20}, "load.body_length", "must be within 48-"),
        ({"body_length": 501}, "load.body_length", "over the length limit (500)"),
        ({"senders": 200, "messages": 1000}, "load.messages", "at most 100,000 events a burst"),
        ({"senders": 100, "messages": 1000, "receivers": 100}, "load.receivers", "deliveries"),
        ({"burst": True}, "load.burst", "unknown key"),
    ],
)
def test_a_bad_load_table_is_one_line_naming_the_key(
    load_: dict[str, Any], key: str, words: str
) -> None:
    data = minimal()
    data["load"] = load_
    message = error_of(data)
    assert f"t.toml: {key}: " in message and words in message


def test_a_rate_limit_below_one_frame_a_second_is_refused_with_its_key() -> None:
    data = minimal()
    data["limits"] = {"max_frames_per_second": 0.5}
    with pytest.raises(TargetError, match=r"limits\.max_frames_per_second: must be at least 1"):
        parse(data)
    assert parse(full()).max_frames_per_second == 30.0


# --- the schema: schemas/target.json --------------------------------------------------------

SCHEMA = schemas.schema("target")


def _section(*path: str) -> dict[str, Any]:
    node: dict[str, Any] = SCHEMA
    for part in path:
        node = node["properties"][part]
    return node


def test_the_example_file_is_valid_under_the_schema_as_an_editor_reads_it() -> None:
    """What an editor pointed at the schema (``#:schema``, a Taplo association) checks: the raw
    file, its ``${VAR}`` still in place."""
    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    assert list(Draft202012Validator(SCHEMA).iter_errors(data)) == []


@pytest.mark.parametrize("kind", [Auth, Load, Tls])
def test_the_schemas_defaults_are_the_dataclasses_defaults(kind: type) -> None:
    table = {Auth: "auth", Load: "load", Tls: "tls"}[kind]
    keys = _section(table)["properties"]
    for f in dataclasses.fields(kind):
        assert f.name in keys, f"{table}.{f.name} is not in schemas/target.json"
        if "default" in keys[f.name]:
            default = f.default_factory() if callable(f.default_factory) else f.default
            assert keys[f.name]["default"] == default, f"{table}.{f.name}"


def test_the_schemas_other_defaults_and_names_are_the_codes() -> None:
    target = parse(minimal(), env={})
    for key, value in target_mod._KEYS.items():
        schema = _section(*value.split("."))
        if "default" in schema:
            assert schema["default"] == getattr(target, key), value
    assert tuple(_section("accounts")["properties"]) == ROLES
    assert tuple(_section("rooms")["properties"]) == ROOM_ROLES
    assert _section("load", "body_length")["minimum"] == MIN_BODY


def test_every_key_of_the_schema_has_a_description() -> None:
    def walk(node: dict[str, Any], path: str) -> None:
        for key, value in node.get("properties", {}).items():
            assert value.get("description"), f"{path}{key}"
            walk(value, f"{path}{key}.")

    walk(SCHEMA, "")
    walk(SCHEMA["$defs"]["account"], "accounts.<role>.")


@pytest.mark.parametrize(
    ("change", "line"),
    [
        ({"auth": {"lifetime": 600.0}}, "auth.lifetime: must be an integer, not 600.0"),
        ({"connect_timeout": float("nan")}, "connect_timeout: must be a finite number, not nan"),
        ({"load": {"rate": 0.05}}, "load.rate: must be within 0.1-100000, not 0.05"),
        ({"load": {"lag_bytes": 10}}, "load.lag_bytes: must be within 65536-268435456, not 10"),
        (
            {"limits": {"max_buffered_frames": 0}},
            "limits.max_buffered_frames: must be at least 1, not 0",
        ),
        ({"asgi": {"app": ""}}, "asgi.app: must be 'package.module:attribute', not ''"),
        ({"auth": "query"}, "auth: must be a table, not 'query'"),
        ({"nodes": ["ws://a/{room}", 2]}, "nodes[1]: must be a string, not 2"),
    ],
)
def test_a_schema_violation_is_one_line_naming_the_key(change: dict[str, Any], line: str) -> None:
    assert error_of(minimal() | change) == f"t.toml: {line}"


def test_an_unknown_account_role_suggests_the_role_meant_and_lists_them() -> None:
    data = minimal()
    data["accounts"]["outsidr"] = {"username": "dave"}
    assert error_of(data) == (
        "t.toml: accounts.outsidr: unknown account role (did you mean 'accounts.outsider'?); "
        "roles: host, member, member2, outsider"
    )


def test_of_several_mistakes_the_first_key_is_told_whatever_the_order() -> None:
    mistakes = {"receive_timeout": "5", "auth": {"lifetime": 0}, "zz": 1}
    for order in (mistakes, dict(reversed(mistakes.items()))):
        assert error_of(minimal() | order) == "t.toml: auth.lifetime: must be positive, not 0"


def test_a_mistake_in_the_file_is_told_before_an_unset_variable() -> None:
    data = minimal() | {"origin": "${NOT_SET_ANYWHERE}", "zz": "x"}
    assert error_of(data) == "t.toml: zz: unknown key"


# --- reading runs nothing; harness.commands runs the commands -----------------------------


def test_reading_a_target_file_runs_no_command(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    command = py_command(tmp_path, f"open({str(marker)!r}, 'w').write('yes')")
    path = write_target(tmp_path / "t.toml", minimal() | {"provision": {"command": command}})
    assert load(path, env={}).provision_command == command
    assert not marker.exists()
    with pytest.raises(ProvisionError, match=r"^provision\.command: output is not JSON"):
        commands.load_target(path, env={})
    assert marker.read_text() == "yes"


def test_target_py_runs_no_process() -> None:
    tree = ast.parse(Path(target_mod.__file__).read_text(encoding="utf-8"))
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not names & {"subprocess", "shlex"}
    assert not hasattr(Target, "restart")


def test_restart_calls_the_restart_hook_before_the_command(tmp_path: Path) -> None:
    marker = tmp_path / "restarted"
    command = py_command(tmp_path, f"open({str(marker)!r}, 'w').write('yes')")
    calls: list[str] = []
    target = parse(minimal() | {"restart": {"command": command}}, env={})
    commands.restart(dataclasses.replace(target, restart_hook=lambda: calls.append("hook")))
    assert calls == ["hook"] and not marker.exists()


def test_a_failing_restart_command_is_one_line_naming_its_key() -> None:
    target = parse(minimal() | {"restart": {"command": "false"}}, env={})
    with pytest.raises(TargetError, match=r"^restart\.command: command exited 1"):
        commands.restart(target)


# --- to_data / from_data: a loaded target handed to a pytest-xdist worker -------------------


def _shapes() -> dict[str, dict[str, Any]]:
    every = full()
    del every["provision"]
    nodes = minimal() | {"nodes": ["ws://a:1/{host}/{room}", "ws://b:2/{host}/{room}"]}
    sized = minimal() | {"load": {"senders": 3, "rate": 20, "lag": 1}, "limits": {"max_length": 90}}
    asgi = minimal() | {"asgi": {"app": "tests.asgi_apps:recorder"}}
    del asgi["url"]
    headers = minimal() | {"headers": {"X-Api-Key": "round-trip-key-0123456789"}}
    claims = minimal() | {"auth": {"secret": SECRET, "claims": {"sub": "{username}", "r": [1]}}}
    return {
        "minimal": minimal(),
        "every key": every,
        "nodes": nodes,
        "load": sized,
        "asgi": asgi,
        "headers": headers,
        "claims": claims,
    }


@pytest.mark.parametrize("shape", list(_shapes()))
def test_to_data_and_from_data_round_trip_through_json(shape: str) -> None:
    target = parse(_shapes()[shape], env={})
    data = json.loads(json.dumps(to_data(target)))  # what execnet can carry
    assert from_data(data) == target
    assert to_data(from_data(data)) == to_data(target)


def test_to_data_has_every_field_but_the_restart_hook() -> None:
    target = dataclasses.replace(parse(minimal(), env={}), restart_hook=lambda: None)
    names = {f.name for f in dataclasses.fields(Target)} - {"restart_hook"}
    assert set(to_data(target)) == names
    assert from_data(to_data(target)).restart_hook is None


def test_from_data_registers_the_secrets_it_carries() -> None:
    data = to_data(parse(full() | {"provision": {}}, env={}))
    data["auth"]["secret"] = "carried-secret-8d2f41"
    data["accounts"]["member"]["token"] = "carried-token-3e9a07"
    data["headers"] = {"X-Api-Key": "carried-header-5c1b66"}
    from_data(data)
    shown = redact.redact("carried-secret-8d2f41 carried-token-3e9a07 carried-header-5c1b66")
    assert "carried" not in shown
