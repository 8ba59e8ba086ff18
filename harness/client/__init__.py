"""Client conformance mode: the harness plays the server and judges a client's reconnections.

``edusphere-conformance client-check --command "..."`` (or ``python -m harness.client``)
launches the client under test once per scenario with ``EDUSPHERE_WS_URL`` pointing at a fake
server on 127.0.0.1, which drops, refuses and closes connections by plan and records every
attempt. The recorded times are held to the seed's reconnection policy (CLIENT-001 to
CLIENT-008) by :mod:`harness.client.policy`; the report shows one timeline per scenario.

Modules: ``scenarios`` (plans and settings), ``server`` (the fake server), ``process`` (the
client process), ``runner`` (driving a scenario), ``policy`` (pure checks), ``frames`` (frame
validation), ``results`` (:class:`ClientRun`: the core :class:`harness.core.results.RunResult`
with the scenarios' recordings), ``report`` (HTML, JSON, JUnit), ``cli``. The catalogue, the
verdict fold, the exit statuses and the renderers are those every mode shares (``harness.core``,
``harness.render``).
"""

from harness.client.check import check_client, run_client_check
from harness.client.cli import main
from harness.client.play import SetupError
from harness.client.results import ClientRun, ScenarioResult
from harness.client.scenarios import SCENARIO_NAMES, SCENARIOS, Scenario, Settings

__all__ = [
    "SCENARIOS",
    "SCENARIO_NAMES",
    "ClientRun",
    "Scenario",
    "ScenarioResult",
    "Settings",
    "SetupError",
    "check_client",
    "main",
    "run_client_check",
]
