"""Client conformance mode: the harness plays the server and judges a client's reconnections.

``edusphere-conformance client-check --command "..."`` (or ``python -m harness.clientcheck``)
launches the client under test once per scenario with ``EDUSPHERE_WS_URL`` pointing at a fake
server on 127.0.0.1, which drops, refuses and closes connections by plan and records every
attempt. The recorded times are held to the seed's reconnection policy (CLIENT-001 to
CLIENT-008) by :mod:`harness.clientcheck.policy`; the report shows one timeline per scenario.

Modules: ``scenarios`` (plans and settings), ``server`` (the fake server), ``process`` (the
client process), ``runner`` (driving a scenario), ``policy`` (pure checks), ``frames`` (frame
validation), ``results`` (the result model), ``report`` (HTML and JSON), ``cli``.
"""

from harness.clientcheck.check import check_client, run_client_check
from harness.clientcheck.cli import main
from harness.clientcheck.results import RunResult, ScenarioResult
from harness.clientcheck.runner import SetupError
from harness.clientcheck.scenarios import SCENARIO_NAMES, SCENARIOS, Scenario, Settings

__all__ = [
    "SCENARIOS",
    "SCENARIO_NAMES",
    "RunResult",
    "Scenario",
    "ScenarioResult",
    "Settings",
    "SetupError",
    "check_client",
    "main",
    "run_client_check",
]
