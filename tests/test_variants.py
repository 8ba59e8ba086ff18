"""The suites pass against reference servers that differ in every open point of the seed.

Each variant changes the token transport, the claim naming the user, the algorithm, the refusal
style, the trailing slash and the timestamp style together with its matching target file; a
conformant server must pass whichever reasonable reading it takes (protocol notes, first rule).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from reference_server.demo import demo_config, demo_target_dict
from reference_server.runner import ServerThread
from tests.support import (
    NO_RESTART,
    assert_passes_everything,
    run_suites,
    write_not_applicable,
    write_target,
)


@dataclass(frozen=True)
class Variant:
    name: str
    server: dict[str, Any]
    auth: dict[str, Any]
    expect_refusal: str = "any"
    url_slash: bool = False
    keys: str | None = None  # "rsa" | "ec" | "ed25519": asymmetric key pair
    extra: dict[str, Any] = field(default_factory=dict)


VARIANTS = [
    Variant(
        "cookie-hs256-sub-id-http403-noslash-zmicro",
        server={
            "transports": {"cookie"},
            "token_name": "JWT",
            "trailing_slash": "without",
            "timestamp_style": "z-micro",
            "refusal": "http",
            "refusal_status": 403,
        },
        auth={
            "transport": "cookie",
            "name": "JWT",
            "algorithm": "HS256",
            "claims": {"sub": "{user_id}", "exp": "{exp}", "iat": "{iat}"},
        },
        expect_refusal="http",
    ),
    Variant(
        "header-hs512-username-close4403-slash-offset",
        server={
            "transports": {"header"},
            "algorithm": "HS512",
            "user_claim": "username",
            "user_claim_kind": "username",
            "refusal": "close",
            "refusal_close_code": 4403,
            "trailing_slash": "with",
            "timestamp_style": "offset-micro",
        },
        auth={
            "transport": "header",
            "scheme": "Bearer",
            "algorithm": "HS512",
            "claims": {"username": "{username}", "exp": "{exp}", "scope": "chat"},
        },
        expect_refusal="close",
        url_slash=True,
    ),
    Variant(
        "subprotocol-hs384-email-http401-zseconds",
        server={
            "transports": {"subprotocol"},
            "algorithm": "HS384",
            "user_claim": "email",
            "user_claim_kind": "email",
            "refusal": "http",
            "refusal_status": 401,
            "timestamp_style": "z-seconds",
        },
        auth={
            "transport": "subprotocol",
            "algorithm": "HS384",
            "claims": {"email": "{email}", "exp": "{exp}", "iat": "{iat}"},
        },
    ),
    Variant(
        "named-subprotocol-rs256-userid-close1008-offset-seconds",
        server={
            "transports": {"subprotocol"},
            "subprotocol_name": "access_token",
            "algorithm": "RS256",
            "user_claim": "user_id",
            "refusal": "close",
            "refusal_close_code": 1008,
            "trailing_slash": "without",
            "timestamp_style": "offset-seconds",
        },
        auth={
            "transport": "subprotocol",
            "name": "access_token",
            "algorithm": "RS256",
            "claims": {"user_id": "{user_id}", "exp": "{exp}", "iat": "{iat}", "iss": "edusphere"},
        },
        keys="rsa",
    ),
    Variant(
        "query-es256-sub-username-http404-zmilli",
        server={
            "transports": {"query"},
            "token_name": "access",
            "algorithm": "ES256",
            "user_claim": "sub",
            "user_claim_kind": "username",
            "refusal": "http",
            "refusal_status": 404,
            "timestamp_style": "z-milli",
        },
        auth={
            "transport": "query",
            "name": "access",
            "algorithm": "ES256",
            "claims": {"sub": "{username}", "exp": "{exp}"},
        },
        keys="ec",
    ),
    Variant(
        "cookie-eddsa-sub-email-close4401-pinned-close",
        server={
            "transports": {"cookie"},
            "token_name": "session",
            "algorithm": "EdDSA",
            "user_claim": "sub",
            "user_claim_kind": "email",
            "refusal": "close",
            "refusal_close_code": 4401,
            "trailing_slash": "both",
            "timestamp_style": "offset-micro",
        },
        auth={
            "transport": "cookie",
            "name": "session",
            "algorithm": "EdDSA",
            "claims": {"sub": "{email}", "exp": "{exp}", "iat": "{iat}"},
        },
        expect_refusal="close",
        keys="ed25519",
    ),
    Variant(
        "custom-header-no-scheme-hs256-all-transports",
        server={
            "transports": {"header", "cookie", "query", "subprotocol"},
            "header_name": "X-Auth-Token",
            "header_scheme": "",
            "refusal": "http",
        },
        auth={
            "transport": "header",
            "name": "X-Auth-Token",
            "scheme": "",
            "algorithm": "HS256",
            "claims": {"sub": "{user_id}", "exp": "{exp}"},
        },
    ),
]


def _key_pair(kind: str) -> tuple[str, str]:
    """(private PEM for the harness, public PEM for the server)."""
    if kind == "rsa":
        private: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif kind == "ec":
        private = ec.generate_private_key(ec.SECP256R1())
    else:
        private = ed25519.Ed25519PrivateKey.generate()
    priv = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    pub = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return priv, pub


@pytest.mark.parametrize("variant", VARIANTS, ids=[v.name for v in VARIANTS])
def test_suites_pass_against_variant(variant: Variant, tmp_path: Path) -> None:
    server_settings = dict(variant.server)
    secret_env: dict[str, str] = {}
    if variant.keys:
        private, public = _key_pair(variant.keys)
        server_settings["secret"] = public
        secret_env["VARIANT_SIGNING_KEY"] = private
    config = demo_config(database=str(tmp_path / "variant.sqlite3"), **server_settings)
    with ServerThread(config) as server:
        data = demo_target_dict(server.url_template)
        if variant.url_slash:
            data["url"] = data["url"] + "/"
        auth = {**data["auth"], **variant.auth}
        auth.pop("name", None) if "name" not in variant.auth else None
        if variant.keys:
            auth["secret"] = "${VARIANT_SIGNING_KEY}"
        else:
            auth["secret"] = config.secret
        data["auth"] = auth
        data["expect"] = {"refusal": variant.expect_refusal}
        data["limits"] = {
            "max_length": config.max_length,
            "max_frame_bytes": config.max_frame_bytes,
        }
        target = write_target(tmp_path / "target.toml", data)
        baseline = write_not_applicable(tmp_path / "baseline.toml", NO_RESTART)
        code, results, output = run_suites(
            target, tmp_path / "reports", "--baseline", str(baseline), env=secret_env
        )
        server.raise_errors()
    assert_passes_everything(code, results, output, label=f"{variant.name}: ")
    assert results is not None
    observed = {
        obs
        for r in results["requirements"]
        if r["id"] == "AUTH-010"
        for obs in r.get("observations", [])
    }
    style = "close" if variant.server["refusal"] == "close" else "HTTP"
    assert any(style in obs for obs in observed), observed
