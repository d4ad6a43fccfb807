"""`make bench`: our server and SDK against raw `websockets` and python-socketio, side by side.

Entry point: `python -m bench.run` (see `bench/run.py`). Loopback only; every loop is bounded.
"""
