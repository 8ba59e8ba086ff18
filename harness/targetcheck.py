"""The checks of a target file's data, one key at a time: its JSON Schema (``schemas/target.json``)
and what a schema cannot say (environment variables, URL shapes, header names, the [tls] files).

Every refusal is a :class:`TargetError` of one line, ``<file>: <dotted.key>: <what is wrong>``.
The keys' types, enums and bounds are the schema's; this module only turns the first violation
(by key, then by keyword) into that line. The schema's ``errorMessage`` (the ajv-errors form,
keyed by keyword) gives the words where the generic ones would say less.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jsonschema import (  # type: ignore[import-untyped, unused-ignore]
    Draft202012Validator,
    validators,
)

from harness import redact, schemas
from harness.core.failures import UsageError
from harness.wire.tls import Tls, TlsError

PLACEHOLDERS = ("username", "email", "user_id", "exp", "iat")
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
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
#: Keys that mean nothing without a network: refused beside ``[asgi]``, with why.
_NOT_WITH_ASGI = {
    "nodes": "one application in-process is one node",
    "tls": "there is no socket to speak TLS on",
    "restart": "there is no server process to restart",
}


class TargetError(UsageError):
    """A target file that cannot be used. ``str()`` is one line naming the key."""


class ProvisionError(TargetError):
    """The target file is right, but its ``provision.command`` failed or printed what cannot
    be used: the run started and stopped (its reports say why), unlike a mistake in the file."""

    def __init__(self, line: str) -> None:
        super().__init__(line)
        self.stopped = True


def fail(where: str, key: str, message: str) -> TargetError:
    return TargetError(f"{where}: {key}: {message}" if key else f"{where}: {message}")


# --- the schema -----------------------------------------------------------------------------

_TYPES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "object": "a table",
    "array": "an array",
}
#: Which violation of one key is told first: its type, then the rest.
_RANK = ("type", "additionalProperties", "required", "enum", "exclusiveMinimum", "minimum")


@cache
def _validator() -> Any:
    """A 2020-12 validator with TOML's types: an integer is no float (600.0 is not an
    integer), a number is finite (TOML has ``nan`` and ``inf``; JSON has neither)."""

    def integer(_checker: object, value: object) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    def number(_checker: object, value: object) -> bool:
        return integer(_checker, value) or (isinstance(value, float) and math.isfinite(value))

    types = Draft202012Validator.TYPE_CHECKER.redefine_many({"integer": integer, "number": number})
    cls = validators.extend(Draft202012Validator, type_checker=types)
    return cls(schemas.schema("target"))


def _dotted(path: Sequence[object]) -> str:
    """``auth.claims.sub``, ``nodes[1]``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else str(part)
    return out


def _explain(error: Any) -> tuple[list[Any], str]:
    """The key a violation is about, and what to say about it."""
    path, value, keyword = list(error.absolute_path), error.instance, str(error.validator)
    schema = error.schema if isinstance(error.schema, dict) else {}
    custom = schema.get("errorMessage", {})
    if keyword == "additionalProperties":
        known = list(schema.get("properties", {}))
        extra = next(k for k in value if k not in known)
        close = difflib.get_close_matches(extra, known, n=1)
        hint = f" (did you mean '{_dotted([*path, close[0]])}'?)" if close else ""
        words, sep, rest = custom.get(keyword, "unknown key").partition(";")
        return [*path, extra], f"{words}{hint}{sep}{rest}"  # the hint ends the first clause
    if keyword == "required":
        missing = next(k for k in error.validator_value if k not in value)
        return [*path, missing], custom.get(keyword, {}).get(missing, "missing")
    shown = "a table" if isinstance(value, dict) else repr(value)
    if keyword == "type":
        kind = _TYPES[error.validator_value]
        if kind == "an array" and schema.get("items", {}).get("type") == "string":
            kind = "an array of strings"
        if isinstance(value, float) and not math.isfinite(value):
            kind = "a finite number"
        return path, f"must be {kind}, not {shown}"
    low, high = schema.get("minimum"), schema.get("maximum")
    if keyword == "enum":
        words = f"must be one of {', '.join(map(str, error.validator_value))}"
    elif keyword == "exclusiveMinimum":
        words = (
            "must be positive"
            if error.validator_value == 0
            else f"must be over {error.validator_value}"
        )
    elif keyword in ("minimum", "maximum") and low is not None and high is not None:
        words = f"must be within {low}-{high}"
    elif keyword in ("minimum", "maximum"):
        words = f"must be at least {low}" if high is None else f"must be at most {high}"
    else:
        words = str(error.message)
    words = custom.get(keyword, words)
    return path, words if isinstance(value, list | dict) else f"{words}, not {shown}"


def _first_violation(data: Mapping[str, Any], where: str, pending: bool = False) -> None:
    """Raise the first violation of the schema, by key then keyword. ``pending``: the data's
    ``${VAR}`` are not replaced yet, so a string holding one is judged after (its type now)."""
    found = []
    for error in _validator().iter_errors(data):
        value = error.instance
        if pending and error.validator != "type" and isinstance(value, str) and _ENV.search(value):
            continue
        path, message = _explain(error)
        rank = _RANK.index(error.validator) if error.validator in _RANK else len(_RANK)
        found.append((tuple(path), rank, message))
    if found:
        first, _, message = min(found, key=lambda item: item[:2])
        raise fail(where, _dotted(first), message)


def checked(data: Mapping[str, Any], where: str, env: Mapping[str, str]) -> dict[str, Any]:
    """``data`` checked against the schema, its ``${VAR}`` replaced from ``env`` (a new dict).

    Types and unknown keys are judged first, then the variables are replaced, then the values
    they filled (an enum, a pattern) are judged.
    """
    _first_violation(data, where, pending=True)
    expanded: dict[str, Any] = expand_env(dict(data), "", where, env)
    _first_violation(expanded, where)
    return expanded


def expand_env(value: Any, path: str, where: str, env: Mapping[str, str]) -> Any:
    """``value`` with every ``${NAME}`` in its strings replaced by ``env[NAME]``."""
    if isinstance(value, str):

        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                raise fail(where, path, f"environment variable {name} is not set")
            return env[name]

        return _ENV.sub(sub, value)
    if isinstance(value, dict):
        return {
            k: expand_env(v, f"{path}.{k}" if path else k, where, env) for k, v in value.items()
        }
    if isinstance(value, list):
        return [expand_env(v, f"{path}[{i}]", where, env) for i, v in enumerate(value)]
    return value


# --- what the schema cannot say ---------------------------------------------------------------


def asgi_app(data: Mapping[str, Any], where: str) -> str | None:
    """``[asgi] app`` (its shape is the schema's; imported when the run starts,
    :func:`harness.asgi.load_app`), and no key beside it that needs a network."""
    if "asgi" not in data:
        return None
    for key, why in _NOT_WITH_ASGI.items():
        if key in data:
            raise fail(where, key, f"cannot be used with [asgi]: {why}")
    return str(data["asgi"]["app"])


def check_endpoint(url: str, key: str, where: str) -> None:
    """A ``ws://`` or ``wss://`` URL template with the ``{room}`` placeholder."""
    if urlsplit(url).scheme not in ("ws", "wss"):
        raise fail(where, key, f"must start with ws:// or wss://, not {url!r}")
    if "{room}" not in url:
        raise fail(where, key, "must contain the {room} placeholder")


def endpoints(data: Mapping[str, Any], where: str) -> tuple[str, tuple[str, ...]]:
    """``url`` and ``nodes``: endpoint templates, the nodes none twice and of url's scheme;
    without url, the first node."""
    nodes: list[str] = data.get("nodes", [])
    if "url" not in data and not nodes:
        raise fail(
            where, "url", "missing (the endpoint template, e.g. ws://host/ws/chat/{host}/{room})"
        )
    url: str = data.get("url", nodes[0] if nodes else "")
    check_endpoint(url, "url", where)
    scheme = urlsplit(url).scheme
    for i, node in enumerate(nodes):
        check_endpoint(node, f"nodes[{i}]", where)
        if node in nodes[:i]:
            raise fail(where, f"nodes[{i}]", f"{node} is named twice")
        if urlsplit(node).scheme != scheme:
            raise fail(
                where, f"nodes[{i}]", f"must use {scheme}:// as url does (one [tls] for all)"
            )
    return url, tuple(nodes)


def check_claims(claims: Mapping[str, Any], where: str) -> None:
    """Every placeholder of ``auth.claims`` is one the harness fills."""
    for claim, template in claims.items():
        for name in claimed(template):
            if name not in PLACEHOLDERS:
                raise fail(
                    where,
                    f"auth.claims.{claim}",
                    f"unknown placeholder {{{name}}} (known: {', '.join(PLACEHOLDERS)})",
                )


def claimed(template: object) -> list[str]:
    """The placeholders a claim's template names."""
    return _PLACEHOLDER.findall(template) if isinstance(template, str) else []


def headers(data: Mapping[str, str], transport: str, name: str, where: str) -> dict[str, str]:
    """``[headers]``: valid names, none the handshake or the token transport (``transport``,
    its cookie or header ``name``) sets, values on one line. Every value is registered as a
    secret (redacted wherever it would appear)."""
    taken = dict(_HANDSHAKE_HEADERS)
    if transport == "header":
        taken[name.lower()] = "auth.transport = header (the token's header)"
    if transport == "cookie":
        taken["cookie"] = "auth.transport = cookie (the token's cookie)"
    found: dict[str, str] = {}
    for header, value in data.items():
        key = f"headers.{header}"
        if not _HEADER_NAME.match(header):
            raise fail(where, key, "is not a valid HTTP header name")
        if header.lower() in taken:
            raise fail(where, key, f"is set by {taken[header.lower()]}; it cannot be set here")
        if "\r" in value or "\n" in value or "\0" in value:
            raise fail(where, key, "the value must be one line")
        if any(other.lower() == header.lower() for other in found):
            raise fail(where, key, "given twice (header names ignore case)")
        found[header] = value
        redact.register_header(value)
    return found


def tls(data: Mapping[str, Any], scheme: str, where: str, base: Path) -> Tls:
    """``[tls]``: files exist (relative to the target file), a key goes with a certificate,
    and the settings load (a CA file, a client certificate and its key)."""
    if not data:
        return Tls()
    if scheme != "wss":
        first = next(iter(data))
        raise fail(where, f"tls.{first}", "applies to wss:// URLs only; url is ws://")
    files: dict[str, str | None] = {}
    for key in ("ca_file", "client_cert", "client_key"):
        value = data.get(key)
        if value is None:
            files[key] = None
            continue
        path = (base / Path(value).expanduser()).resolve()
        if not path.is_file():
            raise fail(where, f"tls.{key}", f"no such file: {path}")
        files[key] = str(path)
    if files["client_key"] and not files["client_cert"]:
        raise fail(where, "tls.client_key", "needs tls.client_cert (the certificate it signs)")
    server_name = data.get("server_name")
    if server_name is not None and not server_name.strip():
        raise fail(where, "tls.server_name", "must not be empty")
    settings = Tls(
        ca_file=files["ca_file"],
        verify=data.get("verify", True),
        client_cert=files["client_cert"],
        client_key=files["client_key"],
        server_name=server_name,
    )
    try:
        settings.context()
    except TlsError as exc:
        raise TargetError(f"{where}: {exc}") from None
    return settings
