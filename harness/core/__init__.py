"""The harness's core: everything that judges, and nothing that touches a socket.

Modules here take frames that the wire layer already read and parsed, and return or raise
findings; they import neither websockets nor pytest (a test in tests/test_layout.py checks it).
"""
