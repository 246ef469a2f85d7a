"""The light client of benchmarks/classroom.py: a minimal HTTP/1.1 client on asyncio streams (httpx cost 6x more
client CPU per request here), the page's events read from /config, the drawings, and what is measured."""
from __future__ import annotations

import asyncio
import time
import urllib.parse
from collections import Counter
from contextlib import asynccontextmanager


# --------------------------------------------------------------------------- HTTP, lightly


class HttpError(Exception):
    pass


class Http:
    """A minimal HTTP/1.1 client on asyncio streams: keep-alive connections (at most `limit`) from `source`.

    Why not httpx: measured here, httpx.AsyncClient spent 2.7-4.1 ms of client CPU per request (h11 parsing,
    its connection pool), about as much as the server spends on an upload (3-5 ms); this spends 0.4-0.7 ms."""

    IDLE_S = 3.0  # reuse a connection only this long (uvicorn closes idle ones after 5 s)

    def __init__(self, url: str, headers: dict | None = None, source: str | None = None, limit: int = 6,
                 timeout: float = 60.0):
        u = urllib.parse.urlsplit(url)
        self.host, self.port, self.source, self.timeout = u.hostname, u.port or 80, source, timeout
        self.head = f"Host: {u.netloc}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self.idle: list[tuple[float, asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.slots = asyncio.Semaphore(limit)

    async def _connection(self):
        while self.idle:
            t, reader, writer = self.idle.pop()
            if time.monotonic() - t < self.IDLE_S and not reader.at_eof():
                return reader, writer, True
            writer.close()
        local = (self.source, 0) if self.source else None
        reader, writer = await asyncio.open_connection(self.host, self.port, local_addr=local, limit=2**20)
        return reader, writer, False

    def _request(self, method: str, path: str, body: bytes, ctype: str | None) -> bytes:
        head = f"{method} {path} HTTP/1.1\r\n{self.head}"
        if body or method == "POST":
            head += f"Content-Length: {len(body)}\r\n" + (f"Content-Type: {ctype}\r\n" if ctype else "")
        return (head + "\r\n").encode("latin-1") + body

    @staticmethod
    async def _head(reader) -> tuple[int, dict]:
        raw = await reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        return int(lines[0].split(" ", 2)[1]), headers

    @staticmethod
    async def _chunks(reader):
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                return
            yield (await reader.readexactly(size + 2))[:-2]

    async def _body(self, reader, headers) -> bytes:
        if headers.get("transfer-encoding", "").lower() == "chunked":
            return b"".join([c async for c in self._chunks(reader)])
        return await reader.readexactly(int(headers.get("content-length", 0)))

    async def request(self, method: str, path: str, body: bytes = b"", ctype: str | None = None) -> tuple[int, bytes]:
        async with self.slots:
            return await asyncio.wait_for(self._exchange(method, path, body, ctype), self.timeout)

    async def _exchange(self, method, path, body, ctype):
        for attempt in (0, 1):
            reader, writer, reused = await self._connection()
            try:
                writer.write(self._request(method, path, body, ctype))
                status, headers = await self._head(reader)
            except (ConnectionError, asyncio.IncompleteReadError) as e:
                writer.close()
                if reused and attempt == 0:
                    continue  # the server closed an idle connection: nothing was received, send again
                raise HttpError(f"{type(e).__name__}: {e}") from None
            try:
                data = await self._body(reader, headers)
            except (ConnectionError, asyncio.IncompleteReadError, ValueError) as e:
                writer.close()
                raise HttpError(f"{type(e).__name__}: {e}") from None
            if headers.get("connection", "").lower() == "close":
                writer.close()
            else:
                self.idle.append((time.monotonic(), reader, writer))
            return status, data

    @asynccontextmanager
    async def stream(self, path: str):
        """GET a server-sent stream: yields (status, async iterator of its lines); the connection is not reused."""
        async with self.slots:
            local = (self.source, 0) if self.source else None
            reader, writer = await asyncio.open_connection(self.host, self.port, local_addr=local, limit=2**20)
            try:
                writer.write(self._request("GET", path, b"", None))
                status, headers = await asyncio.wait_for(self._head(reader), self.timeout)
                yield status, self._lines(reader, headers)
            finally:
                writer.close()

    async def _lines(self, reader, headers):
        buf = b""
        chunks = self._chunks(reader) if headers.get("transfer-encoding", "").lower() == "chunked" else None
        while True:
            try:
                data = await asyncio.wait_for(chunks.__anext__() if chunks else reader.read(65536), self.timeout)
            except StopAsyncIteration:
                data = b""
            if not data:
                return
            buf += data
            *lines, buf = buf.split(b"\n")
            for line in lines:
                yield line.rstrip(b"\r").decode("utf-8")

    async def aclose(self):
        for _, _, writer in self.idle:
            writer.close()
        self.idle.clear()


def multipart(fields: dict, file_field: str, filename: str, data: bytes) -> tuple[bytes, str]:
    """(body, content type) of a form with `fields` and one file, as a browser's FormData sends it."""
    b = "----classroomBoundary7MA4YWxkTrZu0gW"
    parts = [f'--{b}\r\nContent-Disposition: form-data; name="{file_field}"; filename="{filename}"\r\n'
             f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n"]
    parts += [f'--{b}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()]
    return b"".join(parts) + f"--{b}--\r\n".encode(), f"multipart/form-data; boundary={b}"


# --------------------------------------------------------------------------- the page, from /config


class Page:
    """What the page knows from /config: components, their first values, and the events they trigger."""

    def __init__(self, config: dict):
        self.components = {c["id"]: c for c in config["components"]}
        self.deps = {d["id"]: d for d in config["dependencies"] if d.get("backend_fn")}
        self.by_trigger: dict[tuple, list[dict]] = {}
        for d in self.deps.values():
            for target, event in d["targets"]:
                self.by_trigger.setdefault((target, event), []).append(d)
        self.then = {d["trigger_after"]: d for d in self.deps.values() if d.get("trigger_after") is not None}
        self.initial = {i: c["props"].get("value") for i, c in self.components.items()}
        self.children: dict[int, list[int]] = {}
        self._walk(config["layout"])

    def _walk(self, node):
        self.children[node["id"]] = [c["id"] for c in node.get("children", [])]
        for child in node.get("children", []):
            self._walk(child)

    def tabs_in(self, container: int) -> list[int]:
        return [i for i in self.children.get(container, []) if self.type(i) == "tabitem"]

    def type(self, cid) -> str:
        return self.components.get(cid, {}).get("type", "")

    def find(self, elem_id: str = None, label: str = None, type_: str = None) -> int:
        for i, c in self.components.items():
            p = c["props"]
            if (elem_id is None or p.get("elem_id") == elem_id) and (label is None or p.get("label") == label) \
                    and (type_ is None or c["type"] == type_):  # fmt: skip
                return i
        raise LookupError(f"no component elem_id={elem_id} label={label} type={type_}")

    def tab_event(self, tab_id: int) -> dict:
        """The select event data of a tab, as the page sends it: {value: label, index: position among its tabs}
        (an English page: a translated label's English)."""
        siblings = next(self.tabs_in(p) for p, kids in self.children.items() if tab_id in kids)
        label = self.components[tab_id]["props"]["label"]  # a gr.I18n key's metadata: the page sends its English
        return {"value": label.get("key") if isinstance(label, dict) else label, "index": siblings.index(tab_id)}

    def load_triggers(self) -> list[tuple[int, str, object]]:
        """(target, event, event data) the page fires when it opens: the load events and the first view tab's select."""
        out = [(t, e, None) for (t, e) in self.by_trigger if e == "load"]
        tabs = self.tabs_in(self.find(elem_id="view-tabs"))
        if tabs and (tabs[0], "select") in self.by_trigger:
            out.insert(0, (tabs[0], "select", self.tab_event(tabs[0])))
        return out


# --------------------------------------------------------------------------- the drawings


def sketches() -> dict[int, list[str]]:
    """digit -> the drawing canvas's value after each of its strokes (static/canvas.js, a PNG data URL)."""
    from tests.sketch_digits import DIGITS, canvas_value

    return {k: [canvas_value(strokes[:n]) for n in range(1, len(strokes) + 1)] for k, strokes in DIGITS.items()}


# --------------------------------------------------------------------------- what is measured


class Stats:
    """Latencies per action kind, refusals and errors (with their text), requests and background requests."""

    def __init__(self):
        self.samples: dict[str, list[float]] = {}
        self.background: dict[str, list[float]] = {}  # re-uploads and file fetches: not part of an action
        self.refusals: Counter = Counter()
        self.errors: Counter = Counter()
        self.requests: Counter = Counter()
        self.dropped = 0  # background requests not sent: the visitor already had too many waiting
        self.handler_s: dict[str, list[float]] = {}  # event name -> its handler's wall time (the answer's duration)

    def answer(self, where: str, status: int, text: str) -> None:
        text = " ".join(str(text).split())[:200]
        refused = status in (429, 503) or "too many" in text.lower() or "queue" in text.lower()
        (self.refusals if refused else self.errors)[f"{where}: HTTP {status}: {text}"] += 1

    def failed(self, where: str, text: str) -> None:
        text = " ".join(str(text).split())[:200]
        refused = "too many" in text.lower() or "queue is full" in text.lower()
        (self.refusals if refused else self.errors)[f"{where}: {text}"] += 1


class Action:
    """One user action: the events it triggers, follow-ups included; `ok` until one of them fails."""

    serials = iter(range(1, 1 << 62))

    def __init__(self, kind: str):
        self.kind, self.ok, self.tasks = kind, True, set()
        self.serial = f"{next(self.serials)} {kind}"  # names the action in a trace

    def spawn(self, coro) -> None:
        self.tasks.add(asyncio.create_task(coro))

    async def wait(self) -> None:
        while self.tasks:
            done, _ = await asyncio.wait(self.tasks)
            self.tasks -= done
            for t in done:
                if t.exception() is not None:
                    raise t.exception()


def png_size(data: bytes) -> tuple[int, int] | None:
    if data[:8] != b"\x89PNG\r\n\x1a\n" or len(data) < 24:
        return None
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def file_url(value) -> str | None:
    if isinstance(value, dict) and isinstance(value.get("url"), str) and \
            (value.get("meta") or {}).get("_type") == "gradio.FileData":  # fmt: skip
        return value["url"]
    return None


