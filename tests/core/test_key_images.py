"""Key images without Qt: marking, the per-study file, unreadable files kept aside, and rendering through the
marked window with square pixels."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ich_viewer.core.key_images import FORMAT, KeyImage, KeyImageStore, key_image_file_stem, render_key_image
from ich_viewer.core.windowing import apply_window


def _key(index: int, series: str = "1.2.3", **kw) -> KeyImage:
    return KeyImage(series, f"1.2.3.{index}", index, **kw)


def test_toggle_marks_and_unmarks_and_the_file_follows(tmp_path):
    store = KeyImageStore(tmp_path, "1.2.840.1")
    assert store.toggle(_key(7, center=50, width=100, window_name="Subdural")) is True
    assert store.toggle(_key(2)) is True
    assert [k.index for k in store] == [2, 7]
    assert store.is_marked("1.2.3", "1.2.3.7", 7)
    data = json.loads(store.path.read_text())
    assert data["format"] == FORMAT and data["study_uid"] == "1.2.840.1"
    assert {d["index"] for d in data["key_images"]} == {2, 7}
    assert store.toggle(_key(7)) is False
    assert not store.is_marked("1.2.3", "1.2.3.7", 7)
    again = KeyImageStore(tmp_path, "1.2.840.1")
    assert [k.slice_id for k in again] == [("1.2.3", "1.2.3.2", 2)]


def test_reload_keeps_window_and_note_and_marking_twice_keeps_the_first(tmp_path):
    store = KeyImageStore(tmp_path, "1.2.840.1")
    store.mark(_key(4, center=75, width=215, window_name="Subdural"))
    store.mark(_key(4, center=0, width=10))  # already marked: kept as first marked
    store.set_note("1.2.3", "1.2.3.4", 4, "left SDH, thickest")
    (k,) = KeyImageStore(tmp_path, "1.2.840.1").items()
    assert (k.center, k.width, k.window_name, k.note) == (75, 215, "Subdural", "left SDH, thickest")
    with pytest.raises(KeyError):
        store.set_note("1.2.3", "1.2.3.9", 9, "x")


def test_items_are_grouped_by_series_then_slice(tmp_path):
    store = KeyImageStore(tmp_path, "s", autosave=False)
    for key in (_key(5, "B"), _key(9, "A"), _key(1, "B"), _key(3, "A")):
        store.mark(key)
    assert [(k.series_uid, k.index) for k in store] == [("B", 1), ("B", 5), ("A", 3), ("A", 9)]
    assert [k.index for k in store.items("A")] == [3, 9]
    assert not store.path.exists()  # autosave off


def test_an_unreadable_file_is_reported_and_set_aside_not_overwritten(tmp_path):
    store = KeyImageStore(tmp_path, "1.2.840.1")
    store.path.write_text("{ not json")
    broken = KeyImageStore(tmp_path, "1.2.840.1")
    assert "could not read the saved key images" in broken.load_error
    assert len(broken) == 0
    broken.mark(_key(1))
    assert (tmp_path / (store.path.name + ".unreadable")).read_text() == "{ not json"
    assert len(KeyImageStore(tmp_path, "1.2.840.1")) == 1


def test_bad_windows_and_indices_are_refused():
    with pytest.raises(ValueError):
        _key(1, width=0)
    with pytest.raises(ValueError):
        _key(1, center=float("nan"))
    with pytest.raises(ValueError):
        KeyImage("s", "u", -1)


def test_render_uses_the_marked_window_and_makes_pixels_square():
    hu = np.linspace(-100, 200, 64 * 32, dtype=np.float32).reshape(64, 32)
    key = _key(0, center=40, width=80)
    out = render_key_image(hu, key, (0.5, 0.5))
    np.testing.assert_array_equal(out, apply_window(hu, 40, 80))
    # columns twice as wide as rows are tall: the image gets twice the columns
    wide = render_key_image(hu, key, (0.5, 1.0))
    assert wide.shape == (64, 64) and wide.dtype == np.uint8
    np.testing.assert_allclose(wide[:, ::2].astype(int), apply_window(hu, 40, 80).astype(int), atol=16)


def test_file_stem_counts_from_one():
    assert key_image_file_stem(_key(11), 3) == "se3-im012"
    assert key_image_file_stem(_key(0), None) == "se-im001"
