"""Finding the JWT in a handshake request and verifying it.

Seed, "Connection Authentication": "1. User is authenticated via JWT token". The seed does not say
where the token travels (protocol notes: "Where the token travels"): a cookie, a query parameter, an
``Authorization: Bearer`` header or the ``Sec-WebSocket-Protocol`` header, each enabled by
``ServerConfig.transports``. Only the configured algorithm is accepted, never ``none``, and
``exp`` is required and checked; so is ``aud`` when the server has an ``audience``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import jwt
from websockets.datastructures import Headers

from reference_server.behaviour import Behaviour
from reference_server.config import ServerConfig, Transport


class AuthError(Exception):
    """The token does not authenticate anyone. The message is safe to log (never the token)."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """A token found in a request, where it was, and the subprotocol the server must select."""

    token: str
    transport: Transport
    subprotocol: str | None = None


def offered_subprotocols(headers: Headers) -> list[str]:
    """The values of every ``Sec-WebSocket-Protocol`` header, in order."""
    return [
        value.strip()
        for header in headers.get_all("Sec-WebSocket-Protocol")
        for value in header.split(",")
        if value.strip()
    ]


def find_credentials(config: ServerConfig, headers: Headers, query: str) -> Credentials | None:
    """The first token found, trying header, subprotocol, query and cookie in that order.

    Only transports listed in ``config.transports`` are looked at.
    """
    transports = config.transports
    if "header" in transports:
        value = headers.get(config.header_name)
        if value:
            token = _from_authorization(value, config.header_scheme)
            if token:
                return Credentials(token, "header")
    if "subprotocol" in transports:
        credentials = _from_subprotocols(offered_subprotocols(headers), config.subprotocol_name)
        if credentials is not None:
            return credentials
    if "query" in transports and query:
        for name, value in parse_qsl(query, keep_blank_values=True):
            if name == config.token_name and value:
                return Credentials(value, "query")
    if "cookie" in transports:
        for header in headers.get_all("Cookie"):
            for pair in header.split(";"):
                name, _, value = pair.strip().partition("=")
                value = value.strip().strip('"')
                if name == config.token_name and value:
                    return Credentials(value, "cookie")
    return None


def _from_authorization(value: str, scheme: str) -> str | None:
    if not scheme:
        return value.strip() or None
    given, _, token = value.strip().partition(" ")
    if given.lower() != scheme.lower():
        return None
    return token.strip() or None


def _from_subprotocols(offered: list[str], name: str | None) -> Credentials | None:
    """With a name the client offers [name, token] and the server selects name; without one the
    client offers [token] and the server selects that same value."""
    if name is not None:
        if name not in offered:
            return None
        others = [value for value in offered if value != name]
        return Credentials(others[0], "subprotocol", name) if others else None
    for value in offered:
        if value.count(".") == 2:  # looks like a compact JWS
            return Credentials(value, "subprotocol", value)
    return Credentials(offered[0], "subprotocol", offered[0]) if offered else None


class TokenVerifier:
    """Verifies tokens against one algorithm and key, prepared once; ``behaviour`` (default: the
    config's) decodes them."""

    def __init__(self, config: ServerConfig, behaviour: Behaviour | None = None) -> None:
        self.algorithm = config.algorithm
        self.claim = config.user_claim
        self.audience = config.audience
        self._behaviour = behaviour or config.behaviour()
        algorithm = jwt.PyJWS().get_algorithm_by_name(config.algorithm)
        self._key: Any = algorithm.prepare_key(config.secret)

    def verify(self, token: str) -> str:
        """Return the value of the user claim, as a string, or raise AuthError."""
        try:
            claims = self._behaviour.decode_token(token, self._key, self.algorithm, self.audience)
        except jwt.ExpiredSignatureError:
            raise AuthError("token expired") from None
        except jwt.InvalidSignatureError:
            raise AuthError("bad signature") from None
        except jwt.InvalidAlgorithmError:
            raise AuthError("algorithm not accepted") from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError(f"token lacks {exc.claim}") from None
        except jwt.DecodeError:
            raise AuthError("malformed token") from None
        except jwt.InvalidTokenError as exc:
            raise AuthError(f"invalid token ({type(exc).__name__})") from None
        value = claims.get(self.claim)
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise AuthError(f"token lacks a usable {self.claim!r} claim")
        return str(value)
