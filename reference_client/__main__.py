"""``python -m reference_client``: the bundled reference client (see the package's docstring)."""

from reference_client import main

raise SystemExit(main())
