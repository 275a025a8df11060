"""The series panel groups series by patient and study and warns loudly when a folder mixes patients."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from ich_viewer.dicom.series import scan
from ich_viewer.qt.main_window import MainWindow
from ich_viewer.qt.panels.series_panel import SeriesPanel
from ich_viewer.qt.settings import make_settings
from tests.dicom import dicom_factory as fac


def write(folder, uid, n=2, **tags):
    stored = np.stack([fac.stored_pattern(16, 16, k, high=100) for k in range(n)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        fac.write_series(folder, stored, fac.axial_positions(n), series_uid=uid, **tags)


@pytest.fixture
def mixed(tmp_path):
    root = tmp_path / "mixed"
    write(root / "a1", "1.2.3.1", n=4, study_uid="1.2.9.1", description="HEAD A")
    write(root / "a2", "1.2.3.2", n=3, study_uid="1.2.9.2", StudyDate="20230101", description="PRIOR A")
    write(root / "b1", "1.2.3.3", study_uid="1.2.9.3", PatientID="OTHER-7", PatientName="Roe^Richard")
    return root


def test_mixed_patients_get_a_banner_and_red_patient_headers(qtbot, mixed):
    panel = SeriesPanel()
    qtbot.addWidget(panel)
    panel.show()
    panel.set_series(scan(mixed).series, "1.2.3.1")
    assert panel.banner.isVisible()
    assert "mixed patients: 2 different patients" in panel.banner.text()
    assert "ID TEST-001" in panel.banner.text() and "ID OTHER-7" in panel.banner.text()
    assert panel.headers() == [
        "Test, Patient  ·  ID TEST-001",
        "Study 2024-01-02  CT HEAD WO CONTRAST",
        "Study 2023-01-01  CT HEAD WO CONTRAST",
        "Roe, Richard  ·  ID OTHER-7",
        "Study 2024-01-02  CT HEAD WO CONTRAST",
    ]
    assert panel.series_uids() == ["1.2.3.1", "1.2.3.2", "1.2.3.3"]
    # header rows cannot be chosen
    chosen = []
    panel.series_chosen.connect(chosen.append)
    for i in range(panel.list.count()):
        panel._on_list_item_chosen(panel.list.item(i))
    assert chosen == ["1.2.3.1", "1.2.3.2", "1.2.3.3"]
    assert "ID OTHER-7" in panel._items["1.2.3.3"].toolTip()


def test_one_patient_one_study_has_no_headers_and_no_banner(qtbot, tmp_path):
    write(tmp_path / "a", "1.2.3.1", study_uid="1.2.9.1")
    write(tmp_path / "b", "1.2.3.2", study_uid="1.2.9.1")
    panel = SeriesPanel()
    qtbot.addWidget(panel)
    panel.show()
    panel.set_series(scan(tmp_path).series)
    assert not panel.banner.isVisible() and panel.headers() == [] and panel.list.count() == 2


def test_the_window_warns_when_a_mixed_folder_is_opened(qtbot, mixed, tmp_path, monkeypatch):
    monkeypatch.setenv("ICH_VIEWER_DATA_DIR", str(tmp_path / "appdata"))
    win = MainWindow(settings=make_settings())
    win.configure_ai(enabled=False)
    qtbot.addWidget(win)
    win.show()
    try:
        with qtbot.waitSignal(win.series_loaded, timeout=60_000):
            win.open_path(mixed)
        assert win.series_panel.banner.isVisible()
        assert win.series_panel.mixed_warning.startswith("mixed patients: 2 different patients")
    finally:
        win.jobs.shutdown(5000)
