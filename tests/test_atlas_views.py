"""The Atlas tab's views and the Pose tab's data ranges, as plain functions of the model card and the stored maps."""
import re

import numpy as np
import pytest

from capsnet.atlas import load_maps, load_poses
from capsnet.checkpoint import load_model_card
from explorer.views import atlas as av
from explorer.views import pose as pv

from .conftest import SHIPPED


@pytest.fixture(scope="module")
def shipped():
    card, maps = load_model_card(SHIPPED), load_maps(SHIPPED)
    if card is None or maps is None or pv.dimension_labels(card) is None:
        pytest.skip("no shipped checkpoint with an atlas")
    return card, maps


def _dims(html: str) -> list[int]:
    return [int(d) for d in re.findall(r'data-pose-dim="(\d+)"', html)]


def test_cards_sort_and_filter_by_effect(shipped):
    card, maps = shipped
    rows = card["dimension_labels"][5]
    assert _dims(av.cards_html(card, maps, 5)) == list(range(16))
    by_size = _dims(av.cards_html(card, maps, 5, av.SORTS[1]))
    assert sorted(by_size) == list(range(16))
    assert [abs(rows[d]["z"]) for d in by_size] == sorted((abs(r["z"]) for r in rows), reverse=True)
    flagged = _dims(av.cards_html(card, maps, 5, av.SORTS[0], av.DISAGREES))
    assert flagged == [d for d in range(16) if rows[d]["disagrees"]]
    local = _dims(av.cards_html(card, maps, 5, av.SORTS[0], "local"))
    assert local == [d for d in range(16) if rows[d]["effect"] == "local"]
    assert set(av.effect_choices(card)) >= {av.ALL, av.DISAGREES, "local", "shift x"}
    html = av.cards_html(card, maps, 5, av.SORTS[0], "rotation")  # no class-5 label names it
    assert "rotation" not in {r["effect"] for r in rows} and "No dimension of digit capsule 5" in html


def test_cards_escape_labels_and_say_when_there_is_no_atlas(shipped):
    card, maps = shipped
    hostile = {**card, "dimension_labels": [[{**r, "label": "<img src=x onerror=alert(1)>"} for r in rows]
                                            for rows in card["dimension_labels"]]}  # fmt: skip
    assert "<img src=x" not in av.cards_html(hostile, maps, 3)
    for missing in ((None, maps), (card, None), ({}, maps)):
        assert "python -m capsnet.atlas" in av.cards_html(*missing, 3)


def test_maps_are_red_for_more_ink_and_blue_for_less():
    m = np.zeros((28, 28), np.float32)
    m[0, 0], m[0, 1] = 1.0, -1.0
    rgb = av.map_rgb(m, 1.0, zoom=3)
    assert rgb.shape == (84, 84, 3) and rgb.dtype == np.uint8
    assert rgb[0, 0, 0] > rgb[0, 0, 2] and rgb[0, 3, 2] > rgb[0, 3, 0] and (rgb[40, 40] > 240).all()


def test_overview_has_every_class_and_dimension(shipped):
    _, maps = shipped
    img = av.overview_image(maps, zoom=2)
    assert img.shape == (10 * 58 - 2, 16 * 58 - 2, 3) and av.overview_image(None) is None


def test_data_bounds_keep_the_inputs_own_value_reachable(shipped):
    card, _ = shipped
    q = pv.percentiles(card)
    assert np.array(q).shape == (10, 16, 7) and all(row == sorted(row) for rows in q for row in rows)
    inside = [q[4][d][3] for d in range(16)]  # each dimension's median
    assert pv.data_bounds(card, 4, inside) == [(round(q[4][d][0], 3), round(q[4][d][-1], 3)) for d in range(16)]
    outside = [0.9] * 16
    assert all(hi == 0.9 for _, hi in pv.data_bounds(card, 4, outside))
    assert pv.data_bounds(None, 4, inside) == [(-1.0, 1.0)] * 16


def test_the_atlas_poses_are_the_statistics_source(shipped):
    card, _ = shipped
    poses = load_poses(SHIPPED)
    assert poses.shape == (10, 100, 16)
    p50 = np.median(poses.numpy(), axis=1)
    assert np.allclose(p50, [[r["pose"]["p50"] for r in rows] for rows in card["dimension_labels"]], atol=1e-3)
