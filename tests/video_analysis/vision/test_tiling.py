"""Tiles: the grid a camera asks for, the tiles covering its frame, and one box per object after merging."""

import cv2
import numpy as np
import pytest

from configuration.settings import Settings
from video_analysis.vision.detections import Detections
from video_analysis.vision.frames import Frame
from video_analysis.vision.tiling import (
    TiledDetector,
    merge_boxes,
    parse_tiles,
    tile_boxes,
    tiles_fingerprint,
    tiles_for_camera,
)


def _boxes(*rows) -> Detections:
    """rows of (x1, y1, x2, y2, score, class)."""
    array = np.array(rows, np.float32).reshape(-1, 6)
    return Detections(array[:, :4], array[:, 4], array[:, 5].astype(np.int32), np.zeros(len(array), np.int32),
                      np.zeros(len(array)))


@pytest.mark.parametrize("text, grid", [("off", None), ("", None), (None, None), ("1x1", None), ("2x2", (2, 2)),
                                        (" 3 x 2 ", (3, 2)), ("4X1", (4, 1))])
def test_a_grid_is_read_from_its_text(text, grid):
    assert parse_tiles(text) == grid


@pytest.mark.parametrize("text", ["2", "5x5", "0x2", "two by two", "2x2x2"])
def test_a_grid_that_is_not_one_is_refused_saying_what_is_expected(text):
    with pytest.raises(ValueError, match="COLSxROWS"):
        parse_tiles(text)


def test_a_bad_default_grid_in_the_environment_is_refused_by_name(monkeypatch):
    monkeypatch.setenv("REELGRAPH_DETECTOR_TILES", "3 by 3")
    with pytest.raises(ValueError, match="REELGRAPH_DETECTOR_TILES"):
        Settings()


def test_tiles_cover_the_frame_and_overlap_their_neighbours():
    tiles = tile_boxes(1920, 1080, (3, 2))
    assert len(tiles) == 6
    assert tiles[:, 0].min() == 0 and tiles[:, 1].min() == 0
    assert tiles[:, 2].max() == 1920 and tiles[:, 3].max() == 1080
    first, second = tiles[0], tiles[1]  # neighbours in a row share a quarter of a tile's width
    assert second[0] < first[2] and (first[2] - second[0]) == pytest.approx(0.25 * (first[2] - first[0]), abs=1)
    top, bottom = tiles[0], tiles[3]
    assert bottom[1] < top[3]


def test_the_same_object_from_a_tile_and_the_whole_frame_is_one_box():
    found = _boxes((100, 100, 140, 200, 0.6, 1),   # whole frame, loose
                   (104, 98, 142, 196, 0.8, 1))    # the tile's box of the same person
    merged = merge_boxes(found, view=np.array([0, 1]), cut=np.array([False, False]))
    assert len(merged) == 1 and merged.confidence[0] == pytest.approx(0.8)


def test_a_piece_of_a_person_from_a_tile_goes_even_when_scored_higher():
    found = _boxes((100, 100, 200, 400, 0.7, 1),   # whole frame: the person
                   (110, 100, 190, 230, 0.9, 1))   # a tile: the upper body only, cut by the tile's lower edge
    merged = merge_boxes(found, view=np.array([0, 1]), cut=np.array([False, True]))
    assert merged.xyxy.tolist() == [[100, 100, 200, 400]]


@pytest.mark.parametrize("view", [0, 2])
def test_people_in_a_group_seen_in_one_view_all_stay(view):
    """The whole frame's boxes, or one tile's: the detector has already chosen among them."""
    found = _boxes((100, 100, 200, 400, 0.9, 1), (150, 120, 250, 410, 0.8, 1), (170, 110, 260, 380, 0.7, 1),
                   (180, 300, 220, 390, 0.6, 1))  # a child in front of them
    merged = merge_boxes(found, view=np.full(4, view), cut=np.zeros(4, bool))
    assert len(merged) == 4


def test_one_loose_tile_box_over_two_people_does_not_take_both_their_places():
    found = _boxes((100, 100, 160, 300, 0.7, 1), (150, 100, 210, 300, 0.7, 1),  # whole frame: two people
                   (105, 100, 205, 300, 0.9, 1))                                # a tile: one box over both
    merged = merge_boxes(found, view=np.array([0, 0, 1]), cut=np.zeros(3, bool))
    assert len(merged) == 2


def test_a_piece_is_dropped_only_when_the_box_it_belongs_to_stays():
    found = _boxes((110, 110, 140, 150, 0.9, 1),   # tile 1: a small person
                   (200, 100, 300, 200, 0.8, 1),   # the whole frame: somebody else
                   (100, 100, 280, 200, 0.7, 1))   # tile 2: a loose box over the first, the second's double
    merged = merge_boxes(found, view=np.array([1, 0, 2]), cut=np.zeros(3, bool))
    assert merged.xyxy.tolist() == [[110, 110, 140, 150], [200, 100, 300, 200]]


def test_a_bag_held_by_a_person_is_not_merged_into_them():
    found = _boxes((100, 100, 200, 400, 0.9, 1), (150, 250, 190, 320, 0.8, 27))  # person, backpack from a tile
    merged = merge_boxes(found, view=np.array([0, 1]), cut=np.zeros(2, bool))
    assert sorted(merged.class_id.tolist()) == [1, 27]


class _WhiteRectangles:
    """Stands for a detector: finds each white rectangle of a frame (class 1, score 0.9)."""

    class_names = {1: "person"}

    def __init__(self):
        self.calls = 0

    def detect(self, frames):
        self.calls += 1
        parts = []
        for frame in frames:
            count, _, stats, _ = cv2.connectedComponentsWithStats((frame.image[:, :, 0] > 200).astype(np.uint8))
            boxes = [(x, y, x + w, y + h) for x, y, w, h, _ in stats[1:count]]
            n = len(boxes)
            parts.append(Detections(np.array(boxes, np.float32).reshape(n, 4), np.full(n, 0.9, np.float32),
                                    np.ones(n, np.int32), np.full(n, frame.index, np.int32),
                                    np.full(n, frame.timestamp)))
        return Detections.concat(parts)


def test_a_batch_of_frames_comes_back_with_each_box_where_it_is_and_on_its_own_frame():
    painted = {10: [(100, 80, 130, 140)], 11: [(1700, 900, 1740, 980), (900, 500, 960, 560)], 12: []}
    frames = []
    for index, boxes in painted.items():
        image = np.zeros((1080, 1920, 3), np.uint8)
        for x1, y1, x2, y2 in boxes:
            image[y1:y2, x1:x2] = 255
        frames.append(Frame(index, index / 10, image))
    detector = _WhiteRectangles()
    found = TiledDetector(detector, (3, 2)).detect(frames)
    assert detector.calls == 1  # one batch: every frame whole and its 6 tiles
    for index, boxes in painted.items():
        mine = found[found.frame_index == index]
        assert sorted(mine.xyxy.astype(int).tolist()) == sorted(list(b) for b in boxes)
        assert np.all(mine.timestamp == index / 10)


def test_each_camera_takes_its_own_grid_from_the_zones_file(tmp_path):
    zones = tmp_path / "zones.yaml"
    zones.write_text("detector_tiles:\n  gate: 3x2\n  lobby: off\n  yard: null\n  '*': 2x2\n")
    assert tiles_for_camera("off", zones, "yard") == "2x2"  # null: as if not listed
    assert tiles_for_camera("off", zones, "gate") == "3x2"
    assert tiles_for_camera("2x2", zones, "lobby") == "off"
    assert tiles_for_camera("off", zones, "dock") == "2x2"  # "*": cameras not listed
    assert tiles_for_camera("off", zones, None) == "2x2"
    zones.write_text("detector_tiles:\n  gate: 3x2\n")
    assert tiles_for_camera("off", zones, "dock") == "off"
    assert tiles_for_camera("4x4", None, "gate") == "4x4"


def test_a_change_of_any_cameras_grid_changes_the_detections_version(tmp_path):
    zones = tmp_path / "zones.yaml"
    assert tiles_fingerprint("off", None) == tiles_fingerprint("off", zones) == ""  # tiles off: version as before
    zones.write_text("detector_tiles:\n  gate: off\n")
    assert tiles_fingerprint("off", zones) == ""
    zones.write_text("detector_tiles:\n  gate: 3x2\n")
    before = tiles_fingerprint("off", zones)
    assert tiles_fingerprint("off", zones) == before
    zones.write_text("detector_tiles:\n  gate: 2x2\n")
    assert tiles_fingerprint("off", zones) != before
    assert tiles_fingerprint("2x2", zones) != tiles_fingerprint("off", zones)


def test_a_bad_grid_in_the_zones_file_names_the_camera_where_it_is_used_and_the_code_still_loads(tmp_path):
    zones = tmp_path / "zones.yaml"
    zones.write_text("detector_tiles:\n  gate: 9x9\n")
    with pytest.raises(ValueError, match="gate"):
        tiles_for_camera("off", zones, "gate")
    assert tiles_fingerprint("off", zones) == "invalid"  # the definitions load; the detections step says why
    zones.write_text("detector_tiles: [gate]\n")
    assert tiles_fingerprint("off", zones) == "invalid"
