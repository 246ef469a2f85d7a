"""Fair queueing behind a proxy (explorer.limits): who a request counts for, round-robin order within an event,
caps per visitor, and the CPUs the server sizes itself by. Raw HTTP against a launched `python -m explorer`."""
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from explorer.limits import BUSY, QUEUE_PER_CLIENT, client_address, fair_order, usable_cpus
from explorer.serving import free_port

from .conftest import SHIPPED
from .raw_http import Api, Server, file_ref, sketch, stroke_rgba

ANSWER_LIMIT_S = 2.0  # another visitor's request while one visitor floods the same endpoint
PROXY = "127.0.0.2"  # a loopback peer other than 127.0.0.1, which uvicorn itself trusts for X-Forwarded-For


# --------------------------------------------------------------------------- who a request counts for

@pytest.mark.parametrize("peer, forwarded, expected", [
    ("8.8.8.8", "9.9.9.9", "8.8.8.8"),  # a public peer is the visitor; its header is the client's own words
    ("10.0.0.7", "9.9.9.9", "9.9.9.9"),  # behind a private proxy: the address it saw
    ("10.0.0.7", "1.1.1.1, 2.2.2.2, 9.9.9.9", "9.9.9.9"),  # forged entries on the left are never read
    ("10.0.0.7", "9.9.9.9, 10.1.2.3, 172.16.0.9", "9.9.9.9"),  # proxies' private hops on the right are skipped
    ("127.0.0.2", "9.9.9.9:4711", "9.9.9.9"),
    ("10.0.0.7", "[2a00:1450:4001::1]:443", "2a00:1450:4001::1"),
    ("10.0.0.7", "2a00:1450:4001::1", "2a00:1450:4001::1"),
    ("10.0.0.7", "", "10.0.0.7"),
    ("10.0.0.7", None, "10.0.0.7"),
    ("10.0.0.7", "garbage", "10.0.0.7"),
    ("10.0.0.7", "9.9.9.9, garbage", "10.0.0.7"),  # the nearest entry is malformed: nobody to trust
    ("10.0.0.7", ",,,", "10.0.0.7"),
    ("10.0.0.7", "9.9.9.9," + "10.0.0.1," * 5000 + "10.0.0.2", "10.0.0.7"),  # no public hop within reach
    ("10.0.0.7", "x," * 5000 + "9.9.9.9", "9.9.9.9"),
    ("10.0.0.7", "10.0.0.1, 192.168.1.1", "10.0.0.7"),
    ("::1", "9.9.9.9", "9.9.9.9"),
    (None, "9.9.9.9", "unknown"),
    ("not-an-ip", "9.9.9.9", "unknown"),
])  # fmt: skip
def test_client_address(peer, forwarded, expected):
    assert client_address(peer, forwarded) == expected


@settings(max_examples=300, deadline=None)
@given(peer=st.one_of(st.none(), st.text(max_size=80), st.ip_addresses().map(str)),
       forwarded=st.one_of(st.none(), st.text(max_size=400),
                           st.lists(st.one_of(st.ip_addresses().map(str), st.text(max_size=20))).map(", ".join)))
def test_client_address_never_raises_and_never_takes_the_leftmost_forged_entry(peer, forwarded):
    who = client_address(peer, forwarded)
    assert isinstance(who, str) and 0 < len(who) <= 64
    forged = client_address(peer, "203.0.113.250, 8.8.4.4" if forwarded is None else f"8.8.4.4, {forwarded}")
    assert forged == who or (forged == "8.8.4.4" and who == client_address(peer, None))


def test_fair_order_serves_visitors_round_robin():
    events = ["a1", "a2", "a3", "b1", "a4", "c1", "b2"]
    fair_order(events, lambda ev: ev[0])
    assert events == ["a1", "b1", "c1", "a2", "b2", "a3", "a4"]
    fair_order(events, lambda ev: ev[0])  # already fair: unchanged
    assert events == ["a1", "b1", "c1", "a2", "b2", "a3", "a4"]


# --------------------------------------------------------------------------- CPUs from the container

def _cgroup(tmp_path, cpu_max: dict[str, str], proc: str):
    for rel, text in cpu_max.items():
        (tmp_path / rel).mkdir(parents=True, exist_ok=True)
        (tmp_path / rel / "cpu.max").write_text(text)
    (tmp_path / "proc").write_text(proc)
    return usable_cpus(tmp_path, tmp_path / "proc")


def test_usable_cpus_reads_the_cgroup_quota(tmp_path):
    import os

    affinity = len(os.sched_getaffinity(0))
    assert _cgroup(tmp_path / "a", {".": "max 100000"}, "0::/\n") == affinity
    assert _cgroup(tmp_path / "b", {".": "100000 100000"}, "0::/\n") == 1
    assert _cgroup(tmp_path / "c", {".": "50000 100000"}, "0::/\n") == 1  # half a CPU: still one thread
    # nested: the tightest quota on the path wins; a missing or unreadable file is no limit
    assert _cgroup(tmp_path / "d", {"space": "100000 100000", "space/app": "max 100000"}, "0::/space/app\n") == 1
    assert _cgroup(tmp_path / "e", {".": "garbage"}, "0::/\n") == affinity
    assert usable_cpus(tmp_path / "none", tmp_path / "no-such-file") == affinity
    v1 = tmp_path / "v1" / "cpu,cpuacct" / "docker" / "x"
    v1.mkdir(parents=True)
    (v1 / "cpu.cfs_quota_us").write_text("100000\n")
    (v1 / "cpu.cfs_period_us").write_text("100000\n")
    (tmp_path / "v1proc").write_text("2:cpuacct:/docker/x\n1:cpu,cpuacct:/docker/x\n0::/\n")
    assert usable_cpus(tmp_path / "v1", tmp_path / "v1proc") == 1
    assert usable_cpus() <= affinity


# --------------------------------------------------------------------------- a launched server

needs_checkpoint = pytest.mark.skipif(not SHIPPED.exists(), reason="needs the shipped checkpoint")
FLOOD_CONNECTIONS, FLOOD_POSTS = 8, 320


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("fair"), free_port())
    yield s
    s.stop()


@pytest.fixture(scope="module")
def uploaded_digits(server):
    api = Api(server.url)
    return {"slow": api.upload(stroke_rgba(2000)), "canvas": api.upload(stroke_rgba(336))}


def flood(api: Api, name: str, data: list, posts: int = FLOOD_POSTS) -> tuple[list, float]:
    """`posts` calls from FLOOD_CONNECTIONS connections, never reading an answer: (responses, seconds)."""
    t0 = time.perf_counter()
    with ThreadPoolExecutor(FLOOD_CONNECTIONS) as ex:
        responses = list(ex.map(lambda _: api.post(name, data), range(posts)))
    return responses, time.perf_counter() - t0


def timed_call(api: Api, name: str, data: list) -> tuple[float, str, object]:
    t0 = time.perf_counter()
    event, out = api.call(name, data)
    return time.perf_counter() - t0, event, out


@needs_checkpoint
@pytest.mark.parametrize("behind_proxy", [False, True], ids=["direct", "behind-proxy"])
def test_a_visitor_flooding_predict_leaves_another_answered(server, uploaded_digits, behind_proxy):
    """8 connections post /predict hundreds of times; another visitor's single /predict is answered within
    ANSWER_LIMIT_S while the flood waits; the flooder gets the one-sentence refusal. Behind the proxy both come
    from one peer address and differ only in the address the proxy appended to X-Forwarded-For; the flooder
    forges entries on the left."""
    if behind_proxy:
        flooder = Api(server.url, local_address=PROXY, headers={"X-Forwarded-For": "6.6.6.6, 8.8.8.8"})
        visitor = Api(server.url, local_address=PROXY, headers={"X-Forwarded-For": "9.9.9.9"})
        forger = Api(server.url, local_address=PROXY, headers={"X-Forwarded-For": "9.9.9.9, 8.8.8.8"})
    else:
        flooder, forger = Api(server.url, local_address="127.0.0.3"), Api(server.url, local_address="127.0.0.3")
        visitor = Api(server.url, local_address="127.0.0.4")
    slow, canvas = [file_ref(uploaded_digits["slow"])], [file_ref(uploaded_digits["canvas"])]
    with ThreadPoolExecutor(1) as ex:
        flooding = ex.submit(flood, flooder, "predict", slow)
        time.sleep(0.5)  # the flood is under way
        elapsed, event, out = timed_call(visitor, "predict", canvas)
        responses, seconds = flooding.result()
    # forged left entries do not make the flooder someone else: its cap still holds (the queue drains about one
    # event in 0.1 s, so some of 10 posts at once find it full; as someone else none would be refused)
    forged = [forger.post("predict", canvas) for _ in range(10)]
    accepted = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code != 200]
    print(f"\n{'proxy' if behind_proxy else 'direct'}: other visitor answered in {elapsed:.2f} s; flood: "
          f"{len(accepted)} accepted, {len(refused)} refused, posted in {seconds:.1f} s")
    assert event == "complete" and out[0]["digit"] == 1, out
    assert elapsed <= ANSWER_LIMIT_S
    assert refused and QUEUE_PER_CLIENT <= len(accepted) < FLOOD_POSTS
    sentence = BUSY.format(what="this client's earlier requests")
    assert all(r.status_code == 503 and r.json()["error"] == sentence for r in refused)
    assert any(r.status_code == 503 and r.json()["error"] == sentence for r in forged), [r.status_code for r in forged]
    accepted += [r for r in forged if r.status_code == 200]
    if behind_proxy:  # the other visitor behind the same proxy still has its own allowance
        assert visitor.post("predict", canvas).status_code == 200
    drain(flooder, "predict", accepted)


def drain(api: Api, name: str, accepted: list) -> None:
    """Read the flood's answers, so the next test starts on an idle server."""
    for r in accepted:
        assert api.result(name, r.json()["event_id"])[0] == "complete"


@needs_checkpoint
@pytest.mark.parametrize("forwarded", ["garbage", "", ",,,", "1.1.1.1," * 1000, "[::1", "2a00:1450:4001::1",
                                       "9.9.9.9, " + "x" * 4000, "\u00e9\u00e9"])  # fmt: skip
def test_malformed_forwarded_for_is_still_served(server, uploaded_digits, forwarded):
    api = Api(server.url, local_address=PROXY, headers={"X-Forwarded-For": forwarded.encode("utf-8")})
    event, out = api.call("predict", [file_ref(uploaded_digits["canvas"])])
    assert event == "complete" and out[0]["digit"] == 1, out


HEAVY = {  # the heavy events a page or an API client can flood (a first-in-first-out queue of 64 of them: 3 s or more)
    "analyse_sketch": lambda ref: [sketch(stroke_rgba(336))],  # the drawing canvas's data URL (no upload)
    "routing": lambda ref: [file_ref(ref), None, False],
    "transform_response": lambda ref: [file_ref(ref), "rotation", None],
}


@pytest.mark.slow
@needs_checkpoint
@pytest.mark.parametrize("name", sorted(HEAVY))
@pytest.mark.parametrize("behind_proxy", [False, True], ids=["direct", "behind-proxy"])
def test_a_visitor_flooding_a_heavy_event_leaves_another_answered(server, uploaded_digits, name, behind_proxy):
    headers = (lambda ip: {"X-Forwarded-For": ip}) if behind_proxy else (lambda ip: None)
    flooder = Api(server.url, local_address=PROXY if behind_proxy else "127.0.0.5", headers=headers("8.8.8.8"))
    visitor = Api(server.url, local_address=PROXY if behind_proxy else "127.0.0.6", headers=headers("9.9.9.9"))
    with ThreadPoolExecutor(1) as ex:
        flooding = ex.submit(flood, flooder, name, HEAVY[name](uploaded_digits["canvas"]), 120)
        time.sleep(0.5)
        elapsed, event, out = timed_call(visitor, name, HEAVY[name](uploaded_digits["canvas"]))
        responses, _ = flooding.result()
    accepted = [r for r in responses if r.status_code == 200]
    print(f"\n{name} {'proxy' if behind_proxy else 'direct'}: other visitor answered in {elapsed:.2f} s; "
          f"flood: {len(accepted)} accepted of {len(responses)}")
    assert event == "complete", out
    assert elapsed <= ANSWER_LIMIT_S
    drain(flooder, name, accepted)
