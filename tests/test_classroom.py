"""A class at once (issue 20, "Room for a class"), with benchmarks/classroom.py: visitors replaying the page's own
events (sessions, queue joins, the drawing canvas's value, the images it fetches) from one light client.

- `test_replay_is_the_page`: one visitor, one cycle: the events each action sends are the ones the real page sent
  in chromium (recorded with Playwright; see the benchmark's doc). Fails when the app's wiring changes, so the
  load test keeps replaying what a browser does.
- `test_a_class_of_40_is_never_refused` (slow): 40 visitors for 60 s, each acting every ~2 s: no refusal, no error.
"""
import sys
from collections import Counter

import pytest

from .conftest import REPO, SHIPPED

VISITORS, DURATION_S, THINK_S, P95_LIMIT_S = 40, 60.0, 2.0, 1.0
CLIENT_SHARE = 0.15  # the client's CPU time, as a share of the server's + its own: it must not starve the server

# What the page sent for each action (Gradio 6.31, chromium, recorded with Playwright): the events it joined,
# by api name (handler_6: the sketch's change, handler_3: the opening example, catch_up_N: the check after an input event
# or a tab's selection that the open tab gets drawn (numbered in wiring order: after the share input's and the
# language switch's, 10-16 are the tabs'), on_expand / draw: opening
# the Routing tab's coupling-map section / drawing it while it is open).
PAGE = {
    "open": ["on_select", "run catch_up_10", "handler_3", "run catch_up_3", "views_capsules"],
    "draw": ["handler_6", "run catch_up_6", "views_capsules"],  # the first drawing, with the Digit capsules tab open
    "pose_tab": ["on_select_1", "run catch_up_11", "views_pose"],
    "pose_release": ["pose"],
    "routing_tab": ["on_select_3", "run catch_up_13", "views_routing"],
    "routing_map": ["on_expand"],
    "routing_click": ["on_click"],
    "clear": ["handler_6", "run catch_up_6"],
    "draw again": ["handler_6", "run catch_up_6", "views_routing", "draw"],
}


def classroom():
    if not SHIPPED.exists():
        pytest.skip(f"no trained checkpoint at {SHIPPED}: run `python -m capsnet.train` first")
    sys.path.insert(0, str(REPO / "benchmarks"))
    import classroom

    return classroom


def events_per_action(trace: list[dict]) -> dict[str, Counter]:
    """The first occurrence of each action kind (the second drawing as "draw again"): its events, counted."""
    seen: dict[str, Counter] = {}
    names: dict[str, str] = {}
    for entry in trace:
        if not entry["action"] or not entry["where"].startswith(("join ", "run ")):
            continue
        kind = entry["action"].split(" ", 1)[1]
        if entry["action"] not in names:
            name = "draw again" if kind == "draw" and "draw" in seen else kind
            names[entry["action"]] = name if name not in seen else None
            if names[entry["action"]]:
                seen[name] = Counter()
        if names[entry["action"]]:
            where = entry["where"]
            seen[names[entry["action"]]][where[5:] if where.startswith("join ") else where] += 1
    return seen


def test_replay_is_the_page():
    cr = classroom()
    trace: list[dict] = []
    (r,) = cr.measure([1], duration=10.0, think=0.3, ramp=0.0, checkpoint=str(SHIPPED), trace=trace,
                      log=lambda *_: None)
    assert r["refusals"] == 0 and r["errors"] == 0, (r["refusal_texts"], r["error_texts"])
    got = events_per_action(trace)
    for kind, events in PAGE.items():
        assert got.get(kind) == Counter(events), (kind, got.get(kind))
    sketches = [e["json"]["data"][0] for e in trace if e["where"] == "join handler_6"]
    assert any(s.startswith("data:image/png;base64,") for s in sketches) and "" in sketches  # drawings and a clear
    assert not {"upload", "blob"} & set(r["requests"]), r["requests"]  # the canvas sends its value, nothing else


@pytest.mark.slow
def test_a_class_of_40_is_never_refused():
    """40 visitors at once, each acting every ~2 s (uniform 1.5-2.5 s after each answer) for 60 s: a new drawing,
    pose releases, the routing view, through the page's events. No refusal and no error (a broken image, an
    action unanswered for 60 s) from a light client. The issue's p95 <= 1 s is printed, not asserted: it depends on
    the 2 cores' speed (0.18 s on a 2-core AVX-512 EPYC, 1.35 s on a slower AVX2 one: docs/robustness.md), and CI's
    machine varies; `python benchmarks/classroom.py` exits 1 on it."""
    cr = classroom()
    (r,) = cr.measure([VISITORS], DURATION_S, THINK_S, checkpoint=str(SHIPPED), p95_limit=P95_LIMIT_S)
    print("\n" + cr.report(r))
    assert r["refusals"] == 0, r["refusal_texts"]
    assert r["errors"] == 0, r["error_texts"]
    assert r["client_cpu_share"] is not None and r["client_cpu_share"] <= CLIENT_SHARE, r["cpu_s"]
    assert set(r["kinds"]) >= {"open", "clear", "draw", "pose_tab", "pose_release", "routing_tab", "routing_map",
                               "routing_click"}
