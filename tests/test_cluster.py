"""Every suite passes the reference cluster: ``serve --nodes 2 --broker redis://...`` (the matrix
variant with ``nodes``).

Two node processes share rooms through a Redis started here and one SQLite file; the target
names both nodes, so every connection of every suite goes round-robin across them, and the
NODE requirements are tested. RECON-006 restarts the whole cluster on its ports
(``tests/matrix/restart_cluster.py``).
"""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from reference_server.demo import demo_target_dict
from reference_server.runner import RedisServer
from tests.matrix import restart_cluster, restart_server
from tests.support import assert_passes_everything, run_suites, write_target

NODES = 2


def consecutive_free_ports(count: int) -> int:
    """A port P of 127.0.0.1 such that P ... P+count-1 were free a moment ago."""
    for _ in range(50):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port: int = first.getsockname()[1]
        if port + count > 65535:
            continue
        try:
            for offset in range(1, count):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port + offset))
        except OSError:
            continue
        return port
    raise RuntimeError("no run of free ports")


@pytest.fixture
def cluster(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[dict[str, object]]:
    """A 2-node reference cluster with demo data, restartable; its target (a dict). With
    indirect parametrization, ``request.param`` is a fault switch the nodes run with."""
    fault = getattr(request, "param", None)
    with RedisServer() as redis:
        argv = [sys.executable, "-m", "reference_server", "serve", "--log-level", "WARNING"]
        argv += ["--nodes", str(NODES), "--broker", redis.url, "--demo"]
        argv += ["--db", str(tmp_path / "cluster.sqlite3")]
        argv += [f"--port={consecutive_free_ports(NODES)}"]
        argv += ["--fault", fault] if fault else []
        proc, urls = restart_cluster.start(argv, NODES)
        state = tmp_path / "cluster-state.json"
        state.write_text(json.dumps({"pid": proc.pid, "argv": argv, "nodes": NODES}))
        data = demo_target_dict(urls[0])
        data["nodes"] = urls
        restart = f"{sys.executable} {Path(restart_cluster.__file__)} {state}"
        data["restart"] = {"command": restart}
        try:
            yield data
        finally:
            restart_server.stop(json.loads(state.read_text())["pid"], group=True)
            proc.wait(timeout=15)


def test_every_suite_passes_the_reference_cluster(
    tmp_path: Path, cluster: dict[str, object]
) -> None:
    target = write_target(tmp_path / "target.toml", cluster)
    code, results, output = run_suites(target, tmp_path / "reports", "--strict")
    assert_passes_everything(code, results, output, untested_levels=("MUST", "SHOULD", "INFO"))
    assert results is not None
    node = [r for r in results["requirements"] if r["area"] == "NODE"]
    assert [r["verdict"] for r in node] == ["passed"] * 3
    burst = next(r for r in results["requirements"] if r["id"] == "LOAD-004")["figures"][0]
    assert {r["where"].split(" (")[0] for r in burst["receivers"]} == {"node 1", "node 2"}
