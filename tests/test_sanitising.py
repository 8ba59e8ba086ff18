"""A server that sanitises what the seed leaves open passes ROBUST-016 (issue 11, item 7).

The seed says nothing of control characters or blank text. A server that strips them and
broadcasts the cleaned body has answered the frame: the property must match its event by what
stays visible, not by the exact text it sent (that would be a false failure).
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

from reference_server.behaviour import Behaviour
from reference_server.demo import demo_config, demo_target_dict
from reference_server.runner import ServerThread
from tests.support import run_suites, verdicts, write_target


class Sanitising(Behaviour):
    """Drops control, format and unassigned characters (tab and newline kept) and trims."""

    def accepted_body(self, body: str) -> str:
        kept = "".join(
            ch
            for ch in body
            if ch in "\t\n" or unicodedata.category(ch) not in ("Cc", "Cf", "Cn", "Cs")
        )
        return kept.strip() or body


def test_a_sanitising_server_answers_every_valid_frame(tmp_path: Path) -> None:
    config = demo_config(database=str(tmp_path / "sanitising.sqlite3"))
    object.__setattr__(config, "behaviour", Sanitising)
    with ServerThread(config) as server:
        data = demo_target_dict(server.url_template)
        target = write_target(tmp_path / "target.toml", data)
        # Enough examples that control characters, blanks and mixed text are all drawn.
        code, results, output = run_suites(
            target, tmp_path / "reports", "--examples", "150", only="ROBUST-016"
        )
    assert results is not None, output[-3000:]
    assert "ROBUST-016" in verdicts(results, "passed"), output[-3000:]
    assert code == 0, output[-3000:]
