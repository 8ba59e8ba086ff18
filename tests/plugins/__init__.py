"""pytest plugins the harness's own tests load into a run (``-p tests.plugins.NAME``) to make
something go wrong in it on purpose."""
