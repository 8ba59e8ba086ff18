"""The README's generated sections: the catalogue table and the mutation matrix table.

    python -m tests.readme_sections            # rewrite them in README.md
    python bench/mutation_matrix.py --markdown # the matrix with observed failures, to paste

tests/test_readme.py fails when README.md differs from what this module generates.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from harness.cli import markdown_table
from reference_server.faults import FAULTS

README = Path(__file__).resolve().parent.parent / "README.md"


def fault_rows(observed: Mapping[str, Sequence[str]] | None = None) -> str:
    """The matrix as Markdown: switch, level, what it breaks, must fail, observed failures."""
    rows = [
        "| switch | level | what it breaks | must fail | observed failures |",
        "|---|---|---|---|---|",
    ]
    for fault in FAULTS.values():
        if observed is not None and fault.name in observed:
            seen = list(observed[fault.name])
        else:
            seen = list(fault.requirements)
        extra = [r for r in seen if r not in fault.requirements]
        shown = ", ".join(r for r in seen if r in fault.requirements)
        if extra:
            shown += " (+ explained: " + ", ".join(extra) + ")"
        rows.append(
            f"| `{fault.name}` | {fault.level} | {fault.description} | "
            f"{', '.join(fault.requirements)} | {shown} |"
        )
    return "\n".join(rows)


def catalogue_section() -> str:
    return (
        markdown_table("server")
        + "\n\nChecked by `client-check` (the client's side of reconnection):\n\n"
        + markdown_table("client")
    )


def section(text: str, name: str) -> str:
    match = re.search(rf"<!-- {name}:start -->\n(.*?)<!-- {name}:end -->", text, re.S)
    if match is None:
        raise ValueError(f"README.md has no {name} section")
    return match.group(1).strip()


def replace(text: str, name: str, body: str) -> str:
    return re.sub(
        rf"(<!-- {name}:start -->\n).*?(<!-- {name}:end -->)",
        lambda m: m.group(1) + body.strip() + "\n" + m.group(2),
        text,
        flags=re.S,
    )


def parse_observed(table: str) -> dict[str, list[str]]:
    """The observed column of a fault table, by switch."""
    out: dict[str, list[str]] = {}
    for line in table.splitlines():
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        name = cells[0].strip("`")
        out[name] = re.findall(r"[A-Z]+-\d{3}", cells[-1])
    return out


def main() -> int:
    text = README.read_text(encoding="utf-8")
    text = replace(text, "catalogue", catalogue_section())
    observed = parse_observed(section(text, "faults")) if section(text, "faults") else None
    text = replace(text, "faults", fault_rows(observed))
    README.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
