"""Renderers of :class:`harness.core.results.RunResult`: the same set for every mode.

``terminal`` (the summary lines), ``junit`` (junit.xml), ``files`` (results.json and the other
files of a report directory), ``html`` (the pieces of every HTML report), ``svg`` (timelines).
A renderer reads the model; it never computes a verdict.
"""
