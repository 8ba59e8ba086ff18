"""Replay scripts: a ``sequence`` figure as a standalone Python script that plays it again.

A stateful test (``suites/test_conversation.py``) that breaks a requirement shrinks its steps to
the shortest failing sequence and leaves it as a ``sequence`` figure (schemas/results.json,
``figures``). :func:`script_for` turns one into a script a developer runs against their own
server with nothing but Python and websockets: a docstring saying what it replays and what it
needs, the runtime (:mod:`harness.wire.replay_runtime`'s source, which imports no harness), the
figure as a JSON literal, and a ``main`` call. :func:`write_replays` writes one
``replay-<REQ>.py`` per sequence figure next to results.json
(:func:`harness.render.files.write_results_json`) and records its name in the figure
(``"replay"``), so the HTML report links it.

The figure holds no secret (tokens come from ``EDUSPHERE_TOKEN_<ROLE>``, header values from
``EDUSPHERE_HEADERS``); the script text still passes through :func:`harness.redact.redact`, its
figure's strings one by one first (a secret cut across two lines of the literal would escape a
mask of the whole text).
"""

from __future__ import annotations

import ast
import json
import re
import textwrap
import unicodedata
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from harness import redact
from harness.wire.replay_runtime import describe_step

__all__ = [
    "CA_VARIABLE",
    "HEADERS_VARIABLE",
    "REPLAY_GLOB",
    "describe_step",
    "replay_name",
    "script_for",
    "token_variable",
    "variables",
    "write_replays",
]

#: The variables the script reads (the runtime's constants of the same names).
TOKEN_PREFIX = "EDUSPHERE_TOKEN_"
HEADERS_VARIABLE = "EDUSPHERE_HEADERS"
CA_VARIABLE = "EDUSPHERE_CA"
#: The names :func:`write_replays` writes (and removes, when an earlier run left them).
REPLAY_GLOB = "replay-*.py"
#: Width of a line of the generated script (ruff's ``line-length`` is 100).
_WIDTH = 99
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def token_variable(role: str) -> str:
    """The variable holding ``role``'s token (:func:`harness.wire.replay_runtime.token_variable`,
    which the script carries: the same rule)."""
    return TOKEN_PREFIX + "".join(c if c.isascii() and c.isalnum() else "_" for c in role.upper())


def variables(figure: Mapping[str, Any]) -> list[str]:
    """The variables a figure's script needs: a token per role, in the connections' order, then
    ``EDUSPHERE_HEADERS`` when the target has extra headers."""
    roles = [str(c.get("role") or "") for c in _dicts(figure.get("connections"))]
    needed = list(dict.fromkeys(token_variable(r) for r in roles))
    if figure.get("header_names"):
        needed.append(HEADERS_VARIABLE)
    return needed


def secure(figure: Mapping[str, Any]) -> bool:
    """Whether a connection of the figure speaks TLS (``EDUSPHERE_CA`` may then be given)."""
    return any(
        str(c.get("url", "")).startswith("wss://") for c in _dicts(figure.get("connections"))
    )


def replay_name(requirement: str, index: int = 1) -> str:
    """``replay-EDIT-009.py``; the second figure of one requirement ``replay-EDIT-009-2.py``."""
    stem = _UNSAFE.sub("_", requirement) or "requirement"
    return f"replay-{stem}.py" if index <= 1 else f"replay-{stem}-{index}.py"


def command(figure: Mapping[str, Any], file_name: str) -> str:
    """How to run the script: its variables (names only) and ``python3 FILE``."""
    env = " ".join(f"{v}=…" for v in variables(figure))
    return f"{env} python3 {file_name}".strip()


def _dicts(value: object) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


# --- the script's text -----------------------------------------------------------------------


def _runtime() -> str:
    """The runtime's source, without its module docstring (the script has its own)."""
    source = (
        resources.files("harness.wire").joinpath("replay_runtime.py").read_text(encoding="utf-8")
    )
    first = ast.parse(source).body[0]
    lines = source.splitlines(keepends=True)
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
        lines = lines[first.end_lineno or 0 :]
    return "".join(lines).lstrip("\n")


def _width(text: str) -> int:
    """Columns ``text`` takes (wide and full-width characters two), as ruff counts a line."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _doc_tokens(line: str) -> list[str]:
    """A docstring line as source tokens: backslashes doubled, a quote after a quote escaped
    (no ``\"\"\"`` can close the docstring), what cannot be printed shown as its code point."""
    tokens: list[str] = []
    previous = ""
    for c in line:
        if c == "\\":
            tokens.append("\\\\")
        elif c == '"' and previous == '"':
            tokens.append('\\"')
        elif not c.isprintable():
            code = ord(c)
            tokens.append(f"\\\\x{code:02x}" if code < 0x100 else f"\\\\u{code:04x}")
        else:
            tokens.append(c)
        previous = c
    return tokens


def _doc_lines(text: str) -> list[str]:
    """``text`` (lines, wrapped) as docstring source: no line wider than :data:`_WIDTH`."""
    out: list[str] = []
    for raw in text.splitlines():
        indent = len(raw) - len(raw.lstrip(" "))
        hanging = " " * (indent + 3 if indent else 0)  # a list item's text under its text
        wrapped = textwrap.wrap(
            raw, 92, subsequent_indent=hanging, break_on_hyphens=False, break_long_words=True
        ) or [""]
        for line in wrapped:
            current = ""
            for token in _doc_tokens(line):
                if current and _width(current + token) > _WIDTH:
                    out.append(current)
                    current = " " * (indent + 4)
                current += token
            out.append(current.rstrip(" ") if current.strip() else "")
    return out


def _literal(text: str, indent: str = "    ") -> list[str]:
    """``text`` as implicitly joined string literals, one or more per line of it."""
    out: list[str] = []
    for line in text.splitlines(keepends=True):
        current = ""
        for c in line:
            if current and _width(indent + repr(current + c)) > _WIDTH:
                out.append(indent + repr(current))
                current = ""
            current += c
        if current:
            out.append(indent + repr(current))
    return out


def _redacted(value: Any) -> Any:
    """``value`` with every string (keys too) through the redactor."""
    if isinstance(value, str):
        return redact.redact(value)
    if isinstance(value, Mapping):
        return {redact.redact(str(k)): _redacted(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(v) for v in value]
    return value


def _docstring(figure: Mapping[str, Any], file_name: str) -> str:
    f = figure.get
    requirement = str(f("requirement") or "the requirement")
    steps = _dicts(f("steps"))
    failed = f("failed_step")
    lines = [
        f"Replay the shortest failing sequence of {requirement} (EduSphere chat conformance).",
        "",
        f"The harness ran {f('sequences', '?')} sequences ({f('steps_run', '?')} steps in all) and "
        f"shrank the failure to these {len(steps)} steps; the server broke {requirement} at "
        f"step {failed}:",
        "",
    ]
    for step in steps:
        mark = f"   <- broke {requirement}" if step.get("n") == failed else ""
        lines.append(f"  {step.get('n')}. {describe_step(step)}{mark}")
    witness = [str(w) for w in f("witness") or []]
    if witness:
        lines += ["", "What the harness saw:"] + [f"  {w}" for w in witness]
    given = f("auth")
    auth: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
    lines += ["", f"Connections (the token travels as {_auth_words(auth)}):"]
    for conn in _dicts(f("connections")):
        lines.append(
            f"  {conn.get('name')}: {conn.get('role')} ({conn.get('user')}), room "
            f"{conn.get('room')}, {conn.get('url')}"
        )
    if f("origin") is not None:
        lines.append(f"  Origin: {f('origin')}")
    lines += ["", "Environment:"]
    for conn in _dicts(f("connections")):
        variable = token_variable(str(conn.get("role") or ""))
        line = f"  {variable}: a valid token of the {conn.get('role')} account ({conn.get('user')})"
        if line not in lines:
            lines.append(line)
    header_names = f("header_names")
    if isinstance(header_names, list) and header_names:
        names = ", ".join(str(n) for n in header_names)
        lines.append(f"  {HEADERS_VARIABLE}: a JSON object with the values of the headers {names}")
    if secure(figure):
        lines.append(f"  {CA_VARIABLE}: optional, a CA bundle for wss:// (default: the system's)")
    lines += [
        "",
        "Run it (Python 3.11+ with websockets >= 13, nothing else):",
        "",
        *_shell_lines(figure, file_name),
        "",
        "Option: --timeout SECONDS, how long each connection waits for its sentinel (default 10).",
        "",
        "After each step it sends a sentinel in every room with an open connection, as the harness",
        "does, and compares what each connection got before it (chat events and errors) with what",
        "the step expects. Exit status: 0 PASS (every step as expected: the server meets the",
        "requirement on this sequence), 1 FAIL (the first difference), 2 a usage problem (a",
        "variable missing, the server unreachable). It prints no token.",
    ]
    return "\n".join(_doc_lines("\n".join(lines)))


def _shell_lines(figure: Mapping[str, Any], file_name: str, width: int = 90) -> list[str]:
    """How to run it, as lines a shell takes when copied from the file: the one-line command,
    or, when it is too long, ``export`` lines first (no backslash: the docstring's source
    would show it doubled)."""
    one = f"  {command(figure, file_name)}"
    if len(one) <= width:
        return [one]
    lines, current = [], "  export"
    for variable in variables(figure):
        word = f"{variable}=…"
        if current != "  export" and len(current) + len(word) + 1 > width:
            lines.append(current)
            current = "  export"
        current += " " + word
    return [*lines, current, f"  python3 {file_name}"]


def _auth_words(auth: Mapping[str, Any]) -> str:
    transport, param = auth.get("transport") or "query", auth.get("param")
    if transport == "query":
        return f"the query parameter {param}"
    if transport == "cookie":
        return f"the cookie {param}"
    if transport == "header":
        scheme = auth.get("scheme")
        return f"the header {param}" + (f" with the scheme {scheme}" if scheme else "")
    if transport == "subprotocol":
        name = auth.get("subprotocol")
        return f"a subprotocol after {name}" if name else "the subprotocol"
    return str(transport)


def script_for(figure: Mapping[str, Any], *, file_name: str | None = None) -> str:
    """The whole text of the replay script of one ``sequence`` figure (redacted)."""
    data = _redacted(dict(figure))
    data.pop("replay", None)
    name = file_name or replay_name(str(data.get("requirement") or "requirement"))
    figure_json = json.dumps(data, indent=1, ensure_ascii=False)
    text = (
        "#!/usr/bin/env python3\n"
        f'"""{_docstring(data, name)}\n"""\n\n'
        f"{_runtime().rstrip()}\n\n\n"
        "#: The figure the harness wrote (results.json, requirements[].figures): what it replays.\n"
        "FIGURE_JSON = (\n" + "\n".join(_literal(figure_json)) + "\n)\n\n"
        'if __name__ == "__main__":\n'
        "    sys.exit(main(json.loads(FIGURE_JSON)))\n"
    )
    return redact.redact(text)


def _sequence_figures(results: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for req in _dicts(results.get("requirements")):
        for figure in req.get("figures") or []:
            if isinstance(figure, dict) and figure.get("kind") == "sequence":
                found.append((str(req.get("id") or figure.get("requirement") or ""), figure))
    return found


def write_replays(results: Mapping[str, Any], directory: Path) -> dict[str, str]:
    """Write ``replay-<REQ>.py`` (mode 0o755) into ``directory`` for each ``sequence`` figure of
    ``results``' requirements (results.json's shape), and record its name in the figure
    (``figure["replay"]``, relative to ``directory``). Requirement -> file name (a second figure
    of one requirement: ``EDIT-009-2`` -> ``replay-EDIT-009-2.py``). Replay scripts an earlier
    run left in ``directory`` go: a stale script must never stand for this run."""
    written: dict[str, str] = {}
    counts: dict[str, int] = {}
    for requirement, figure in _sequence_figures(results):
        counts[requirement] = index = counts.get(requirement, 0) + 1
        name = replay_name(requirement, index)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / name
        path.write_text(script_for(figure, file_name=name), encoding="utf-8")
        path.chmod(0o755)
        figure["replay"] = name
        written[requirement if index == 1 else f"{requirement}-{index}"] = name
    if directory.is_dir():
        for stale in directory.glob(REPLAY_GLOB):
            if stale.name not in written.values() and stale.is_file():
                stale.unlink()
    return written


def sequence_of(figures: Sequence[Any]) -> list[Mapping[str, Any]]:
    """The ``sequence`` figures among ``figures``."""
    return [f for f in figures if isinstance(f, Mapping) and f.get("kind") == "sequence"]
