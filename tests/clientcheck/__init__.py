"""Tests of client-check (the client conformance mode) and of the reference client."""
