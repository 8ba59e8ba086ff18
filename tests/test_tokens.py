"""JWT minting (harness/tokens.py) over HS256 and RS256.

Each kind of token is decoded with PyJWT and the right key: valid tokens verify and carry the
claims template filled in (with its types), forged ones fail verification the way they should.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from harness import redact
from harness.core.failures import NotTested
from harness.target import Account, Auth
from harness.tokens import Minter

HS_SECRET = "hs256-secret-for-the-token-tests-0123456789abcdef"
CLAIMS: dict[str, Any] = {
    "sub": "{user_id}",
    "name": "{username}",
    "mail": "{email}",
    "tag": "user:{username}",
    "exp": "{exp}",
    "iat": "{iat}",
    "scope": "chat",
    "level": 3,
    "staff": False,
}
LIFETIME = 900
MEMBER = Account("member", "bob", "bob@example.test", "0b0b0b0b-2222-4c6b-9a55-0f1e2d3c4b5a")
MEMBER2 = Account("member2", "carol", "carol@example.test", "ca401ca4-3333-4c6b-9a55-0f1e2d3c4b5a")
HOST = Account("host", "alice", "alice@example.test", "a11ce000-1111-4c6b-9a55-0f1e2d3c4b5a")
ACCOUNTS = (HOST, MEMBER, MEMBER2)


@dataclass(frozen=True)
class Keys:
    algorithm: str
    signing: str  # what the target file gives as auth.secret
    verifying: Any  # what the server checks with

    def auth(self, claims: dict[str, Any] | None = None) -> Auth:
        return Auth(
            algorithm=self.algorithm,
            secret=self.signing,
            claims=dict(CLAIMS if claims is None else claims),
            lifetime=LIFETIME,
        )

    def decode(self, token: str, **options: Any) -> dict[str, Any]:
        decoded: dict[str, Any] = jwt.decode(
            token,
            self.verifying,
            algorithms=[self.algorithm],
            options={"verify_aud": False, **options},  # type: ignore[arg-type]
        )
        return decoded


@pytest.fixture(scope="module")
def rs256() -> Keys:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return Keys("RS256", pem, private.public_key())


@pytest.fixture(params=["HS256", "RS256"])
def keys(request: pytest.FixtureRequest) -> Keys:
    if request.param == "HS256":
        return Keys("HS256", HS_SECRET, HS_SECRET)
    rs: Keys = request.getfixturevalue("rs256")
    return rs


def unverified(token: str) -> dict[str, Any]:
    payload: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return payload


def header_of(token: str) -> dict[str, Any]:
    head = token.split(".")[0]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    return decoded


def expected_claims(account: Account) -> dict[str, Any]:
    """The template filled in by hand, without exp/iat."""
    return {
        "sub": account.user_id,
        "name": account.username,
        "mail": account.email,
        "tag": f"user:{account.username}",
        "scope": "chat",
        "level": 3,
        "staff": False,
    }


def assert_times(claims: dict[str, Any], before: int, after: int) -> None:
    """``exp``/``iat`` are ints; exp is lifetime after minting; iat is not in the future."""
    assert type(claims["exp"]) is int and type(claims["iat"]) is int
    assert before + LIFETIME <= claims["exp"] <= after + LIFETIME
    assert before - 300 <= claims["iat"] <= after
    assert claims["iat"] < claims["exp"]


# --- valid --------------------------------------------------------------------------------


def test_valid_token_verifies_and_carries_the_template(keys: Keys) -> None:
    before = int(time.time())
    token = Minter(keys.auth()).valid(MEMBER)
    after = int(time.time())
    claims = keys.decode(token)
    assert header_of(token)["alg"] == keys.algorithm
    assert {k: v for k, v in claims.items() if k not in ("exp", "iat")} == expected_claims(MEMBER)
    assert_times(claims, before, after)


def test_single_placeholder_keeps_its_type_and_mixed_templates_are_strings(keys: Keys) -> None:
    template = {
        "uid": "{user_id}",
        "when": "{iat}",
        "until": "exp={exp}",
        "who": "{username}<{email}>",
    }
    claims = keys.decode(Minter(keys.auth(template)).valid(MEMBER), verify_exp=False)
    assert type(claims["when"]) is int
    assert claims["until"].startswith("exp=") and claims["until"][4:].isdigit()
    assert claims["who"] == "bob<bob@example.test>"
    assert claims["uid"] == MEMBER.user_id


def test_claims_fills_the_template_for_a_given_time() -> None:
    minter = Minter(Auth(secret=HS_SECRET, claims={"sub": "{username}", "exp": "{exp}"}))
    assert minter.claims(MEMBER, now=1_000) == {"sub": "bob", "exp": 1_000 + 600}
    assert minter.claims(MEMBER, now=1_000, exp_offset=5) == {"sub": "bob", "exp": 1_005}


def test_short_lived_token_expires_when_asked(keys: Keys) -> None:
    before = int(time.time())
    claims = keys.decode(Minter(keys.auth()).short_lived(MEMBER, 30))
    assert before + 30 <= claims["exp"] <= int(time.time()) + 30


def test_can_mint_follows_the_secret(keys: Keys) -> None:
    assert Minter(keys.auth()).can_mint
    assert not Minter(replace(keys.auth(), secret=None)).can_mint


# --- forged -------------------------------------------------------------------------------


def test_expired_token_decodes_as_expired(keys: Keys) -> None:
    token = Minter(keys.auth()).expired(MEMBER)
    with pytest.raises(jwt.ExpiredSignatureError):
        keys.decode(token)
    claims = keys.decode(token, verify_exp=False)  # the signature itself is good
    assert claims["exp"] < time.time() - 60
    assert claims["sub"] == MEMBER.user_id


def test_wrong_key_token_fails_verification_with_the_right_key(keys: Keys) -> None:
    token = Minter(keys.auth()).wrong_key(MEMBER)
    assert header_of(token)["alg"] == keys.algorithm
    with pytest.raises(jwt.InvalidSignatureError):
        keys.decode(token)
    assert unverified(token)["sub"] == MEMBER.user_id  # only the key is wrong


def test_alg_none_token_has_header_alg_none_and_no_signature(keys: Keys) -> None:
    token = Minter(keys.auth()).alg_none(MEMBER)
    assert header_of(token)["alg"] == "none"
    assert token.endswith(".")
    assert unverified(token)["sub"] == MEMBER.user_id
    with pytest.raises(jwt.InvalidTokenError):
        keys.decode(token)


def test_tampered_token_names_the_impostor_and_fails_verification(keys: Keys) -> None:
    minter = Minter(keys.auth())
    token = minter.tampered(MEMBER, HOST)
    payload = unverified(token)
    assert payload["sub"] == HOST.user_id
    assert payload["name"] == "alice"
    assert header_of(token)["alg"] == keys.algorithm
    with pytest.raises(jwt.InvalidSignatureError):
        keys.decode(token)


def test_unknown_user_token_names_nobody_of_the_accounts(keys: Keys) -> None:
    token = Minter(keys.auth()).unknown_user()
    claims = keys.decode(token)  # validly signed: only the user is unknown
    assert claims["sub"] not in {a.user_id for a in ACCOUNTS}
    assert claims["name"] not in {a.username for a in ACCOUNTS}
    assert claims["mail"] not in {a.email for a in ACCOUNTS}


def test_unknown_user_tokens_differ_between_calls() -> None:
    minter = Minter(Keys("HS256", HS_SECRET, HS_SECRET).auth())
    assert unverified(minter.unknown_user())["sub"] != unverified(minter.unknown_user())["sub"]


def test_malformed_tokens_are_not_jwts() -> None:
    for text in Minter.malformed():
        with pytest.raises(jwt.DecodeError):
            jwt.decode(text, HS_SECRET, algorithms=["HS256"])


# --- not tested ---------------------------------------------------------------------------

#: Forged kinds that need the signing key.
NEEDS_SECRET: dict[str, Callable[[Minter], str]] = {
    "expired": lambda m: m.expired(MEMBER),
    "short_lived": lambda m: m.short_lived(MEMBER, 5),
    "unknown_user": lambda m: m.unknown_user(),
}
FORGED: dict[str, Callable[[Minter], str]] = {
    **NEEDS_SECRET,
    "wrong_key": lambda m: m.wrong_key(MEMBER),
    "alg_none": lambda m: m.alg_none(MEMBER),
    "tampered": lambda m: m.tampered(MEMBER, HOST),
}


@pytest.mark.parametrize("kind", sorted(NEEDS_SECRET))
def test_forged_kinds_are_not_tested_without_a_secret(kind: str) -> None:
    minter = Minter(Auth(secret=None, claims=CLAIMS))
    with pytest.raises(NotTested, match=r"needs auth\.secret"):
        NEEDS_SECRET[kind](minter)


@pytest.mark.parametrize(
    ("template", "missing"),
    [
        ({"sub": "{user_id}"}, "user_id"),
        ({"sub": "id:{user_id}"}, "user_id"),
        ({"sub": "{username}", "mail": "{email}"}, "email"),
    ],
)
def test_missing_placeholder_value_is_not_tested(template: dict[str, Any], missing: str) -> None:
    account = Account("member", "bob", email=None, user_id=None)
    with pytest.raises(NotTested, match=rf"accounts\.\*\.{missing}"):
        Minter(Auth(secret=HS_SECRET, claims=template)).valid(account)


def test_wrong_key_and_unsigned_tokens_need_no_secret() -> None:
    minter = Minter(Auth(secret=None, claims=CLAIMS))
    wrong = minter.wrong_key(MEMBER)
    assert jwt.get_unverified_header(wrong)["alg"] == "HS256"
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(wrong, HS_SECRET, algorithms=["HS256"])
    assert jwt.get_unverified_header(minter.alg_none(MEMBER))["alg"] == "none"


def test_tampering_without_a_secret_rewrites_the_given_token() -> None:
    given = jwt.encode({"sub": MEMBER.user_id, "aud": "chat", "exp": 4102444800}, HS_SECRET)
    minter = Minter(Auth(secret=None, claims={"sub": "{user_id}"}))
    forged = minter.tampered(replace(MEMBER, token=given), HOST)
    assert forged.split(".")[2] == given.split(".")[2]  # the original signature, kept
    claims = jwt.decode(forged, options={"verify_signature": False})
    assert claims == {"sub": HOST.user_id, "aud": "chat", "exp": 4102444800}
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(forged, HS_SECRET, algorithms=["HS256"], audience="chat")
    with pytest.raises(NotTested, match=r"accounts\.member\.token"):
        minter.tampered(MEMBER, HOST)  # no token to tamper with


def test_valid_falls_back_to_the_account_token_without_a_secret() -> None:
    account = replace(MEMBER, token="given-token-for-bob-123")
    assert Minter(Auth(secret=None)).valid(account) == "given-token-for-bob-123"


def test_valid_prefers_minting_when_there_is_a_secret() -> None:
    account = replace(MEMBER, token="given-token-for-bob-123")
    token = Minter(Auth(secret=HS_SECRET)).valid(account)
    assert token != "given-token-for-bob-123"
    assert jwt.decode(token, HS_SECRET, algorithms=["HS256"])["sub"] == MEMBER.user_id


def test_valid_without_secret_or_token_is_not_tested_naming_the_role() -> None:
    with pytest.raises(NotTested, match=r"accounts\.member\.token"):
        Minter(Auth(secret=None)).valid(MEMBER)


def test_values_are_not_rescanned_for_placeholders() -> None:
    minter = Minter(Auth(secret=HS_SECRET, claims={"tag": "user:{username}", "e": "{email}"}))
    account = Account("member", "{exp}-{email}", email="x@example.test", user_id="1")
    assert minter.claims(account, now=1_000)["tag"] == "user:{exp}-{email}"


# --- redaction ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind", ["valid", "expired", "short_lived", "wrong_key", "alg_none", "tampered", "unknown"]
)
def test_every_minted_token_is_registered_for_redaction(keys: Keys, kind: str) -> None:
    minter = Minter(keys.auth())
    if kind == "valid":
        token = minter.valid(MEMBER)
    elif kind == "unknown":
        token = minter.unknown_user()
    else:
        token = FORGED[kind](minter)
    assert token in redact.registered()
    assert token not in redact.redact(f"GET /ws/chat/alice/general?token={token} HTTP/1.1")


# --- property -----------------------------------------------------------------------------

NAMES = st.text(
    st.characters(categories=["L", "N", "P", "S", "Zs"], exclude_characters="{}"),
    min_size=1,
    max_size=40,
)


@settings(max_examples=50, deadline=None)
@given(username=NAMES, email=st.emails(), user_id=st.uuids().map(str))
def test_minted_claims_equal_the_filled_template(username: str, email: str, user_id: str) -> None:
    account = Account("member", username, email, user_id)
    before = int(time.time())
    token = Minter(Auth(secret=HS_SECRET, claims=CLAIMS, lifetime=LIFETIME)).valid(account)
    after = int(time.time())
    claims = jwt.decode(token, HS_SECRET, algorithms=["HS256"])
    assert {k: v for k, v in claims.items() if k not in ("exp", "iat")} == expected_claims(account)
    assert_times(claims, before, after)


def test_a_private_key_is_parsed_once_for_all_minters(
    rs256: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each test has a Minter of its own; the PEM key behind them is parsed once per run."""
    import jwt.algorithms

    from harness import tokens

    calls: list[object] = []
    real = jwt.algorithms.load_pem_private_key

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(jwt.algorithms, "load_pem_private_key", counting)
    tokens.signing_key.cache_clear()
    auth = rs256.auth()
    for _ in range(5):
        minter = Minter(auth)
        for who in ACCOUNTS:
            rs256.decode(minter.valid(who))
        rs256.decode(minter.short_lived(MEMBER, 60))
    assert len(calls) == 1
