"""Server limits for a built Blocks (`harden_server(demo)`) and a clean stop for the CLI (`serve`).

- **Fair queueing.** Each waiting event belongs to a visitor (`client_address`: the peer, or behind a proxy the
  address the proxy saw). Within every event (concurrency group) the waiting events are served round robin over
  visitors: a visitor's first waiting event goes before anyone's second, so one visitor flooding an endpoint
  delays another's request by about one run, not by the flood. A visitor may have at most `QUEUE_PER_CLIENT`
  events waiting, under Gradio's overall `QUEUE_MAX`; past that only that visitor gets the one-sentence 503.
  Events with an image input run at most `image_concurrency()` at a time each.
- **Bodies.** JSON bodies over `MAX_JSON_BODY` and multipart bodies over `MAX_MULTIPART_BODY` are answered 413
  before they are parsed (an ASGI middleware, from Content-Length or while streaming). It and the error answers
  below come with the launch arguments (`launch_with_limits`, which `serve` and `serving.served` use).
- **Messages.** FastAPI's 422 answers quote the whole offending input; here they name the field and the problem.
  Unexpected errors answer `{"error": "<sentence>"}` with status 500.
- **Private events are not callable by name.** Gradio's `/gradio_api/call/<name>` route serves every event,
  `api_visibility="private"` included; those are refused here (the page still calls them by index).
- **Clean stop.** `serve(demo, **launch_kwargs)` turns SIGTERM into the same path as Ctrl-C, closes the server and
  deletes every file the app wrote to Gradio's cache and its own temporary folder, within `STOP_TIMEOUT_S`.
"""
from __future__ import annotations

import functools
import ipaddress
import logging
import math
import os
import shutil
import signal
import sys
import threading
import weakref
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import gradio as gr
from starlette.requests import ClientDisconnect

from . import gradio_compat as compat

log = logging.getLogger("explorer")

MAX_JSON_BODY = 256 * 1024  # the page's JSON requests: a few hundred bytes, a drawing's PNG 3-10 KB
MAX_MULTIPART_BODY = 21 * 1024 * 1024  # uploads: Gradio refuses files over max_file_size (10 MB) itself
QUEUE_MAX = 256  # waiting events in all (Gradio's max_size)
QUEUE_PER_CLIENT = 64  # waiting events per visitor address: a class behind one school address fits
QUEUE_POLL_S = 0.005  # how often the queue looks for work it can start (Gradio polls every 1 ms)
FORWARDED_HOPS = 16  # X-Forwarded-For entries read, from the right (the proxies' end)
STOP_TIMEOUT_S = 8.0  # after a stop signal, exit by then whatever is still running
BUSY = "Too many requests are waiting for {what}; try again in a few seconds."
PRIVATE = "There is no API endpoint named /{name}."


def _json_response(status: int, message: str, **extra) -> Any:
    from fastapi.responses import JSONResponse

    return JSONResponse({"error": message, **extra}, status_code=status)


# --------------------------------------------------------------------------- request bodies


class BodyLimit:
    """ASGI middleware: 413 for request bodies over the limit of their content type, before anything parses them."""

    def __init__(self, app, json_limit: int = MAX_JSON_BODY, multipart_limit: int = MAX_MULTIPART_BODY):
        self.app, self.json_limit, self.multipart_limit = app, json_limit, multipart_limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        ctype = headers.get(b"content-type", b"").decode("latin-1").lower()
        limit = self.multipart_limit if ctype.startswith("multipart/") else self.json_limit
        message = f"The request body is larger than the {limit:,} bytes allowed here."
        try:
            declared = int(headers.get(b"content-length", b"-1"))
        except ValueError:
            declared = -1
        if declared > limit:
            return await _json_response(413, message)(scope, receive, send)
        received, started = 0, False

        async def limited_receive():
            nonlocal received
            msg = await receive()
            if msg["type"] == "http.request":
                received += len(msg.get("body", b""))
                if received > limit:
                    from starlette.exceptions import HTTPException

                    raise HTTPException(413, message)
            return msg

        async def tracking_send(msg):
            nonlocal started
            started = started or msg["type"] == "http.response.start"
            await send(msg)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except ClientDisconnect:  # the visitor left mid-upload (closed the tab): no one to answer, nothing to log
            return
        except Exception as e:
            if started or getattr(e, "status_code", None) != 413:
                raise
            await _json_response(413, message)(scope, receive, send)


def _validation_error(request, exc) -> Any:
    """FastAPI's 422 without the offending input (it quoted all of it, megabytes included)."""
    errors = [{k: e.get(k) for k in ("type", "loc", "msg")} for e in exc.errors()[:5]]
    first = errors[0] if errors else {"loc": (), "msg": "invalid"}
    where = ".".join(str(x) for x in first.get("loc") or ()) or "the body"
    return _json_response(422, f"The request does not match the API: {where}: {first.get('msg')}.", detail=errors)


def _http_error(request, exc) -> Any:
    """Gradio's own HTTP errors (queue full, 413, 404...) with `error` beside `detail`, both short."""
    from fastapi.responses import JSONResponse, Response

    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=exc.headers)
    detail = exc.detail if isinstance(exc.detail, str) else "The request was refused."
    detail = detail if len(detail) <= 300 else detail[:297] + "..."
    return JSONResponse({"error": detail, "detail": detail}, status_code=exc.status_code, headers=exc.headers)


def _unexpected_error(request, exc) -> Any:
    from gradio.exceptions import Error

    if isinstance(exc, Error):  # a refusal raised outside an event (e.g. a sketch blob): its sentence, status 400
        return _json_response(400, str(exc.message)[:300])
    if isinstance(exc, compat.UnknownEndpoint):
        return _json_response(404, "There is no API endpoint with that name; see /gradio_api/info.")
    return _json_response(500, "The server could not handle this request.")


def app_kwargs(existing: dict | None = None) -> dict:
    """FastAPI arguments for `launch(app_kwargs=...)`: the body limit and the short error answers."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException
    from starlette.middleware import Middleware

    kw = dict(existing or {})
    kw["middleware"] = [*kw.get("middleware", []), Middleware(BodyLimit)]
    kw["exception_handlers"] = {RequestValidationError: _validation_error, compat.UnknownEndpoint: _unexpected_error,
                                HTTPException: _http_error,
                                Exception: _unexpected_error, **kw.get("exception_handlers", {})}  # fmt: skip
    return kw


# --------------------------------------------------------------------------- the queue


def _ip(text: str | None):
    """An IP address from a peer or an X-Forwarded-For entry ('1.2.3.4', '1.2.3.4:80', '2001:db8::1',
    '[2001:db8::1]:443'), or None when it is not one."""
    text = (text or "").strip()
    if not text or len(text) > 64:
        return None
    if text.startswith("["):
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def client_address(peer: str | None, forwarded: str | None) -> str:
    """The visitor a request counts for. A peer on a public address is the visitor. A peer on a private or
    loopback address is a proxy (the Spaces proxy, a local nginx): then the visitor is the rightmost
    X-Forwarded-For entry that is a public address, the one the nearest proxy saw; the entries to its left
    are what the client wrote itself and are never read. A malformed header (garbage, empty, no public
    address within FORWARDED_HOPS entries) leaves the peer. Never raises."""
    ip = _ip(peer)
    if ip is None:
        return "unknown"
    if ip.is_global or not forwarded:
        return str(ip)
    for entry in reversed(forwarded.rsplit(",", FORWARDED_HOPS)[-FORWARDED_HOPS:]):
        hop = _ip(entry)
        if hop is None:
            break
        if hop.is_global:
            return str(hop)
    return str(ip)


def request_client(request) -> str:
    """`client_address` of a Starlette request (all its X-Forwarded-For headers together)."""
    peer = getattr(getattr(request, "client", None), "host", None)
    headers = getattr(request, "headers", None)
    forwarded = ",".join(headers.getlist("x-forwarded-for")) if headers is not None else ""
    return client_address(peer, forwarded)


def fair_order(events: list, client_of: Callable[[Any], str]) -> None:
    """Reorder one event group's waiting list in place, round robin over clients: every client's first
    waiting event in arrival order, then every client's second, and so on."""
    seen: Counter = Counter()
    ranked = []
    for i, ev in enumerate(events):
        who = client_of(ev)
        ranked.append((seen[who], i, ev))
        seen[who] += 1
    events[:] = [ev for _, _, ev in sorted(ranked, key=lambda r: r[:2])]


def guard_queue(demo: gr.Blocks) -> None:
    """Per-visitor caps and round-robin order of waiting events; private events refused by name (module doc)."""
    compat.set_queue_max_size(demo, QUEUE_MAX)
    clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # Gradio's Event -> its visitor

    def client_of(ev) -> str:
        who = clients.get(ev)
        if who is None:
            who = clients[ev] = request_client(compat.event_request(ev))
        return who

    def make_push(original):
        async def push(body, request, username):
            fn = compat.body_fn(demo, body)
            if fn is None:
                return await original(body, request, username)
            if compat.called_by_name(body) and fn.api_visibility == "private":
                return False, PRIVATE.format(name=compat.fn_name(fn)[:40]), "error"
            who = request_client(request)
            if sum(client_of(ev) == who for ev in compat.waiting_events(demo)) >= QUEUE_PER_CLIENT:
                return False, BUSY.format(what="this client's earlier requests"), "queue_full"
            accepted, event_id, status = await original(body, request, username)
            event = compat.queued_event(demo, event_id) if accepted else None
            group = compat.event_group(demo, fn.concurrency_id)
            if event is not None and group is not None:
                clients[event] = who
                fair_order(group, client_of)
            return accepted, event_id, status

        return push

    compat.wrap_queue_push(demo, make_push)


@functools.lru_cache(maxsize=8)  # read once: batch_threads asks on every sweep
def usable_cpus(cgroup_root: str | os.PathLike = "/sys/fs/cgroup", proc_cgroup: str = "/proc/self/cgroup") -> int:
    """The CPUs this process may use: its affinity mask, capped by the CPU quota of its cgroup and the
    cgroups above it (`cpu.max` in cgroup v2, `cpu.cfs_quota_us` / `cpu.cfs_period_us` in v1).
    `os.cpu_count()` is the host's count: a 2-vCPU Spaces container runs on a host with dozens."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    for quota, period in _cgroup_quotas(Path(cgroup_root), proc_cgroup):
        if quota > 0 and period > 0:
            n = min(n, math.ceil(quota / period))
    return max(1, n)


def _cgroup_quotas(root: Path, proc_cgroup: str):
    """(quota, period) of every CPU-limiting cgroup folder on this process's path, innermost first."""
    try:
        lines = Path(proc_cgroup).read_text().splitlines()
    except OSError:
        return
    for line in lines:
        hierarchy, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        v2 = hierarchy == "0" and not controllers
        if not v2 and "cpu" not in controllers.split(","):
            continue
        base = root if v2 else next((root / d for d in ("cpu,cpuacct", "cpu") if (root / d).is_dir()), root)
        parts = [p for p in path.strip().split("/") if p and p != ".."]
        for depth in range(len(parts), -1, -1):
            folder = base.joinpath(*parts[:depth])
            try:
                if v2:
                    quota, period = ((folder / "cpu.max").read_text().split() + ["100000"])[:2]
                    yield (-1 if quota == "max" else int(quota)), int(period)
                else:
                    yield int((folder / "cpu.cfs_quota_us").read_text()), int((folder / "cpu.cfs_period_us").read_text())
            except (OSError, ValueError):
                continue


def event_concurrency() -> int:
    """Events of each kind running at once by default: two per usable CPU, so a core has the next event
    while one waits on I/O or the GIL (4 on 2 CPUs, the setting the figures in docs/ were measured with)."""
    return 2 * usable_cpus()


def image_concurrency() -> int:
    """Events with an image input (a decode of up to 25 megapixels each) run one per usable CPU at a time."""
    return usable_cpus()


def limit_image_events(demo: gr.Blocks) -> None:
    """Events with an image input (the drawing canvas's PNG included: `carries_image`) keep their own group but run
    at most `image_concurrency()` at once."""
    image_types = (gr.Image, gr.ImageEditor, gr.File, gr.Gallery)
    limit = image_concurrency()
    for fn in compat.event_functions(demo):
        if any(isinstance(b, image_types) or getattr(b, "carries_image", False) for b in fn.inputs):
            compat.cap_default_concurrency(fn, limit)


def harden_server(demo: gr.Blocks) -> gr.Blocks:
    """The queue's limits: image events capped, per-visitor caps, round-robin order, private events refused by name.
    The body limit and the error answers come with the launch (`launch_with_limits`)."""
    limit_image_events(demo)
    guard_queue(demo)
    return demo


def launch_with_limits(launch_kwargs: dict | None = None) -> dict:
    """`demo.launch` arguments plus the body limit and the short error answers (`app_kwargs`, made fresh: Gradio adds
    to the dict it is given) and the upload cap, unless given. `serve` and `serving.served` launch with these."""
    from .inputs.upload import MAX_FILE_SIZE

    kwargs = dict(launch_kwargs or {})
    kwargs["app_kwargs"] = app_kwargs(kwargs.get("app_kwargs"))
    kwargs.setdefault("max_file_size", MAX_FILE_SIZE)
    return kwargs


# --------------------------------------------------------------------------- a clean stop


def delete_app_files(demo: gr.Blocks, extra_dirs=()) -> int:
    """Delete the files Gradio's cache holds for this app (`gradio_compat.cached_files`), then their folders if
    empty, and `extra_dirs` entirely. Returns the count."""
    n = 0
    cache_root = Path(os.environ.get("GRADIO_TEMP_DIR") or Path(os.environ.get("TMPDIR", "/tmp")) / "gradio")
    for f in compat.cached_files(demo):
        p = Path(f)
        try:
            p.unlink()
            n += 1
        except OSError:
            continue
        parent = p.parent  # Gradio's per-file hash folders
        while parent != cache_root and cache_root in parent.parents:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent
    for d in extra_dirs:
        if d and Path(d).exists():
            n += sum(1 for x in Path(d).rglob("*") if x.is_file())
            shutil.rmtree(d, ignore_errors=True)
    return n


def stop(demo: gr.Blocks, extra_dirs=()) -> None:
    """Close the server and the queue, then delete the app's files (safe to call twice)."""
    try:
        demo.close(verbose=False)
    except Exception:
        log.exception("closing the server failed")
    n = delete_app_files(demo, extra_dirs)
    log.info("stopped; deleted %d temporary files", n)


def serve(demo: gr.Blocks, extra_dirs=(), **launch_kwargs) -> None:
    """`demo.launch(**launch_kwargs)` in the main thread until SIGINT or SIGTERM, then `stop`, then the process ends
    (exit code 0) with no upload or temporary file left, within STOP_TIMEOUT_S.

    It ends with os._exit once the files are deleted: requests still running in Gradio's worker threads are
    abandoned either way, and a normal interpreter shutdown waited seconds for them (up to 10 s measured)."""
    done = threading.Event()

    def watchdog():
        if not done.wait(STOP_TIMEOUT_S):
            delete_app_files(demo, extra_dirs)
            os._exit(0)

    def on_signal(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        threading.Thread(target=watchdog, daemon=True).start()
        try:
            compat.stop_server_now(demo)  # no new events, streams end, uvicorn waits for no connection
        except Exception:
            pass
        raise KeyboardInterrupt  # Gradio's launch() loop closes the server on it

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        demo.launch(**launch_with_limits(launch_kwargs))
    except KeyboardInterrupt:
        pass
    finally:
        stop(demo, extra_dirs)
        done.set()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(0)


__all__ = [
    "BodyLimit", "app_kwargs", "client_address", "delete_app_files", "fair_order", "guard_queue", "harden_server",
    "launch_with_limits", "serve", "stop", "usable_cpus",
]
