"""Structured logs: one JSON object a line, tokens redacted."""

from __future__ import annotations

import io
import json
import logging

from refserver_support import make_token

from reference_server.logs import REDACTED, JsonFormatter, configure, log, redact


def test_jwts_and_token_parameters_are_redacted() -> None:
    token = make_token("bob")
    text = f"GET /ws/chat/a/b?token={token} Authorization: Bearer {token} JWT=abc.def"
    cleaned = redact(text)
    assert token not in cleaned
    assert "abc.def" not in cleaned
    assert cleaned.count(REDACTED) == 3


def test_records_are_one_json_object_with_their_fields() -> None:
    record = logging.LogRecord("reference_server", logging.INFO, __file__, 1, "refused", (), None)
    record.fields = {"room": "alice/general", "reason": "no token"}
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert (entry["event"], entry["room"], entry["level"]) == ("refused", "alice/general", "INFO")
    assert "\n" not in line


def test_configure_sends_redacted_json_lines_to_the_stream() -> None:
    stream = io.StringIO()
    root, library = logging.getLogger(), logging.getLogger("websockets")
    saved = (list(root.handlers), root.level, library.level)
    try:
        configure(logging.INFO, stream)
        log(logging.getLogger("reference_server.test"), logging.INFO, "hello", token=make_token())
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        library.setLevel(saved[2])
    entry = json.loads(stream.getvalue())
    assert entry == {**entry, "event": "hello", "token": REDACTED}


def test_a_nodes_records_name_the_node() -> None:
    record = logging.LogRecord("reference_server", logging.INFO, __file__, 1, "listening", (), None)
    entry = json.loads(JsonFormatter("node-2").format(record))
    assert (entry["node"], entry["event"]) == ("node-2", "listening")
    assert "node" not in json.loads(JsonFormatter().format(record))
