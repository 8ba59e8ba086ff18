"""``[tls]``: the suites against the reference server serving ``wss://`` with a certificate from a
private CA, with mutual TLS, and every way a TLS handshake goes wrong ending the run before any
test with one line naming the key that fixes it (issue 12).

The certificates are made here (trustme): a private CA, a server certificate for 127.0.0.1 and
localhost, a client certificate, and a second CA that signed nothing the server trusts.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme

from harness import schemas
from harness.target import TargetError, load, parse
from reference_server.config import ConfigError, ServerConfig
from reference_server.demo import demo_config
from reference_server.runner import ServerThread
from tests.mutation import limited_target
from tests.support import assert_usage_error, cli, write_not_applicable, write_target


@dataclass(frozen=True)
class Pki:
    ca: Path
    other_ca: Path
    server: Path  # key and certificate chain, one PEM
    client_cert: Path
    client_key: Path
    stranger_cert: Path  # signed by the other CA
    stranger_key: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    base = tmp_path_factory.mktemp("pki")
    ca, other = trustme.CA(), trustme.CA()
    ca.cert_pem.write_to_path(str(base / "ca.pem"))
    other.cert_pem.write_to_path(str(base / "other-ca.pem"))
    ca.issue_cert("127.0.0.1", "localhost").private_key_and_cert_chain_pem.write_to_path(
        str(base / "server.pem")
    )
    for name, issuer in (("client", ca), ("stranger", other)):
        cert = issuer.issue_cert(f"{name}@example.org")
        cert.cert_chain_pems[0].write_to_path(str(base / f"{name}.crt"))
        cert.private_key_pem.write_to_path(str(base / f"{name}.key"))
    return Pki(
        base / "ca.pem",
        base / "other-ca.pem",
        base / "server.pem",
        base / "client.crt",
        base / "client.key",
        base / "stranger.crt",
        base / "stranger.key",
    )


def _server(pki: Pki, tmp: Path, *, mutual: bool) -> ServerThread:
    config = demo_config(
        database=str(tmp / "tls.sqlite3"),
        tls_cert=str(pki.server),
        tls_key=str(pki.server),
        tls_client_ca=str(pki.ca) if mutual else None,
    )
    return ServerThread(config)


@pytest.fixture
def tls_server(pki: Pki, tmp_path: Path) -> Iterator[ServerThread]:
    with _server(pki, tmp_path, mutual=False) as server:
        yield server


@pytest.fixture
def mutual_server(pki: Pki, tmp_path: Path) -> Iterator[ServerThread]:
    with _server(pki, tmp_path, mutual=True) as server:
        yield server


def _target(server: ServerThread, tmp: Path, tls: dict[str, Any] | None, name: str = "t") -> Path:
    data = limited_target(server.url_template, server.config)
    if tls is not None:
        data["tls"] = tls
    return write_target(tmp / f"{name}.toml", data)


def _mutual(ca: Path, cert: Path, key: Path) -> dict[str, str]:
    """A ``[tls]`` table for mutual TLS."""
    return {"ca_file": str(ca), "client_cert": str(cert), "client_key": str(key)}


def _run(target: Path, tmp: Path, *extra: str) -> tuple[Any, dict[str, Any] | None, Path]:
    reports = tmp / "reports"
    done = cli("run", "--target", str(target), "--report-dir", str(reports), *extra, timeout=240)
    path = reports / "results.json"
    results = json.loads(path.read_text()) if path.is_file() else None
    if results is not None:
        assert schemas.validate("results", results) == []
    return done, results, reports


def _stopped_with(done: Any, results: dict[str, Any] | None, reports: Path, *words: str) -> str:
    """Exit 2, one line on the terminal naming the cause, and the same line in results.json
    (``reason``) and in the report's banner: never a silent INCOMPLETE."""
    line = assert_usage_error(done)
    for word in words:
        assert word in line, line
    cause = line.removeprefix("edusphere-conformance: error: ")
    assert results is not None
    assert results["verdict"] == "INCOMPLETE" and results["complete"] is False
    assert results["reason"] == cause
    assert {r["verdict"] for r in results["requirements"]} == {"not_tested"}
    page = (reports / "compliance.html").read_text()
    assert html.escape(cause, quote=True) in page
    assert 'data-verdict="INCOMPLETE"' in page
    assert (reports / "junit.xml").is_file()
    return cause


# --- the suites over TLS ----------------------------------------------------------------------


def test_the_suites_pass_over_tls_with_a_private_ca(
    tls_server: ServerThread, pki: Pki, tmp_path: Path
) -> None:
    assert tls_server.url_template.startswith("wss://")
    target = _target(tls_server, tmp_path, {"ca_file": str(pki.ca)})
    done, results, _ = _run(target, tmp_path, "--only", "CONN,SEND,ROOM")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    assert results is not None and results["verdict"] == "CONFORMANT"
    assert "warnings" not in results


def test_every_suite_passes_over_mutual_tls(
    mutual_server: ServerThread, pki: Pki, tmp_path: Path
) -> None:
    """The whole run: websockets' connections, the raw half-open clients and the probe all
    present the client certificate (the server refuses any connection without it)."""
    # Relative file names: to the target file's directory.
    tls = _mutual(Path("pki/ca.pem"), Path("pki/client.crt"), Path("pki/client.key"))
    (tmp_path / "pki").symlink_to(pki.ca.parent, target_is_directory=True)
    # A server in a thread cannot be restarted by a command: RECON-006 is not applicable.
    baseline = write_not_applicable(tmp_path / "baseline.toml", {"RECON-006": "no restart"})
    target = _target(mutual_server, tmp_path, tls)
    done, results, _ = _run(target, tmp_path, "--baseline", str(baseline))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    assert results is not None and results["verdict"] == "CONFORMANT"


def test_pytest_xdist_workers_speak_tls_with_the_settings_they_are_handed(
    mutual_server: ServerThread, pki: Pki, tmp_path: Path
) -> None:
    tls = _mutual(pki.ca, pki.client_cert, pki.client_key)
    done, results, _ = _run(
        _target(mutual_server, tmp_path, tls), tmp_path, "-n", "2", "--only", "SEND"
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    assert results is not None and results["verdict"] == "CONFORMANT"


def test_verify_false_passes_and_says_so_loudly(tls_server: ServerThread, tmp_path: Path) -> None:
    done, results, reports = _run(
        _target(tls_server, tmp_path, {"verify": False}), tmp_path, "--only", "SEND"
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    assert "warning: TLS certificate verification is off (tls.verify = false)" in done.stdout
    assert results is not None and results["verdict"] == "CONFORMANT"
    assert any("tls.verify = false" in w for w in results["warnings"])
    assert "tls.verify = false" in (reports / "compliance.html").read_text()


# --- a TLS handshake that fails: one line, the key that fixes it --------------------------------


def test_a_certificate_from_an_unknown_ca_names_tls_ca_file(
    tls_server: ServerThread, tmp_path: Path
) -> None:
    done, results, reports = _run(_target(tls_server, tmp_path, None), tmp_path)
    cause = _stopped_with(done, results, reports, "not trusted", "tls.ca_file")
    assert "tls.verify = false" in cause


def test_a_ca_file_that_did_not_sign_the_certificate_is_named(
    tls_server: ServerThread, pki: Pki, tmp_path: Path
) -> None:
    target = _target(tls_server, tmp_path, {"ca_file": str(pki.other_ca)})
    done, results, reports = _run(target, tmp_path)
    _stopped_with(done, results, reports, "not trusted", f"tls.ca_file = {pki.other_ca}")


def test_a_certificate_for_another_name_names_tls_server_name(
    tls_server: ServerThread, pki: Pki, tmp_path: Path
) -> None:
    tls = {"ca_file": str(pki.ca), "server_name": "chat.example.com"}
    done, results, reports = _run(_target(tls_server, tmp_path, tls), tmp_path)
    _stopped_with(done, results, reports, "'chat.example.com'", "tls.server_name")


def test_a_server_name_the_certificate_has_is_used_for_the_check(
    tls_server: ServerThread, pki: Pki, tmp_path: Path
) -> None:
    tls = {"ca_file": str(pki.ca), "server_name": "localhost"}
    done, _, _ = _run(_target(tls_server, tmp_path, tls), tmp_path, "--only", "SEND-001")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr


def test_mutual_tls_without_a_client_certificate_names_tls_client_cert(
    mutual_server: ServerThread, pki: Pki, tmp_path: Path
) -> None:
    done, results, reports = _run(
        _target(mutual_server, tmp_path, {"ca_file": str(pki.ca)}), tmp_path
    )
    _stopped_with(done, results, reports, "client certificate", "tls.client_cert")


def test_a_client_certificate_the_server_does_not_trust_is_named(
    mutual_server: ServerThread, pki: Pki, tmp_path: Path
) -> None:
    tls = _mutual(pki.ca, pki.stranger_cert, pki.stranger_key)
    done, results, reports = _run(_target(mutual_server, tmp_path, tls), tmp_path)
    _stopped_with(done, results, reports, f"tls.client_cert = {pki.stranger_cert}")


def test_wss_to_a_plain_port_says_use_ws(tmp_path: Path) -> None:
    with ServerThread(demo_config(database=str(tmp_path / "plain.sqlite3"))) as plain:
        data = limited_target(plain.url_template.replace("ws://", "wss://"), plain.config)
        done, results, reports = _run(write_target(tmp_path / "t.toml", data), tmp_path)
    _stopped_with(done, results, reports, "does not speak TLS", "use ws://")


# --- [tls] in the target file -------------------------------------------------------------


def _parse(tls: dict[str, Any], url: str = "wss://chat.example/ws/chat/{host}/{room}") -> Any:
    data = limited_target(url, ServerConfig(database=":memory:"))
    data["tls"] = tls
    return parse(data, "t.toml")


@pytest.mark.parametrize(
    ("tls", "url", "message"),
    [
        ({"ca_file": "nowhere/ca.pem"}, None, "tls.ca_file: no such file"),
        ({"verify": "no"}, None, "tls.verify: must be true or false"),
        ({"client_key": "KEY"}, None, "tls.client_key: needs tls.client_cert"),
        ({"server_name": " "}, None, "tls.server_name: must not be empty"),
        ({"ca_file": "CA"}, "ws://chat.example/ws/chat/{host}/{room}", "wss:// URLs only"),
        ({"verfy": False}, None, "did you mean 'tls.verify'"),
        ({"ca_file": "NOT_PEM"}, None, "tls.ca_file: "),
        ({"client_cert": "CERT", "client_key": "OTHER_KEY"}, None, "tls.client_key: "),
    ],
)
def test_a_bad_tls_table_names_its_key(
    pki: Pki, tls: dict[str, Any], url: str | None, message: str, tmp_path: Path
) -> None:
    files = {
        "CA": str(pki.ca),
        "KEY": str(pki.client_key),
        "CERT": str(pki.client_cert),
        "OTHER_KEY": str(pki.stranger_key),
        "NOT_PEM": str(tmp_path / "garbage.pem"),
    }
    (tmp_path / "garbage.pem").write_text("not a certificate\n")
    tls = {k: files.get(v, v) if isinstance(v, str) else v for k, v in tls.items()}
    with pytest.raises(TargetError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _parse(tls, url or "wss://chat.example/ws/chat/{host}/{room}")


def test_tls_file_names_are_relative_to_the_target_file(pki: Pki, tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    data = limited_target("wss://chat.example/ws/chat/{host}/{room}", ServerConfig(":memory:"))
    data["tls"] = {"ca_file": "../pki/ca.pem"}
    (tmp_path / "pki").symlink_to(pki.ca.parent, target_is_directory=True)
    target = load(write_target(tmp_path / "conf" / "t.toml", data))
    assert target.tls.ca_file == str((tmp_path / "pki" / "ca.pem").resolve())
    assert target.server_name == "chat.example"


def test_the_reference_server_refuses_unusable_tls_settings(pki: Pki, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="tls_cert and tls_key go together"):
        ServerConfig(database=":memory:", tls_cert=str(pki.server))
    with pytest.raises(ConfigError, match="do not load"):
        ServerConfig(database=":memory:", tls_cert=str(pki.ca), tls_key=str(pki.ca))
    with pytest.raises(ConfigError, match="needs tls_cert"):
        ServerConfig(database=":memory:", tls_client_ca=str(pki.ca))
