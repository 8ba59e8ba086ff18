"""``python -m harness.load``: the load mode (what ``edusphere-conformance load`` runs; local
workers are started this way)."""

import sys

from harness.load.cli import main

sys.exit(main())
