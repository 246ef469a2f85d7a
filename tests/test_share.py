"""Share links (explorer/inputs/share.py, tabs/share.py): any 28x28 input round-trips in under 2,000 characters,
and damaged or hostile ones are refused in one sentence before anything large is decompressed; the open view's
settings round-trip too, and a hostile one is one sentence while the rest of the link applies."""
import base64
import zlib

import numpy as np
import pytest

from explorer.inputs.share import (MAX_LINK, Choice, Number, ShareError, Whole, Wholes, decode_input, decode_pose,
                                   decode_settings, encode_input, encode_settings, share_query, words)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@pytest.mark.parametrize("kind", ["digit", "noise", "full"])
def test_any_input_round_trips_in_a_short_link(kind):
    rng = np.random.default_rng(0)
    pixels = {"digit": np.pad(np.full((16, 4), 255, np.uint8), ((6, 6), (12, 12))),
              "noise": rng.integers(0, 256, (28, 28), dtype=np.uint8),
              "full": np.full((28, 28), 255, np.uint8)}[kind]  # fmt: skip
    query = share_query(pixels, 9, "model-card")
    assert len(query) < MAX_LINK and query.endswith("&k=9&tab=model-card")
    restored = decode_input(query.split("in=")[1].split("&")[0])
    assert restored.shape == (1, 28, 28) and restored.dtype == np.float32
    assert np.array_equal((restored[0] * 255).round().astype(np.uint8), pixels)


@pytest.mark.parametrize("text, why", [
    (None, "no input"), ("", "no input"), ("   ", "no input"), (7, "no input"),
    ("A" * 5000, "at most"), ("<script>", "not base64url"), ("abc def", "not base64url"), ("nan", "not a compressed"),
    (b64(b"not zlib at all"), "not a compressed"), (b64(zlib.compress(b"\x01")), "not 28x28"),
    (b64(zlib.compress(b"\xff" * 785)), "not 28x28"), (b64(zlib.compress(bytes(784))), "blank"),
])  # fmt: skip
def test_damaged_inputs_are_one_sentence(text, why):
    with pytest.raises(ShareError, match=why) as e:
        decode_input(text)
    assert str(e.value).count(". ") == 0 and str(e.value).endswith("instead.")


def test_a_zip_bomb_stops_after_785_bytes():
    bomb = b64(zlib.compress(bytes(50_000_000), 9))  # 50 MB of zeros in ~50 KB: over the length limit anyway
    assert len(bomb) > 1600
    small_bomb = b64(zlib.compress(b"\x80" * 10_000_000, 9))[:1600]  # cut to the limit: still refused, quickly
    for text in (bomb, small_bomb):
        with pytest.raises(ShareError):
            decode_input(text)
    assert encode_input(np.zeros((28, 28), np.uint8))  # a blank input encodes; decoding it says blank


# --------------------------------------------------------------------------- the pose in a link


def test_a_pose_round_trips_with_3_decimals_in_a_short_link():
    """The noisiest input with a 16-value pose of 3 decimals each is still a short link."""
    pose = [0.37, -0.1234, 0.0, 1.0, -1.0, -0.0004] + [-0.999] * 10
    noise = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    query = share_query(noise, 9, "pose", pose)
    assert len(query) < MAX_LINK and "&k=9&p=0.37,-0.123,0,1,-1,0,-0.999," in query
    assert query.endswith("&tab=pose")
    assert decode_pose(query.split("p=")[1].split("&")[0]) == (0.37, -0.123, 0.0, 1.0, -1.0, 0.0) + (-0.999,) * 10


@pytest.mark.parametrize("text, why", [
    (None, "not 16 numbers"), ("", "not 16 numbers"), ("0," * 15 + "0,0", "not 16 numbers"),
    (",".join(["0"] * 15), "not 16 numbers"), (",".join(["x"] * 16), "not 16 numbers"),
    (",".join(["nan"] * 16), "outside"), (",".join(["inf"] * 16), "outside"), (",".join(["1e9"] * 16), "outside"),
    (",".join(["1.5"] + ["0"] * 15), "outside"), ("0," * 5000, "not 16 numbers"), (16, "not 16 numbers"),
])  # fmt: skip
def test_damaged_poses_are_one_sentence(text, why):
    with pytest.raises(ShareError) as e:
        decode_pose(text)
    assert why in str(e.value) and str(e.value).startswith("That share link is damaged")


def test_the_share_input_carries_the_capsule_and_pose():
    """What static/links.js writes into the hidden share input, read back as the analysis's starting pose."""
    from explorer.tabs.share import restore
    from explorer.session import IGNORE, Labelled

    pixels = np.pad(np.full((16, 4), 255, np.uint8), ((6, 6), (12, 12)))
    query = share_query(pixels, 5, "pose", [0.25] * 16)
    restored = restore(query.lstrip("?"))
    assert isinstance(restored, Labelled) and restored.pose_edit == (5, (0.25,) * 16)
    assert restore(query.split("in=")[1].split("&")[0]).pose_edit is None  # the bare input: no pose
    assert restore(query.lstrip("?").replace("k=5", "k=x")).pose_edit == (None, (0.25,) * 16)  # the prediction's
    assert restore(query.lstrip("?").replace("p=0.25", "p=NaN")) is IGNORE
    assert restore("in=" + "&in=".join(["A"] * 5000)) is IGNORE  # many fields: refused, not parsed at length


# --------------------------------------------------------------------------- the open view's settings in a link

ITERATION, EPS = Whole("routing iteration", 1, 3), Number("ε", 0.01, 0.3)
SPAN, COMPARE = Choice("step size", {"paper": "the paper's ±0.25", "data": "±2σ"}), Wholes("comparison", (1, 2, 3, 5, 10))


@pytest.mark.parametrize("codec, value, text", [
    (ITERATION, 2, "2"), (ITERATION, 2.0, "2"), (EPS, 0.12, "0.12"), (EPS, 0.3, "0.3"), (SPAN, "±2σ", "data"),
    (COMPARE, [10, 1, 5], "1,5,10"), (Choice("sort", words(("dimension", "effect size"))), "effect size", "effect-size"),
])  # fmt: skip
def test_settings_round_trip(codec, value, text):
    assert codec.encode(value) == text
    assert codec.decode(text) == (sorted(value) if isinstance(value, list) else value)


@pytest.mark.parametrize("codec, value", [
    (ITERATION, None), (ITERATION, 4), (ITERATION, 1.5), (ITERATION, float("nan")), (ITERATION, "x"), (EPS, 0.0),
    (EPS, float("inf")), (SPAN, "other"), (SPAN, None), (COMPARE, []), (COMPARE, [4]), (COMPARE, [1, None]),
    (COMPARE, "1,2"),
])  # fmt: skip
def test_a_setting_without_a_valid_value_stays_out_of_links(codec, value):
    assert codec.encode(value) is None


HOSTILE_SETTINGS = {
    "it": ["", "0", "4", "2.0", "-1", "NaN", "inf", "1e9", "1_0", "٣", " 2", "9" * 5000, "<script>"],
    "eps": ["", "0", "0.31", "nan", "-0.1", "1e-2", "0x1", ".1", "0." + "1" * 50],
    "span": ["", "Data", "paper,data", "the paper's ±0.25", "__class__", "x" * 5000],
    "compare": ["", "1,,2", "1,1", "4", "1, 2", "1,2,3,5,10,1", ",".join(["1"] * 3000)],
}


@pytest.mark.parametrize("name, text", [(n, t) for n, texts in HOSTILE_SETTINGS.items() for t in texts])
def test_hostile_settings_are_one_sentence_and_keep_the_default(name, text):
    codecs = {"it": ITERATION, "eps": EPS, "span": SPAN, "compare": COMPARE}
    values, refusal = decode_settings({name: [text], "span": ["data"]} if name != "span" else {name: [text]}, codecs)
    assert name not in values and (name == "span" or values == {"span": "±2σ"})  # the valid part still applies
    assert refusal.startswith("That share link's ") and refusal.endswith("showing the default instead.")
    assert refusal.count(". ") == 0 and len(refusal) < 200 and codecs[name].what in refusal


def test_repeated_and_several_bad_settings_are_one_sentence():
    values, refusal = decode_settings({"it": ["2", "3"], "eps": ["9"], "span": ["data"]},
                                      {"it": ITERATION, "eps": EPS, "span": SPAN})  # fmt: skip
    assert values == {"span": "±2σ"}
    assert refusal == ("That share link's routing iteration is given 2 times, and its ε is not a number from 0.01 "
                       "to 0.3; showing the defaults instead.")  # fmt: skip
    assert decode_settings({"in": ["x"], "k": ["1"], "other": ["9"]}, {"it": ITERATION}) == ({}, None)


def test_a_link_carries_only_settings_that_differ_from_a_fresh_page():
    shared = encode_settings([("it", ITERATION, 2, 3), ("eps", EPS, 0.1, 0.1), ("span", SPAN, "junk", "±2σ"),
                              ("compare", COMPARE, [3, 1], [1, 2, 3, 5])])  # fmt: skip
    assert shared == [("it", "2"), ("compare", "1,3")]
    noise = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    query = share_query(noise, 9, "routing", [0.999] * 16, shared)
    assert query.endswith("&tab=routing&it=2&compare=1,3") and len(query) < MAX_LINK


@pytest.fixture(scope="module")
def page_ui():
    """The ExplorerUI of the page as served (every default tab), for the controls the tabs share."""
    from explorer.app import build_demo, explorer_ui

    return explorer_ui(build_demo(load_example=False))


def test_every_view_declares_settings_its_controls_hold(page_ui):
    """Each shared setting's codec accepts its control's value on a fresh page and reads back the same value; a
    link names each of a view's settings once, apart from its own fields."""
    from explorer.inputs.share import LINK_FIELDS, MAX_SETTINGS

    ui = page_ui
    assert {ui.view_tabs[s.group].id for s in ui.settings} >= {"routing", "perturbations", "atlas", "transforms", "attack"}
    for s in ui.settings:
        text = s.codec.encode(s.component.value)
        assert text is None or s.codec.decode(text) == s.component.value, s
    for g in {s.group for s in ui.settings}:
        names = [s.name for s in ui.settings if s.group == g]
        assert len(names) == len(set(names)) <= MAX_SETTINGS and not set(names) & set(LINK_FIELDS)


def test_the_share_input_sets_only_its_views_settings(page_ui):
    """What the share input's change event returns: the link's view's settings, gr.skip() for every other control,
    one warning sentence for a bad one (the valid ones still set), and nothing for a damaged link."""
    from explorer.tabs.share import link_settings

    ui = page_ui
    views = [tab.id for tab in ui.view_tabs]
    text = "in=x&tab=routing&it=2&type=31&row=9&span=data"
    with pytest.warns(UserWarning, match=r"^That share link's capsule row is not a whole number from 0 to 5;"):
        out = link_settings(text, views, ui.settings)
    assert out[0] == text
    given = {s.name: v for s, v in zip(ui.settings, out[1:]) if not (isinstance(v, dict) and v.get("__type__"))}
    assert given == {"it": 2, "type": 31}  # row 9 refused, `span` is not the Routing tab's
    for damaged in ("in=x&" + "&".join(["it=1"] * 50), "tab=nowhere&it=1", None, "no fields"):
        assert all(isinstance(v, dict) for v in link_settings(damaged, views, ui.settings)[1:])
    no_ids = [None] * len(views)  # a link without `tab` names no view, even where a tab has no id
    assert all(isinstance(v, dict) for v in link_settings("in=x&it=2", no_ids, ui.settings)[1:])
