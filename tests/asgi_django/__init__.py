"""A Django Channels project in miniature, for tests/test_asgi_alt.py: its ASGI application
(Django's, with a Channels router) refuses every WebSocket connection, and its test run
uses pytest-django, whose session fixtures cannot run twice in one process."""
