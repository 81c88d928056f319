"""Locust for in-process tests, imported without gevent's monkey-patching.

`import locust` patches the standard library for gevent (threads become greenlets), which
would change every other test of the session (uvicorn servers in threads, asyncio). The user
classes need no patching: FastHttpUser's geventhttpclient uses gevent's own sockets, and a
test drives the users from its main greenlet. Importing this module before anything imports
locust keeps the session unpatched; the variable is removed again at once, so the `locust`
subprocesses that other tests start are patched as usual.
"""

from __future__ import annotations

import os

_KEY = "LOCUST_SKIP_MONKEY_PATCH"
_previous = os.environ.get(_KEY)
os.environ[_KEY] = "1"
try:
    from locust.env import Environment
    from locust.event import Events
finally:
    if _previous is None:
        os.environ.pop(_KEY, None)
    else:
        os.environ[_KEY] = _previous

__all__ = ["Environment", "Events"]
