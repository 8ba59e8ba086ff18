"""``python -m harness.clientcheck``: the same as ``edusphere-conformance client-check``."""

import sys

from harness.clientcheck.cli import main

raise SystemExit(main(sys.argv[1:]))
