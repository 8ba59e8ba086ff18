"""Renderers of :class:`harness.core.results.RunResult`: the same set for every mode.

The pieces every mode shares: ``terminal`` (the summary lines), ``junit`` (junit.xml), ``files``
(results.json and the other files of a report directory), ``html`` (the pieces of every HTML
report), ``svg`` (timelines), ``figures`` (what a test measured: the load tests' delivery
figures, a stateful test's shortest failing sequence), ``replay_script`` (a sequence figure as a
standalone script that replays it, written next to results.json).

Each mode's reports, built from those pieces:

- server mode's HTML report, through pytest-html: ``server_report`` (the pytest-html hooks and
  each test row's extra), ``server_section`` (the conformance section above pytest-html's
  summary: header, summary, requirement matrix, its style and script), ``server_detail`` (one
  test's failure and transcript, shown in both);
- client mode's (client-check) files: ``client_report`` (client-compliance.html,
  client-results.json, client-junit.xml);
- load mode's files: ``load_report`` (load.json, load.html and the closing summary lines).

A renderer reads the model; it never computes a verdict.
"""
