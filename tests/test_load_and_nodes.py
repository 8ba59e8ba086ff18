"""The LOAD and NODE suites end to end, against one reference server.

Two addresses of one server (127.0.0.1 and localhost) are two "nodes" that share everything: a
conformant deployment, so every NODE requirement passes, and connections really alternate
between the two addresses. Without ``nodes`` the NODE requirements are not tested and do not
count; a run selecting only them tested nothing and is INCOMPLETE. The load figures reach
results.json and the HTML report.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.server.chat import Chat
from reference_server.demo import demo_config, demo_target_dict
from reference_server.runner import ServerThread
from tests.fakewire import FakeServer, run_scenario
from tests.support import run_suites, verdicts, write_target


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    database = tmp_path_factory.mktemp("nodes") / "chat.sqlite3"
    with ServerThread(demo_config(database=str(database))) as srv:
        yield srv


def two_addresses(server: ServerThread) -> dict[str, Any]:
    data = demo_target_dict(server.url_template)
    port = server.port
    data["nodes"] = [
        f"ws://127.0.0.1:{port}/ws/chat/{{host}}/{{room}}",
        f"ws://localhost:{port}/ws/chat/{{host}}/{{room}}",
    ]
    data["load"] = {"senders": 4, "messages": 50, "receivers": 2, "lag_bytes": 5 * 2**20}
    return data


def test_two_nodes_of_one_server_pass_load_and_node_requirements(
    tmp_path: Path, server: ServerThread
) -> None:
    target = write_target(tmp_path / "target.toml", two_addresses(server))
    code, results, output = run_suites(target, tmp_path / "reports", only="NODE,LOAD,BCAST")
    assert code == 0, output[-3000:]
    assert results is not None
    chosen = [r for r in results["requirements"] if r["area"] in ("NODE", "LOAD", "BCAST")]
    assert {r["verdict"] for r in chosen} == {"passed"}, output[-3000:]
    assert all("applies" not in r for r in chosen)
    burst = next(r for r in results["requirements"] if r["id"] == "LOAD-004")["figures"][0]
    assert (burst["messages"], burst["accepted"]) == (200, 200)
    assert len(burst["receivers"]) == 6
    assert {r["where"].split(" (")[0] for r in burst["receivers"]} == {"node 1", "node 2"}
    assert all(r["delivered"] == 200 and r["missing"] == 0 for r in burst["receivers"])
    html = (tmp_path / "reports" / "compliance.html").read_text()
    assert 'class="es-fig-plot"' in html and "Lagging reader" in html


def test_without_nodes_node_requirements_are_out_of_scope(
    tmp_path: Path, server: ServerThread
) -> None:
    data = demo_target_dict(server.url_template)
    target = write_target(tmp_path / "target.toml", data)
    code, results, output = run_suites(target, tmp_path / "reports", only="NODE,ERR")
    assert code == 0, output[-3000:]
    assert results is not None
    node = [r for r in results["requirements"] if r["id"].startswith("NODE")]
    assert {r["verdict"] for r in node} == {"not_tested"}
    assert all(r["applies"] is False and "needs nodes = [...]" in r["reason"] for r in node)
    assert "NODE-001" not in verdicts(results, "passed")

    code, results, output = run_suites(target, tmp_path / "only-node", only="NODE")
    assert code == 2, output[-3000:]
    assert results is not None and results["verdict"] == "INCOMPLETE"
    assert results["reason"].startswith("nothing in the run's scope was tested")


def test_connections_alternate_between_the_nodes() -> None:
    fake = FakeServer()
    nodes = ["ws://a.invalid/ws/chat/{host}/{room}", "ws://b.invalid:81/ws/chat/{host}/{room}"]
    chat = fake.chat(nodes=nodes)
    opened: list[str] = []
    open_fake = chat.opener

    async def recording(plan: Any) -> Any:
        opened.append(plan.url.split("/ws/")[0])
        return await open_fake(plan)

    chat.opener = recording

    async def scenario(chat: Chat) -> list[int]:
        conns = [await chat.connect("member") for _ in range(3)]
        conns.append(await chat.connect("member", node=0))
        return [c.node for c in conns]

    assert run_scenario(scenario, chat) == [0, 1, 0, 0]
    assert opened == ["ws://a.invalid", "ws://b.invalid:81", "ws://a.invalid", "ws://a.invalid"]
    lines = [e["text"] for e in chat.transcript.as_list() if "GET" in str(e.get("text"))]
    assert "to node 2 (b.invalid:81)" in lines[1]
