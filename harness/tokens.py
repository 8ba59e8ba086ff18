"""JWT minting from the target's claims template.

With ``auth.secret`` the harness mints valid, expired, wrongly signed, unsigned (``alg: none``),
tampered and unknown-user tokens. Without it, only the tokens the target gives per account are
available, and the checks that need forged tokens are *not tested*.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
import uuid
from functools import lru_cache
from typing import Any

import jwt

from harness import redact
from harness.core.failures import NotTested
from harness.target import Account, Auth


def _fill(template: Any, values: dict[str, Any], claim: str) -> Any:
    if not isinstance(template, str):
        return template
    for name, value in values.items():
        if template == "{" + name + "}":
            if value is None:
                raise NotTested(f"needs accounts.*.{name} for the claim {claim!r}")
            return value

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            return match.group(0)
        if values[name] is None:
            raise NotTested(f"needs accounts.*.{name} for the claim {claim!r}")
        return str(values[name])

    # One pass: a filled-in value is never scanned for placeholders again.
    return re.sub(r"\{([a-z_]+)\}", fill, template)


@lru_cache(maxsize=16)
def signing_key(secret: str, algorithm: str) -> Any:
    """``secret`` made ready to sign with ``algorithm``, once per run: a PEM private key is
    parsed here and never again (parsing an RSA key costs milliseconds; a run mints hundreds
    of tokens)."""
    try:
        return jwt.get_algorithm_by_name(algorithm).prepare_key(secret)
    except (NotImplementedError, ValueError, TypeError, jwt.InvalidKeyError):
        return secret  # let jwt.encode say what is wrong, as before


@lru_cache(maxsize=8)
def _wrong_key_for(alg: str) -> Any:
    """A signing key of our own for ``alg`` (one per run: RSA key generation is slow)."""
    if alg.startswith("HS"):
        return secrets.token_urlsafe(48)
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if alg.startswith(("RS", "PS")):
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if alg == "EDDSA":
        from cryptography.hazmat.primitives.asymmetric import ed25519

        return ed25519.Ed25519PrivateKey.generate()
    if alg.startswith("ES"):
        curve = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1()}.get(alg, ec.SECP521R1())
        return ec.generate_private_key(curve)
    raise NotTested(f"cannot make a wrong key for algorithm {alg}")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Minter:
    # Two tokens minted for one account in the same second would be the same string; a server
    # may legitimately tie state to a token (revocation, single use), so each mint in a second
    # takes an ``iat`` one second further back (never in the future, which servers refuse).
    _second = 0
    _count = 0

    def __init__(self, auth: Auth) -> None:
        self.auth = auth

    @classmethod
    def _serial(cls, now: int) -> int:
        if now != cls._second:
            cls._second, cls._count = now, 0
        else:
            cls._count = (cls._count + 1) % 300
        return cls._count

    @property
    def can_mint(self) -> bool:
        return bool(self.auth.secret)

    def _require_secret(self, what: str) -> str:
        if not self.auth.secret:
            raise NotTested(f"needs auth.secret to mint {what}")
        return self.auth.secret

    def claims(
        self, account: Account, *, now: int | None = None, exp_offset: int | None = None
    ) -> dict[str, Any]:
        iat = now
        if now is None:
            now = int(time.time())
            iat = now - self._serial(now)
        lifetime = self.auth.lifetime if exp_offset is None else exp_offset
        values: dict[str, Any] = {
            "username": account.username,
            "email": account.email,
            "user_id": account.user_id,
            "iat": iat,
            "exp": now + lifetime,
        }
        return {k: _fill(v, values, k) for k, v in self.auth.claims.items()}

    def _encode(self, claims: dict[str, Any], key: Any, algorithm: str | None = None) -> str:
        algorithm = algorithm or self.auth.algorithm
        if isinstance(key, str):
            key = signing_key(key, algorithm)
        token = jwt.encode(claims, key, algorithm=algorithm)
        redact.register(token)
        return token

    def valid(self, account: Account) -> str:
        """A token that authenticates ``account`` (minted, or the one the target gives)."""
        if self.auth.secret:
            return self._encode(self.claims(account), self.auth.secret)
        if account.token:
            return account.token
        raise NotTested(f"needs auth.secret or accounts.{account.role}.token")

    def expired(self, account: Account) -> str:
        key = self._require_secret("an expired token")
        now = int(time.time())
        return self._encode(self.claims(account, now=now - 7200, exp_offset=3600), key)

    def short_lived(self, account: Account, seconds: int) -> str:
        """A valid token that expires ``seconds`` from now."""
        key = self._require_secret("a short-lived token")
        return self._encode(self.claims(account, exp_offset=seconds), key)

    def wrong_key(self, account: Account) -> str:
        """Signed with a key of our own: needs no secret, only the claims template."""
        return self._encode(self.claims(account), self._other_key())

    def alg_none(self, account: Account) -> str:
        """Unsigned (``alg: none``): needs no secret, only the claims template."""
        token = jwt.encode(self.claims(account), None, algorithm="none")  # type: ignore[arg-type, unused-ignore]
        redact.register(token)
        return token

    def tampered(self, account: Account, impostor: Account) -> str:
        """``account``'s signed token with the payload rewritten to name ``impostor``.

        Without a secret the token the target gives for ``account`` is tampered with: its
        payload keeps every claim and takes the impostor's from the claims template.
        """
        if self.auth.secret:
            original = self._encode(self.claims(account), self.auth.secret)
            claims = self.claims(impostor)
        else:
            original = self.valid(account)
            try:
                _, payload, _ = original.split(".")
                claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            except ValueError:
                raise NotTested(f"accounts.{account.role}.token is not a JWT") from None
            if not isinstance(claims, dict):
                raise NotTested(f"accounts.{account.role}.token is not a JWT")
            claims.update(self.claims(impostor))
        header, _payload, signature = original.split(".")
        forged = _b64(json.dumps(claims, separators=(",", ":")).encode())
        token = f"{header}.{forged}.{signature}"
        redact.register(token)
        return token

    def unknown_user(self) -> str:
        key = self._require_secret("a token for an unknown user")
        tag = secrets.token_hex(6)
        stranger = Account(
            role="unknown",
            username=f"nobody-{tag}",
            email=f"nobody-{tag}@example.invalid",
            user_id=str(uuid.uuid4()),
        )
        return self._encode(self.claims(stranger), key)

    @staticmethod
    def malformed() -> tuple[str, ...]:
        """Strings that are not JWTs at all."""
        return ("not-a-jwt", "eyJhbGciOiJIUzI1NiJ9.not base64!.x", "a.b.c", "")

    def _other_key(self) -> Any:
        return _wrong_key_for(self.auth.algorithm.upper())
