"""Root conftest: thin on purpose.

The harness plugin (``harness.server.plugin``) is loaded through its ``pytest11`` entry point once
the project is installed, so ``pytest suites/ --target FILE`` works from any directory. Nothing else
belongs here: fixtures, options and reporting live in the plugin.
"""
