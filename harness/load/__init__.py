"""The load mode (``edusphere-conformance load``): delivery under sustained load, on Locust.

:mod:`harness.load.cli` checks the options and the target without Locust;
:mod:`harness.load.runtime` (imported only to run: it monkey-patches the process for gevent)
holds the users and the phases; :mod:`harness.load.report` writes ``load.json`` and
``load.html``; the verdict is :func:`harness.core.tally.judge`'s.
"""
