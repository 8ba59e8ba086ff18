"""The terminal summary of a run: a table per level, the failures, the verdict line.

The table's columns are :meth:`RunResult.summary`'s counts: the verdicts, then "out of scope"
(requirements the run's selection or the target's lacks left out: not "not tested", which counts
only what the run could have tested and did not). A run that took longer than its time budget
says so in one line before the verdict line, with its five slowest tests
(:meth:`RunResult.budget_line`); under its budget, nothing more.
"""

from __future__ import annotations

from harness.core.catalogue import LEVELS
from harness.core.results import RunResult


def summary_lines(result: RunResult) -> list[str]:
    """The lines printed at the end of every run, in every mode."""
    summary = result.summary()
    lines = [
        f"{'level':<8}{'passed':>8}{'failed':>8}{'not tested':>12}{'known':>7}{'n/a':>6}"
        f"{'out of scope':>14}"
    ]
    for lvl in LEVELS:
        s = summary[lvl]
        lines.append(
            f"{lvl:<8}{s['passed']:>8}{s['failed']:>8}{s['not_tested']:>12}{s['known']:>7}"
            f"{s['not_applicable']:>6}{s['out_of_scope']:>14}"
        )
    for r in result.requirements:
        if r.verdict == "failed" and r.requirement.level != "INFO":
            lines.append(f"FAILED {r.requirement.id} ({r.requirement.level}): {r.reason or ''}")
        if r.fixed:
            lines.append(f"FIXED  {r.requirement.id}: passes now; remove it from the baseline")
    word = result.verdict_word
    lines.extend(f"warning: {warning}" for warning in result.warnings)
    if result.reason:
        lines.append(f"{word}: {result.reason}")
    if word != "INCOMPLETE" and result.untested_line:
        lines.append(f"also {result.untested_line}")
    budget = result.budget_line()
    if budget:
        lines.append(budget)
    strict = " (strict)" if result.strict else ""
    lines.append(f"verdict: {word}{strict} against {result.target}")
    return lines
