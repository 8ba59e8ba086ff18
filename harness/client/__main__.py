"""``python -m harness.client``: the same as ``edusphere-conformance client-check``."""

import sys

from harness.client.cli import main

raise SystemExit(main(sys.argv[1:]))
