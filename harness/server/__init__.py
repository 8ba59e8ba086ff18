"""The server mode: the suites' machinery (the ``chat`` fixture and its connections, the
preflight, the scheduler, the property strategies) and the pytest plugin that runs them."""
