"""A plain install (``pip install .``, no extra) into a fresh environment: what the suites need
and nothing more (pyproject.toml, README "The two commands").

An implementer adds the harness to their own test environment (README, "Check an ASGI
application in-process"): it must not load another engine's pytest plugin into their sessions.
Locust's adds a ``--host`` option and ``session`` fixtures, which collide with a project's own;
so Locust (and gevent) are the ``load`` extra, redis-py and psycopg the ``cluster`` extra,
pytest-xdist the ``parallel`` extra. The environment is made once for the module with the pins
of constraints.txt (as tox installs), from pip's cache where it has the wheels.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import venv
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import ROOT, write_target
from tests.test_asgi_alt import FIXTURE, _readme_block, _target

#: What the core install must not bring (distribution names, lower case).
ENGINES = {"locust", "gevent", "geventhttpclient", "flask", "redis", "psycopg", "pytest-xdist"}
#: The pytest plugins of a plain install: the harness's, and those of the two core libraries
#: that ship one (pytest-html with pytest-metadata, hypothesis).
CORE_PLUGINS = {
    ("edusphere-conformance", "edusphere_conformance"),
    ("pytest-html", "html"),
    ("pytest-html", "html_fixtures"),
    ("pytest-metadata", "metadata"),
    ("hypothesis", "hypothesispytest"),
}
INSTALL_TIMEOUT = 600


def _run(
    argv: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        cwd=cwd,
        env={**_clean_env(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _clean_env() -> dict[str, str]:
    """This process's environment without what points into the dev environment."""
    drop = {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "PYTEST_ADDOPTS", "PYTEST_PLUGINS"}
    return {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("TOX_")}


@dataclass(frozen=True)
class Plain:
    """A fresh environment after ``pip install <this checkout>``: its bin/, what the install
    brought and the pytest plugins then registered (before Starlette went in for the ASGI
    example: anyio, which Starlette brings, registers a plugin of its own)."""

    bin: Path
    installed: set[str]
    plugins: set[tuple[str, str]]


PLUGINS = (
    "from importlib.metadata import entry_points\n"
    "for e in entry_points(group='pytest11'): print(e.dist.name if e.dist else '?', e.name)"
)


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Plain:
    """``pip install <this checkout>`` into a fresh virtual environment, pinned by
    constraints.txt; then Starlette (the application of the ASGI example)."""
    home = tmp_path_factory.mktemp("plain-install")
    venv.create(home / "venv", with_pip=True, symlinks=True)
    bin_dir = home / "venv" / "bin"
    python = str(bin_dir / "python")
    # A copy of the checkout: pip builds in the source tree's build/, which must stay clean.
    source = home / "source"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(".git", ".tox", ".venv", "reports", "__pycache__", "build"),
    )
    pins = {"PIP_CONSTRAINT": str(ROOT / "constraints.txt"), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    pip = [python, "-m", "pip", "install", "--quiet"]
    done = _run([*pip, str(source)], home, pins, INSTALL_TIMEOUT)
    assert done.returncode == 0, done.stderr[-4000:]
    listed = _run([python, "-m", "pip", "list", "--format", "json"], home)
    assert listed.returncode == 0, listed.stderr
    installed = {p["name"].lower().replace("_", "-") for p in json.loads(listed.stdout)}
    points = _run([python, "-c", PLUGINS], home)
    assert points.returncode == 0, points.stderr
    plugins = {(dist, name) for dist, name in (line.split() for line in points.stdout.splitlines())}
    done = _run([*pip, "starlette"], home, pins, INSTALL_TIMEOUT)
    assert done.returncode == 0, done.stderr[-4000:]
    return Plain(bin_dir, installed, plugins)


def test_a_plain_install_brings_no_engine(plain: Plain) -> None:
    assert "edusphere-conformance" in plain.installed
    core = {"pytest", "websockets", "jsonschema", "pyjwt", "hypothesis", "pytest-html"}
    assert core <= plain.installed
    engines = plain.installed & ENGINES
    assert not engines, f"the core install brought {sorted(engines)}"


def test_a_plain_install_adds_only_the_harness_plugin(plain: Plain) -> None:
    """Beside the harness's, only the plugins of the core libraries that ship one."""
    assert plain.plugins == CORE_PLUGINS


def test_the_default_run_needs_no_extra(plain: Plain, tmp_path: Path) -> None:
    done = _run([str(plain.bin / "edusphere-conformance"), "run"], tmp_path)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert "verdict: CONFORMANT" in done.stdout
    assert (tmp_path / "reports" / "results.json").is_file()


@pytest.mark.parametrize(
    ("argv", "extra"),
    [
        (["load", "--users", "2", "--rate", "1", "--duration", "1"], "load"),
        (["serve", "--demo", "--broker", "redis://127.0.0.1:9"], "cluster"),
        (
            ["serve", "--demo", "--nodes", "2", "--broker", "redis://127.0.0.1:9", "--db", "x.db"],
            "cluster",
        ),
        (["serve", "--demo", "--db", "postgresql://u@127.0.0.1:9/chat"], "cluster"),
        (["run", "-n", "2"], "parallel"),
    ],
    ids=["load", "serve-broker", "serve-nodes", "serve-postgres", "run-n"],
)
def test_a_mode_without_its_extra_names_the_extra(
    plain: Plain, tmp_path: Path, argv: list[str], extra: str
) -> None:
    done = _run([str(plain.bin / "edusphere-conformance"), *argv], tmp_path, timeout=60)
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "Traceback" not in output, output
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, output
    assert lines[0].startswith(f"edusphere-conformance{' load' if extra == 'load' else ''}: error:")
    assert f"pip install 'edusphere-conformance[{extra}]'" in lines[0]


#: A project with its own ``--host`` option and ``session`` fixture (the names Locust's plugin
#: takes), its own tests, and the README's example checking its ASGI application.
CONFTEST = """\
import pytest


def pytest_addoption(parser):
    parser.addoption("--host", default="localhost", help="the project's own host")


@pytest.fixture
def session(request):
    return {"host": request.config.getoption("--host")}
"""
OWN_TESTS = """\
def test_own_host_option(session):
    assert session == {"host": "example.org"}
"""


def _project(root: Path) -> Path:
    project = root / "project"
    (project / "tests").mkdir(parents=True)
    (project / "conftest.py").write_text(CONFTEST, encoding="utf-8")
    (project / "tests" / "test_own.py").write_text(OWN_TESTS, encoding="utf-8")
    example = _readme_block("asgi-pytest-example")
    (project / "tests" / "test_chat_conformance.py").write_text(example, encoding="utf-8")
    shutil.copy(ROOT / "tests" / "alt_servers" / "asgi" / "chat_app.py", project / "chatapp.py")
    write_target(
        project / "tests" / "chat-conformance.toml",
        {**_target(), "asgi": {"app": "chatapp:app"}},
    )
    data = root / "fixtures.json"
    data.write_text(json.dumps(FIXTURE), encoding="utf-8")
    return data


def _project_run(python: str, root: Path) -> subprocess.CompletedProcess[str]:
    data = _project(root)
    return _run(
        [python, "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider", "--host", "example.org"],
        root / "project",
        {"ALT_ASGI_SECRET": "s" * 40, "ALT_ASGI_DATA": str(data)},
    )


def test_a_project_with_its_own_host_option_runs_its_tests_and_the_asgi_example(
    plain: Plain, tmp_path: Path
) -> None:
    done = _project_run(str(plain.bin / "python"), tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "2 passed" in output, output[-4000:]


def test_the_same_project_clashes_with_locusts_plugin(tmp_path: Path) -> None:
    """The clash the extras avoid, in this (dev) environment, where Locust is installed: the
    project's pytest stops before any test on its own ``--host``."""
    if importlib.util.find_spec("locust") is None:  # never imported: it patches for gevent
        pytest.skip("Locust is not installed")
    done = _project_run(sys.executable, tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output[-4000:]
    assert "option names {'--host'} already added" in output, output[-4000:]
