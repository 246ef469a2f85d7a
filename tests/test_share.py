"""Share links' input (explorer/inputs/share.py): any 28x28 input round-trips in under 2,000 characters, and
damaged or hostile ones are refused in one sentence before anything large is decompressed."""
import base64
import zlib

import numpy as np
import pytest

from explorer.inputs.share import MAX_LINK, ShareError, decode_input, encode_input, share_query


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
