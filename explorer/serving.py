"""Serve a demo on a free loopback port inside this process (tests, benchmarks, notebooks), and the Gradio
environment a server wants, set by the entry points (`python -m explorer`, app.py, tests/conftest.py)."""
from __future__ import annotations

import os
import socket
from contextlib import contextmanager
from typing import Iterator

# No telemetry. And Gradio's queue keeps a record of every event (up to 10,000) for its monitoring page and
# rebuilds a pandas summary of all of them after *every* event: memory and per-event CPU that grow with traffic.
# Keep fewer records and summarise every 100 events. Gradio reads these when `demo.queue()` runs (in build_demo),
# not when it is imported; the environment can override them.
SERVER_ENVIRONMENT = {
    "GRADIO_ANALYTICS_ENABLED": "False",
    "GRADIO_ANALYTICS_MAX_EVENTS": "1000",
    "GRADIO_ANALYTICS_CACHE_FREQUENCY": "100",
}


def server_environment() -> None:
    """Set SERVER_ENVIRONMENT's variables that are unset; call it before `build_demo`, never at import."""
    for name, value in SERVER_ENVIRONMENT.items():
        os.environ.setdefault(name, value)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def served(demo, **launch_kwargs) -> Iterator[str]:
    """Launch `demo` on 127.0.0.1 without blocking, with the server's limits (`limits.launch_with_limits`), yield its
    URL, close it afterwards (never a share link)."""
    from .limits import launch_with_limits

    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, share=False,
                **launch_with_limits(launch_kwargs))
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()
