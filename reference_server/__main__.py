"""``python -m reference_server serve | provision | faults``."""

import sys

from reference_server.cli import main

raise SystemExit(main(sys.argv[1:]))
