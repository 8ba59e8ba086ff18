"""``[headers]``: a gateway in front of the server wants its own header on every handshake
(issue 12). The reference server plays the gateway (``serve --require-header``): a handshake
without the header is refused with HTTP 401 before anything else. The whole run passes only if
every handshake carries it (websockets' connections, the raw half-open clients, the probe, the
preflight), and the value appears in no report file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from reference_server.demo import demo_config
from reference_server.runner import ServerThread
from tests.mutation import limited_target
from tests.support import run_suites, write_not_applicable, write_target

KEY = "gw-key-3f9a2c7d1e"
BASIC = "Basic Z2F0ZXdheTpzM2NyZXQtcGFzcw=="  # gateway:s3cret-pass


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[ServerThread]:
    config = demo_config(
        database=str(tmp_path / "gw.sqlite3"),
        require_headers=(("X-Api-Key", KEY), ("Proxy-Authorization", BASIC)),
    )
    with ServerThread(config) as server:
        yield server


def test_every_handshake_carries_the_headers_and_no_report_shows_them(
    gateway: ServerThread, tmp_path: Path
) -> None:
    data = limited_target(gateway.url_template, gateway.config)
    data["headers"] = {"X-Api-Key": "${GW_KEY}", "Proxy-Authorization": BASIC}
    target = write_target(tmp_path / "t.toml", data)
    baseline = write_not_applicable(tmp_path / "baseline.toml", {"RECON-006": "no restart"})
    reports = tmp_path / "reports"
    code, results, output = run_suites(
        target, reports, "--baseline", str(baseline), env={"GW_KEY": KEY}
    )
    assert code == 0, output[-3000:]
    assert results is not None and results["verdict"] == "CONFORMANT"
    written = [p.read_text(encoding="utf-8") for p in reports.iterdir() if p.is_file()]
    assert len(written) >= 3  # compliance.html, junit.xml, results.json
    for text in [*written, output]:
        for secret in (KEY, BASIC, "Z2F0ZXdheTpzM2NyZXQtcGFzcw==", "s3cret-pass"):
            assert secret not in text
    # The transcripts name the headers a handshake carried, never their values.
    shown = json.dumps(results)
    assert "with X-Api-Key, Proxy-Authorization" in (reports / "compliance.html").read_text()
    assert KEY not in shown


def test_without_the_headers_the_gateway_refuses_and_the_run_fails(
    gateway: ServerThread, tmp_path: Path
) -> None:
    """The gateway is real: the same run without ``[headers]`` is refused at every handshake."""
    data = limited_target(gateway.url_template, gateway.config)
    target = write_target(tmp_path / "t.toml", data)
    code, results, output = run_suites(target, tmp_path / "reports", only="CONN-001")
    assert code == 1, output[-3000:]
    assert results is not None
    (conn,) = [r for r in results["requirements"] if r["id"] == "CONN-001"]
    assert conn["verdict"] == "failed" and "401" in conn["reason"]
    assert "[headers]" in results["diagnosis"]
