"""One visitor of benchmarks/classroom.py: a browser page replaying the page's own events (see classroom.py's doc)."""
from __future__ import annotations

import asyncio
import json
import random
import string
import time
import urllib.parse
from collections import Counter


from light_client import Action, Http, HttpError, Page, Stats, file_url, png_size


SOURCE = "127.0.0.2"  # visitors' source address: a peer that is not the server's own 127.0.0.1
MAX_CONNECTIONS = 6  # per page, as Chrome allows per host over HTTP/1.1
CYCLE = ("clear", "draw", "pose_tab", "pose_release", "pose_release", "routing_tab", "routing_click")
ACTION_TIMEOUT_S = 60.0
DRAW_ORDER = (7, 3, 1, 4, 0, 2, 9, 5, 8, 6)  # "everyone draw a 7 now", then other digits
STROKE_S = 0.3  # between a digit's strokes: the time a hand takes to lift the pen and draw the next one


def visitor_address(i: int) -> str:
    return f"81.2.{i // 250}.{i % 250 + 1}"


def session_hash() -> str:
    """Random, not from the seed: a warm-up or an earlier count on the same server must not share a session."""
    import secrets

    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(11))


# --------------------------------------------------------------------------- one visitor: the page's protocol


class Visitor:
    """One browser page: a session, its streams, the values its components hold and the requests it sends."""

    MAX_BACKGROUND = 120  # background requests waiting per page before more are dropped (bounded memory)

    def __init__(self, i: int, url: str, page: Page, stats: Stats, sketches: dict, seed: int,
                 one_address: bool = False, trace: list | None = None):
        self.page, self.stats, self.sketches, self.trace = page, stats, sketches, trace
        self.rng = random.Random(seed * 100_003 + i)
        self.sh = session_hash()
        headers = {} if one_address else {"X-Forwarded-For": visitor_address(i)}
        self.http = Http(url, headers, SOURCE, MAX_CONNECTIONS, ACTION_TIMEOUT_S)
        self.values = dict(page.initial)
        self.events: dict[str, asyncio.Future] = {}  # event_id -> its process_completed message
        self.early: dict[str, dict] = {}  # completions that arrived before their join's answer
        self.running: Counter = Counter()  # dependency id -> events in flight
        self.rerun: dict[int, tuple] = {}  # always_last: the trigger to fire again when the running one ends
        self.sizes: dict[str, tuple[int, int]] = {}  # image url -> (width, height)
        self.stream = self.heartbeat = None
        self.bg: set[asyncio.Task] = set()
        self.drawn = False  # the canvas holds a drawing
        self.n_drawn = 0
        self.map_open = False  # the Routing tab's coupling-map section

    # ---- requests

    async def send(self, where: str, method: str, path: str, action: Action | None = None, body: bytes = b"",
                   ctype: str | None = None, json_body=None) -> bytes | None:
        """One request; its answer's body, or None after recording a refusal or error (which fails the action)."""
        self.stats.requests[where] += 1
        if json_body is not None:
            body, ctype = json.dumps(json_body).encode(), "application/json"
        if self.trace is not None:
            self.trace.append({"t": round(time.perf_counter(), 3), "action": action and action.serial, "where": where,
                               "path": path, "json": json_body})  # fmt: skip
        try:
            status, data = await self.http.request(method, path, body, ctype)
        except (HttpError, OSError, asyncio.TimeoutError) as e:
            self.stats.failed(where, f"{type(e).__name__}: {e}")
            status, data = None, None
        if status is not None and status != 200:
            self.stats.answer(where, status, data.decode("utf-8", "replace"))
            data = None
        if data is None and action is not None:
            action.ok = False
        return data

    def background(self, where: str, make_coro) -> None:
        """A request the page sends beside its actions (not waited for): timed apart, failures still counted."""
        if len(self.bg) >= self.MAX_BACKGROUND:
            self.stats.dropped += 1
            return

        async def timed():
            t = time.perf_counter()
            if await make_coro() is not None:
                self.stats.background.setdefault(where, []).append(time.perf_counter() - t)

        task = asyncio.create_task(timed())
        self.bg.add(task)
        task.add_done_callback(self.bg.discard)

    async def fetch_file(self, url: str):
        u = urllib.parse.urlsplit(url)
        data = await self.send("file", "GET", u.path + (f"?{u.query}" if u.query else ""))
        if data is not None and (size := png_size(data[:24])):
            self.sizes[url] = size
        return data

    # ---- the queue: join, the session's stream, completions

    async def join(self, action: Action, dep: dict, data: list, event_data, trigger) -> dict | None:
        body = {"data": data, "event_data": event_data, "fn_index": dep["id"], "trigger_id": trigger,
                "session_hash": self.sh}  # fmt: skip
        r = await self.send(f"join {dep.get('api_name')}", "POST", "/gradio_api/queue/join", action, json_body=body)
        if r is None:
            return None
        eid = json.loads(r)["event_id"]
        fut = self.events[eid] = asyncio.get_running_loop().create_future()
        if eid in self.early:
            fut.set_result(self.early.pop(eid))
        if self.stream is None or self.stream.done():
            self.stream = asyncio.create_task(self.read_stream())
        try:
            msg = await fut
        finally:
            self.events.pop(eid, None)
        if not msg.get("success"):
            out = msg.get("output") or {}
            self.stats.failed(f"event {dep.get('api_name')}", out.get("error") or msg.get("message") or "failed")
            action.ok = False
            return None
        if isinstance(msg["output"].get("duration"), (int, float)):
            self.stats.handler_s.setdefault(str(dep.get("api_name")), []).append(msg["output"]["duration"])
        return msg["output"]

    def deliver(self, msg: dict) -> None:
        kind, eid = msg.get("msg"), msg.get("event_id")
        if kind in ("process_completed", "unexpected_error"):
            if eid is None:
                return self.fail_all(msg.get("message") or kind)
            fut = self.events.get(eid)
            if fut is None:
                self.early[eid] = msg
            elif not fut.done():
                fut.set_result(msg)

    def fail_all(self, text: str) -> None:
        for fut in self.events.values():
            if not fut.done():
                fut.set_result({"msg": "process_completed", "success": False, "output": {"error": text}})

    async def read_stream(self) -> None:
        """GET /gradio_api/queue/data while events are pending; the server ends it with close_stream."""
        while any(not f.done() for f in self.events.values()):
            self.stats.requests["queue/data"] += 1
            try:
                async with self.http.stream(f"/gradio_api/queue/data?session_hash={self.sh}") as (status, lines):
                    if status != 200:
                        return self.fail_all(f"queue/data: HTTP {status}")
                    async for line in lines:
                        if line.startswith("data:"):
                            msg = json.loads(line[5:])
                            if msg.get("msg") == "close_stream":
                                break
                            self.deliver(msg)
            except (HttpError, OSError, asyncio.TimeoutError, ValueError) as e:
                return self.fail_all(f"queue/data: {type(e).__name__}: {e}")

    async def read_heartbeat(self) -> None:
        """The page's heartbeat stream, held open (Gradio sends a message every 15 s) until the visitor leaves."""
        while True:
            try:
                async with self.http.stream(f"/gradio_api/heartbeat/{self.sh}") as (status, lines):
                    async for _ in lines:
                        pass
            except (HttpError, OSError, asyncio.TimeoutError):
                await asyncio.sleep(1.0)

    # ---- events: what the page runs for a trigger, and what follows from the answers

    def fire(self, action: Action, target, event: str, event_data=None, override: dict | None = None) -> None:
        """The page's dispatch of (target, event): every backend event listening, as its trigger mode allows."""
        for dep in self.page.by_trigger.get((target, event), []):
            self.dispatch(action, dep, target, event_data, override)

    def dispatch(self, action: Action, dep: dict, trigger, event_data=None, override=None) -> None:
        if self.running[dep["id"]]:
            if dep.get("trigger_mode") == "once":
                return
            if dep.get("trigger_mode") == "always_last":
                self.rerun[dep["id"]] = (action, dep, trigger, event_data, override)
                return
        action.spawn(self.run_event(action, dep, trigger, event_data, override))

    def value(self, cid):
        if self.page.type(cid) == "state":
            return None  # the server holds it
        v = self.values.get(cid)
        return 0 if v is None and self.page.type(cid) == "number" else v  # an empty gr.Number sends 0

    async def run_event(self, action: Action, dep: dict, trigger, event_data, override) -> None:
        d = dep["id"]
        data = [self.value(c) for c in dep["inputs"]]
        for cid, v in (override or {}).items():
            data[dep["inputs"].index(cid)] = v
        self.running[d] += 1
        try:
            if dep.get("queue", True):
                output = await self.join(action, dep, data, event_data, trigger)
            else:  # queue=False: answered directly (the sketchpad's clear)
                body = {"data": data, "fn_index": d, "trigger_id": trigger, "session_hash": self.sh}
                r = await self.send(f"run {dep.get('api_name')}", "POST", "/gradio_api/run/predict", action,
                                    json_body=body)  # fmt: skip
                output = None if r is None else json.loads(r)
        finally:
            self.running[d] -= 1
        if output is not None:
            self.apply(action, dep, output)
            if d in self.page.then:
                self.dispatch(action, self.page.then[d], None)
        if d in self.rerun and not self.running[d]:
            self.dispatch(*self.rerun.pop(d))

    def apply(self, action: Action, dep: dict, output: dict) -> None:
        """Take the answer's values; fire .change for the states the server says changed and for the components
        whose value is new (as the page does), and fetch the images it now shows."""
        changed = list(output.get("changed_state_ids") or [])
        for cid, val in zip(dep["outputs"], output.get("data") or []):
            if self.page.type(cid) == "state":
                continue
            if isinstance(val, dict) and val.get("__type__") == "update":
                if "value" not in val:
                    continue
                val = val["value"]
            if val != self.values.get(cid):
                self.values[cid] = val
                changed.append(cid)
                if (url := file_url(val)) is not None:
                    self.background("file", lambda u=url: self.fetch_file(u))
        for cid in changed:
            self.fire(action, cid, "change")

    # ---- the actions

    async def do_open(self, action: Action) -> None:
        self.heartbeat = self.heartbeat or asyncio.create_task(self.read_heartbeat())
        if await self.send("page", "GET", "/", action) is not None:
            for target, event, event_data in self.page.load_triggers():
                self.fire(action, target, event, event_data)

    async def do_clear(self, action: Action) -> None:
        """The canvas's Clear: its value becomes "" (one change event)."""
        sketch = self.page.find(elem_id="sketchpad")
        self.drawn = False
        self.values[sketch] = ""
        self.fire(action, sketch, "change")

    async def do_draw(self, action: Action) -> None:
        """A digit stroke by stroke: after each, the canvas as a PNG data URL is the value (one change event, merged
        by always_last while the last one runs), STROKE_S apart."""
        sketch = self.page.find(elem_id="sketchpad")
        digit = DRAW_ORDER[self.n_drawn % len(DRAW_ORDER)]
        self.n_drawn += 1
        for i, value in enumerate(self.sketches[digit]):
            if i:
                await asyncio.sleep(STROKE_S)
            self.values[sketch] = value
            self.fire(action, sketch, "change")
        self.drawn = True

    async def do_pose_tab(self, action: Action) -> None:
        tab = self.page.find(elem_id="pose-tab", type_="tabitem")
        self.fire(action, tab, "select", self.page.tab_event(tab))

    async def do_routing_tab(self, action: Action) -> None:
        tab = self.page.find(elem_id="routing-tab", type_="tabitem")
        self.fire(action, tab, "select", self.page.tab_event(tab))

    async def do_pose_release(self, action: Action) -> None:
        slider = self.page.find(elem_id=f"pose-dim-{self.rng.randrange(16)}")
        v = float(self.values.get(slider) or 0.0) + self.rng.uniform(-0.3, 0.3)
        self.values[slider] = v = round(min(1.0, max(-1.0, v)), 2)
        self.fire(action, slider, "release", v)

    async def do_routing_map(self, action: Action) -> None:
        """Open the Routing tab's coupling-map section (it stays open, as in the page)."""
        self.map_open = True
        self.fire(action, self.page.find(elem_id="coupling-section"), "expand")

    async def do_routing_click(self, action: Action) -> None:
        cmap = self.page.find(elem_id="coupling-map")
        w, h = self.sizes.get(file_url(self.values.get(cmap)), (394, 202))
        self.fire(action, cmap, "select", {"index": [self.rng.randrange(w), self.rng.randrange(h)], "value": None})

    # ---- the visitor's minute

    async def act(self, kind: str) -> None:
        action, t0 = Action(kind), time.perf_counter()
        try:
            await asyncio.wait_for(self._act(action), ACTION_TIMEOUT_S)
        except asyncio.TimeoutError:
            self.stats.failed(kind, f"no answer within {ACTION_TIMEOUT_S:.0f} s")
            return
        if action.ok:
            self.stats.samples.setdefault(kind, []).append(time.perf_counter() - t0)

    async def _act(self, action: Action) -> None:
        try:
            await getattr(self, "do_" + action.kind)(action)
            await action.wait()
        finally:
            for t in action.tasks:
                t.cancel()

    async def run(self, t_end: float, think: float, ramp: float) -> None:
        """Open the page within `ramp` s, then act every `think` s +-25% until t_end (the last action finishes)."""
        await asyncio.sleep(self.rng.uniform(0.0, ramp))
        await self.act("open")
        i = 0
        while True:
            await asyncio.sleep(self.rng.uniform(0.75 * think, 1.25 * think))
            if time.perf_counter() >= t_end:
                return
            kind = CYCLE[i % len(CYCLE)]
            i += 1
            if kind == "clear" and not self.drawn:
                kind, i = CYCLE[i % len(CYCLE)], i + 1
            if kind == "routing_click" and not self.map_open:  # the map's section is opened once, then clicked
                kind, i = "routing_map", i - 1
            await self.act(kind)

    async def close(self) -> None:
        for t in [self.stream, self.heartbeat, *self.bg]:
            if t is not None and not t.done():
                t.cancel()
        await asyncio.gather(*[t for t in [self.stream, self.heartbeat, *self.bg] if t is not None],
                             return_exceptions=True)  # fmt: skip
        await self.http.aclose()


