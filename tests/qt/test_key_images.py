"""Key images in the window (pytest-qt, offscreen): mark and unmark with K, the list, going to one, persistence
per study in the app's data folder, PNG and DICOM export; and PNG exports without the patient's name and ID."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pydicom
import pytest
from PySide6.QtGui import QImage

from ich_viewer.core.windowing import apply_window
from tests.qt.conftest import shown_window
from tests.qt.test_viewer import open_and_wait


@pytest.fixture
def win(qtbot):
    w = shown_window(qtbot, (1280, 720))
    w.key_images.quiet = True
    yield w
    w.jobs.shutdown(5000)


def _image(pixmap) -> np.ndarray:
    img = pixmap.toImage().convertToFormat(QImage.Format.Format_RGB888)
    arr = np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine())
    return arr[:, : img.width() * 3].copy()


class TestKeyImages:
    def test_mark_list_unmark_and_the_corner_says_key(self, qtbot, win, ct_study):
        folder, _ = ct_study(n_slices=6)
        open_and_wait(qtbot, win, folder)
        win.study.set_index(3)
        assert "KEY" not in win.slice_view.overlay_texts()["tr"]
        win.acts["key_image"].trigger()
        assert win.key_dock.isVisible()
        assert win.key_images.is_marked()
        assert "Im 4/6  KEY" in win.slice_view.overlay_texts()["tr"]
        assert win.acts["key_image"].text() == "Unmark &Key Image"
        win.study.set_index(1)
        assert "KEY" not in win.slice_view.overlay_texts()["tr"]
        win.study.set_window(75, 215, "Subdural")
        win.acts["key_image"].trigger()
        rows = win.key_images.panel.row_texts()
        assert [r[0] for r in rows] == ["2", "4"]
        assert rows[0][2] == "Subdural" and rows[1][2] == "Brain"
        win.key_images.panel.select_row(1)  # go to image 4
        qtbot.waitUntil(lambda: win.study.index == 3, timeout=5000)
        win.acts["key_image"].trigger()  # unmark it
        assert [r[0] for r in win.key_images.panel.row_texts()] == ["2"]
        assert "KEY" not in win.slice_view.overlay_texts()["tr"]

    def test_key_images_persist_per_study_outside_the_study_folder(
        self, qtbot, win, ct_study, isolated_settings
    ):
        folder, _ = ct_study(n_slices=5)
        open_and_wait(qtbot, win, folder)
        win.study.set_index(2)
        win.key_images.toggle_current()
        sop = win.study.info.slices[2].sop_uid
        win.key_images.set_note(win.key_images.keys()[0].slice_id, "thickest")
        saved = list((isolated_settings.parent / "appdata" / "key-images").glob("*.json"))
        assert len(saved) == 1
        assert json.loads(saved[0].read_text())["key_images"][0]["sop_uid"] == sop
        assert not any(p.suffix == ".json" for p in folder.rglob("*"))
        second = shown_window(qtbot, (1280, 720))
        open_and_wait(qtbot, second, folder)
        (k,) = second.key_images.keys()
        assert (k.index, k.sop_uid, k.note) == (2, sop, "thickest")
        second.study.set_index(2)
        assert "KEY" in second.slice_view.overlay_texts()["tr"]
        assert second.key_dock.isVisible()  # a study with key images shows the list
        second.jobs.shutdown(5000)

    def test_png_export_is_each_slice_in_its_marked_window(self, qtbot, win, ct_study, tmp_path):
        folder, _ = ct_study(n_slices=5)
        open_and_wait(qtbot, win, folder)
        win.study.set_index(0)
        win.key_images.toggle_current()
        win.study.set_index(4)
        win.study.set_window(600, 2800, "Bone")
        win.key_images.toggle_current()
        files = win.key_images.export_png(tmp_path / "out")
        assert [p.name for p in files] == ["HEAD_5mm-se2-im001.png", "HEAD_5mm-se2-im005.png"]
        first = cv2.imread(str(files[0]), cv2.IMREAD_UNCHANGED)
        last = cv2.imread(str(files[1]), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(first, apply_window(win.study.series.hu[0], 40, 80))
        np.testing.assert_array_equal(last, apply_window(win.study.series.hu[4], 600, 2800))
        # never into the study folder
        with pytest.raises(Exception, match="outside the study"):
            win.key_images.export_png(folder / "keys")
        assert not (folder / "keys").exists()

    def test_dicom_export_is_a_kos_of_the_marked_slices(self, qtbot, win, ct_study, tmp_path):
        folder, _ = ct_study(n_slices=4)
        open_and_wait(qtbot, win, folder)
        assert not win.acts["export_key_dicom"].isEnabled()
        for i in (1, 3):
            win.study.set_index(i)
            win.key_images.toggle_current()
        assert win.acts["export_key_dicom"].isEnabled()
        path = win.key_images.export_dicom(tmp_path / "kos")
        ds = pydicom.dcmread(path)
        assert ds.Modality == "KO" and ds.StudyInstanceUID == win.study.info.study_uid
        refs = {
            str(item.ReferencedSOPSequence[0].ReferencedSOPInstanceUID)
            for item in ds.ContentSequence
            if item.ValueType == "IMAGE"
        }
        assert refs == {win.study.info.slices[1].sop_uid, win.study.info.slices[3].sop_uid}

    def test_going_to_a_key_image_of_another_series_loads_it(self, qtbot, win, two_series_study):
        folder, _, _ = two_series_study
        open_and_wait(qtbot, win, folder)
        first = win.study.info.series_uid
        other = next(s for s in win.study.scan.series if s.series_uid != first)
        with qtbot.waitSignal(win.series_loaded, timeout=60_000):
            win.study.load_series(other.series_uid)
        win.study.set_index(2)
        win.key_images.toggle_current()
        with qtbot.waitSignal(win.series_loaded, timeout=60_000):
            win.study.load_series(first)
        assert [r[1] for r in win.key_images.panel.row_texts()] == ["Se 3"]
        with qtbot.waitSignal(win.series_loaded, timeout=60_000):
            win.key_images.panel.select_row(0)
        qtbot.waitUntil(lambda: win.study.index == 2, timeout=5000)
        assert win.study.info.series_uid == other.series_uid


class TestExportWithoutIdentity:
    @pytest.mark.parametrize("layout", ["axial", "mpr"])
    def test_exported_png_does_not_depend_on_the_patients_name_and_id(
        self, qtbot, win, ct_study, tmp_path, layout
    ):
        """Two studies equal but for the patient's name and ID export to identical PNGs by default, and to
        different ones when the user turns the preference off; the screen keeps showing the name."""
        jane, _ = ct_study(n_slices=4, name="jane", patient_name="DOE^JANE", patient_id="TEST-0001")
        richard, _ = ct_study(n_slices=4, name="rich", patient_name="ROE^RICHARD", patient_id="OTHER-9876")
        win.viewer.set_layout(layout)
        exports = {}
        for name, folder in (("jane", jane), ("richard", richard)):
            open_and_wait(qtbot, win, folder)
            qtbot.waitUntil(win.is_ready, timeout=10_000)
            assert win.acts["export_hide_identity"].isChecked()  # on by default
            out = tmp_path / f"{name}.png"
            assert win.export_png(out)
            exports[name] = cv2.imread(str(out))
            assert "ID OTHER-9876" in win.slice_view.overlay_texts()["tl"] or name == "jane"
            win.acts["export_hide_identity"].setChecked(False)
            exports[name + "-shown"] = _image(win.grab_view())
            win.acts["export_hide_identity"].setChecked(True)
        np.testing.assert_array_equal(exports["jane"], exports["richard"])
        assert not np.array_equal(exports["jane-shown"], exports["richard-shown"])
        assert win.prefs.export_hide_identity

    def test_the_preference_is_saved(self, qtbot, win):
        win.acts["export_hide_identity"].setChecked(False)
        second = shown_window(qtbot)
        assert not second.prefs.export_hide_identity
        assert not second.acts["export_hide_identity"].isChecked()
        second.jobs.shutdown(5000)
