"""Serve a demo on a free loopback port inside this process (tests, benchmarks, notebooks)."""
from __future__ import annotations

import socket
from contextlib import contextmanager
from typing import Iterator


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def served(demo, **launch_kwargs) -> Iterator[str]:
    """Launch `demo` on 127.0.0.1 without blocking, yield its URL, close it afterwards (never a share link)."""
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, share=False,
                **launch_kwargs)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()
