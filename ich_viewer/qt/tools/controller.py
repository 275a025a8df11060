"""The reading tools of the image panes: the measurement tools (Tools menu) on the axial view and on the coronal
and sagittal panes of the MPR layouts, their list, undo/redo and persistence, and the DICOM tag browser.

- The measurements of a study live in a :class:`~ich_viewer.core.measurements.MeasurementStore` in the app's
  data folder (``QStandardPaths.AppDataLocation``/measurements, or ``$ICH_VIEWER_DATA_DIR``/measurements),
  keyed by Study Instance UID, never in the study folder; they come back when the study is opened again.
- A measurement belongs to one image, its :class:`~ich_viewer.core.measurements.SliceKey`: an acquired slice
  (series, SOP Instance UID, display index) or a reformatted plane (series, ``"coronal"``/``"sagittal"``, plane
  index of the MPR grid), and is shown only there.
- One controller serves every pane through a small adapter per pane (:class:`_Pane`: its view, the key of the
  image it shows, that image's pixel spacing and HU). HU statistics are of the image's own pixels, never of a
  thick slab that the pane may show: the acquired slice on the axial view, the thin plane through the crosshair
  on a reformatted pane (:func:`~ich_viewer.core.measurements.plane_values`), whose millimetres are the MPR
  grid spacing of that plane.
- Pixel ↔ view coordinates go through each pane's image item (its transform scales pixels to mm).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QPointF, QStandardPaths, Signal
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QMessageBox, QWidget

from ich_viewer.core.measurements import (
    KIND_NAMES,
    Measurement,
    MeasurementStore,
    SliceKey,
    compute_values,
    plane_values,
)
from ich_viewer.core.paths import is_inside_any
from ich_viewer.dicom.tags import read_tag_rows
from ich_viewer.errors import IchViewerError
from ich_viewer.qt import actions, dialogs
from ich_viewer.qt.study_controller import StudyController, series_file_stem
from ich_viewer.qt.tools.drawing import Drawer
from ich_viewer.qt.tools.items import DrawCanvas, MeasurementItem
from ich_viewer.qt.tools.panel import MeasurementPanel
from ich_viewer.qt.tools.tag_browser import TagBrowser

__all__ = [
    "DATA_DIR_ENV",
    "TOOLS",
    "ToolsController",
    "key_images_dir",
    "measurements_dir",
    "open_study_store",
    "study_store_key",
]

#: The tools, in menu order ("pointer" = no tool: the mouse reads and windows).
TOOLS = ("pointer", "length", "angle", "ellipse", "freehand", "probe", "midline")
DATA_DIR_ENV = "ICH_VIEWER_DATA_DIR"


def _app_data_root() -> Path:
    """``$ICH_VIEWER_DATA_DIR`` if set, else ``QStandardPaths.AppDataLocation``."""
    root = os.environ.get(DATA_DIR_ENV) or QStandardPaths.writableLocation(
        QStandardPaths.StandardLocation.AppDataLocation
    )
    return Path(root or Path.home() / ".ich-viewer")


def measurements_dir() -> Path:
    """``<app data>/measurements``: ``$ICH_VIEWER_DATA_DIR`` if set, else ``QStandardPaths.AppDataLocation``."""
    return _app_data_root() / "measurements"


def key_images_dir() -> Path:
    """``<app data>/key-images``, beside :func:`measurements_dir`."""
    return _app_data_root() / "key-images"


def study_store_key(info) -> str:
    """The key of a series' per-study store: its Study Instance UID, or its series UID when it has none."""
    return info.study_uid or f"no-study-uid-{info.series_uid}"


def open_study_store(store_cls, folder: Path, info, study_paths, what: str, status, listener) -> Any:
    """Open the per-study store (a :class:`~ich_viewer.core.study_store.StudyStore` subclass) of the study of
    series ``info`` in ``folder`` (:func:`study_store_key`): autosave off when the folder lies in the study
    (``study_paths``; ``status(text, ms)`` says ``what`` is not saved), a load error said through ``status``,
    ``listener`` called after each change."""
    store = store_cls(folder, study_store_key(info))
    if is_inside_any(folder, study_paths):
        store.autosave = False  # never write into the study folder
        status(f"{what} are not saved: the app's data folder is inside the study", 8000)
    if store.load_error:
        status(store.load_error, 10000)
    store.listeners.append(listener)
    return store


def _same_points(a, b) -> bool:
    """True when two point lists agree to 1e-6 pixel."""
    return len(a) == len(b) and all(
        math.isclose(p[0], q[0], abs_tol=1e-6) and math.isclose(p[1], q[1], abs_tol=1e-6)
        for p, q in zip(a, b, strict=True)
    )


class _Pane:
    """One pane the tools draw on: its view (a :class:`~ich_viewer.qt.views.slice_view.SliceView`), the image it
    shows (:meth:`key`, :meth:`spacing`, the values of a measurement on it) and the items drawn there.

    ``handler(pane, event, view_pos)`` gets the events of the pane's drawing canvas."""

    plane = "axial"

    def __init__(self, view, handler: Callable[[_Pane, str, QPointF], None]) -> None:
        self.view = view
        self.canvas = DrawCanvas(lambda event, pos: handler(self, event, pos))
        view.viewbox.addItem(self.canvas)
        self.items: dict[str, MeasurementItem] = {}

    def key(self) -> SliceKey | None:
        """The image on screen, None while there is none."""
        raise NotImplementedError

    def has_image(self) -> bool:
        """True when the pixels of :meth:`key` are there to measure on."""
        raise NotImplementedError

    def spacing(self) -> tuple[float, float]:
        """``(row, column)`` pixel spacing in mm of the image on screen."""
        raise NotImplementedError

    def values_for(self, kind: str, points) -> dict[str, float]:
        """The values of a measurement on the image on screen."""
        raise NotImplementedError

    def on_screen(self) -> bool:
        """True while the pane is part of the layout on screen."""
        return self.view.isVisible()

    def to_view(self, x: float, y: float) -> QPointF:
        """Image pixel coordinates → view coordinates (through the image item's transform)."""
        return self.view.image_item.mapToParent(QPointF(x, y))

    def to_pixel(self, p: QPointF) -> tuple[float, float]:
        """View coordinates → image pixel coordinates."""
        q = self.view.image_item.mapFromParent(p)
        return float(q.x()), float(q.y())

    def pixel_size(self) -> tuple[float, float]:
        """One image pixel in view units ``(dx, dy)``."""
        o = self.to_view(0, 0)
        d = self.to_view(1, 1) - o
        return abs(d.x()) or 1.0, abs(d.y()) or 1.0


class _AxialPane(_Pane):
    """The axial view: the study's acquired slice on screen, (0028,0030) Pixel Spacing, its own HU."""

    def __init__(self, view, handler, study: StudyController) -> None:
        super().__init__(view, handler)
        self.study = study

    def key(self) -> SliceKey | None:
        info, index = self.study.info, self.study.index
        if info is None or not (0 <= index < info.n_slices):
            return None
        return SliceKey(info.series_uid, info.slices[index].sop_uid, index)

    def has_image(self) -> bool:
        return self.study.current_slice() is not None

    def spacing(self) -> tuple[float, float]:
        info = self.study.info
        if info is None:
            return 1.0, 1.0
        _, row_mm, col_mm = info.spacing_mm
        return float(row_mm or 1.0), float(col_mm or 1.0)

    def values_for(self, kind: str, points) -> dict[str, float]:
        return compute_values(kind, points, self.spacing(), self.study.current_slice())


class _PlanePane(_Pane):
    """A reformatted pane (coronal or sagittal): the plane of the MPR grid through the crosshair, the grid's
    spacing of that plane, and the HU of the thin plane (not the slab the pane may show)."""

    def __init__(self, view, handler, study: StudyController, mpr, plane: str) -> None:
        super().__init__(view, handler)
        self.study = study
        self.mpr = mpr  # the MprController
        self.plane = plane

    def key(self) -> SliceKey | None:
        info = self.study.info
        if info is None or self.mpr.mpr is None:
            return None
        return SliceKey.reformatted(info.series_uid, self.plane, self.mpr.plane_index(self.plane))

    def has_image(self) -> bool:
        return self.mpr.mpr is not None and self.view.slice_hu is not None

    def spacing(self) -> tuple[float, float]:
        if self.mpr.mpr is None:
            return 1.0, 1.0
        row_mm, col_mm = self.mpr.mpr.plane_spacing(self.plane)
        return float(row_mm), float(col_mm)

    def values_for(self, kind: str, points) -> dict[str, float]:
        if self.mpr.mpr is None:
            return {}
        return plane_values(kind, points, self.mpr.mpr, self.plane, self.mpr.plane_index(self.plane))


class ToolsController(QObject):
    """Measurement tools, their list and store, and the tag browser, for the image panes.

    ``view`` is the axial :class:`~ich_viewer.qt.views.slice_view.SliceView` (its ``viewbox``, ``image_item``);
    :meth:`attach_viewer` adds the coronal and sagittal panes of the MPR layouts.

    Signals
    -------
    panel_wanted()
        The measurements list should be shown (a measurement was made, or a study with some was opened).
    status(str, int)
        A status-bar message and how long to show it (ms).
    """

    panel_wanted = Signal()
    status = Signal(str, int)

    def __init__(self, study: StudyController, view, window: QWidget) -> None:
        super().__init__(window)
        self.study = study
        self.view = view
        self.window = window
        self.folder = measurements_dir()
        self.stores: dict[str, MeasurementStore] = {}
        self.store: MeasurementStore | None = None
        self.tool = "pointer"
        self.drawer: Drawer | None = None
        self.selected_id: str | None = None
        self.preview: MeasurementItem | None = None
        self.axial = _AxialPane(view, self._on_canvas, study)
        self.panes: list[_Pane] = [self.axial]
        #: the pane where the measurement under way is drawn
        self.drawing_pane: _Pane = self.axial
        self._preview_pane: _Pane = self.axial
        self.canvas = self.axial.canvas
        self.viewer = None
        self._pending_go_to: str | None = None
        self._syncing = False
        self.panel = MeasurementPanel(window)
        self.panel.chosen.connect(self.go_to)
        self.panel.delete_requested.connect(self.delete)
        self.panel.export_requested.connect(self._on_export_requested)
        self.tag_browser: TagBrowser | None = None
        self.acts = actions.build_actions("tools", self, window)
        self.tool_group = QActionGroup(self)
        self.tool_group.setExclusive(True)
        for tool in TOOLS:
            act = self.acts[f"tool_{tool}"]
            act.setCheckable(True)
            act.setData(tool)
            self.tool_group.addAction(act)
        self.acts["tool_pointer"].setChecked(True)
        study.series_started.connect(self._on_series_started)
        study.series_loaded.connect(lambda _s: self.refresh())
        study.index_changed.connect(lambda _i: self.refresh())
        self._update_actions()

    def attach_viewer(self, viewer) -> None:
        """Draw on the reformatted panes of ``viewer`` too (a
        :class:`~ich_viewer.qt.views.viewer_area.ViewerArea`: its ``mpr`` controller, its ``coronal`` and
        ``sagittal`` panes, ``layout_name`` and ``set_layout``)."""
        self.viewer = viewer
        for view in (viewer.coronal, viewer.sagittal):
            pane = _PlanePane(view, self._on_canvas, self.study, viewer.mpr, view.plane)
            pane.canvas.setVisible(self.tool != "pointer")
            self.panes.append(pane)
        viewer.mpr.volume_changed.connect(self._on_volume_changed)
        viewer.mpr.point_changed.connect(lambda _p: self.refresh())
        viewer.layout_changed.connect(self._on_layout_changed)
        self.refresh()

    def _on_layout_changed(self, _name: str) -> None:
        if self.drawing_pane is not self.axial and not self.drawing_pane.on_screen():
            self.cancel_drawing()  # its pane left the screen
        self.refresh()

    def pane(self, plane: str) -> _Pane:
        """The pane of ``plane`` (``"axial"``, or ``"coronal"``/``"sagittal"`` once a viewer is attached)."""
        return next(p for p in self.panes if p.plane == plane)

    @property
    def items(self) -> dict[str, MeasurementItem]:
        """The measurement items drawn now, in every pane, by measurement id."""
        out: dict[str, MeasurementItem] = {}
        for pane in self.panes:
            out.update(pane.items)
        return out

    # ============================================================================================ the store
    def _on_series_started(self, info) -> None:
        self.cancel_drawing()
        self.select(None)
        self._pending_go_to = None
        uid = study_store_key(info)
        if uid not in self.stores:
            self.stores[uid] = open_study_store(
                MeasurementStore,
                self.folder,
                info,
                self.study.paths,
                "Measurements",
                self.status.emit,
                self._on_store_changed,
            )
        self.store = self.stores[uid]
        if len(self.store):
            self.panel_wanted.emit()
        self.refresh()

    def _on_store_changed(self) -> None:
        self.refresh()
        self._update_actions()

    def _update_actions(self) -> None:
        store = self.store
        self.acts["undo"].setEnabled(store is not None and store.can_undo())
        self.acts["redo"].setEnabled(store is not None and store.can_redo())
        for key in ("export_measurements_csv", "export_measurements_json"):
            self.acts[key].setEnabled(store is not None and len(store) > 0)

    def _on_volume_changed(self, mpr) -> None:
        if mpr is None and self.drawing_pane is not self.axial:
            self.cancel_drawing()
        self.refresh()
        pending, self._pending_go_to = self._pending_go_to, None
        if mpr is not None and pending is not None:
            self.go_to(pending)

    # ============================================================================================ geometry
    def slice_key(self) -> SliceKey | None:
        """The :class:`SliceKey` of the axial slice on screen, or None."""
        return self.axial.key()

    def spacing(self) -> tuple[float, float]:
        """``(row, column)`` pixel spacing in mm of the series on screen (1 mm where unknown)."""
        return self.axial.spacing()

    def to_view(self, x: float, y: float) -> QPointF:
        """Axial image pixel coordinates → view coordinates (through the image item's transform)."""
        return self.axial.to_view(x, y)

    def to_pixel(self, p: QPointF) -> tuple[float, float]:
        """Axial view coordinates → image pixel coordinates."""
        return self.axial.to_pixel(p)

    def values_for(self, kind: str, points, plane: str = "axial") -> dict[str, float]:
        """The values of a measurement on the image on screen in the pane of ``plane``."""
        return self.pane(plane).values_for(kind, points)

    def _shown_keys(self) -> set[SliceKey]:
        """The images on screen: the axial slice, and the reformatted planes of the panes in the layout."""
        keys = {pane.key() for pane in self.panes if pane is self.axial or pane.on_screen()}
        keys.discard(None)
        return keys  # type: ignore[return-value]

    # ============================================================================================ tools
    def set_tool(self, tool: str) -> None:
        """Choose a tool (:data:`TOOLS`); "pointer" = none."""
        if tool not in TOOLS:
            return
        self.cancel_drawing()
        self.tool = tool
        self.acts[f"tool_{tool}"].setChecked(True)
        drawing = tool != "pointer"
        for pane in self.panes:
            pane.canvas.setVisible(drawing)
        if drawing:
            self.drawer = Drawer(tool)
            self.panel_wanted.emit()
            self.status.emit(f"{KIND_NAMES[tool]}: {_HINTS[tool]}", 6000)
        else:
            self.drawer = None

    def cancel_drawing(self) -> None:
        """Drop a measurement under way."""
        if self.drawer is not None:
            self.drawer.cancel()
        self._show_preview()

    def _on_canvas(self, pane: _Pane, event: str, view_pos: QPointF) -> None:
        drawer = self.drawer
        if drawer is None or pane.key() is None or not pane.has_image():
            return
        if pane is not self.drawing_pane:
            if event == "hover":
                return  # a measurement under way elsewhere keeps its preview
            drawer.cancel()  # starting on another pane drops what was begun on the first
            self._show_preview()
            self.drawing_pane = pane
        p = pane.to_pixel(view_pos)
        done = None
        if event == "start":
            drawer.drag_start(p)
        elif event == "move":
            drawer.drag_move(p)
        elif event == "finish":
            done = drawer.drag_end(p)
        elif event == "click":
            done = drawer.click(p)
        elif event == "hover":
            if not drawer.active:
                return
            drawer.hover(p)
        self._show_preview()
        if done is not None:
            self.add(self.tool, done, pane)

    def _remove_preview(self) -> None:
        if self.preview is not None:
            self._preview_pane.view.viewbox.removeItem(self.preview)
            self.preview = None

    def _show_preview(self) -> None:
        pts = self.drawer.preview() if self.drawer is not None else []
        pane = self.drawing_pane
        if pane is not self._preview_pane:
            self._remove_preview()
            self._preview_pane = pane
        if len(pts) < 2 and not (pts and self.tool == "probe"):
            self._remove_preview()
            return
        view_pts = [pane.to_view(x, y) for x, y in pts]
        if self.preview is None or len(self.preview.handles) != len(view_pts):
            self._remove_preview()
            self.preview = MeasurementItem(self.tool, view_pts, pixel_size=pane.pixel_size(), preview=True)
            pane.view.viewbox.addItem(self.preview)
        else:
            self.preview.set_view_points(view_pts)
        kind = self.tool
        if len(pts) == (2 if kind in ("length", "ellipse") else 3 if kind in ("angle", "midline") else 0):
            self.preview.set_text(Measurement(kind, pts, "", "", 0, pane.values_for(kind, pts)).text())
        else:
            self.preview.set_text("")

    # ============================================================================================ changes
    def add(self, kind: str, points, pane: _Pane | str | None = None) -> Measurement | None:
        """Add a measurement of ``kind`` with ``points`` (image pixel coordinates) on the image on screen in
        ``pane`` (a pane or its plane name; default: the axial view)."""
        if isinstance(pane, str):
            pane = self.pane(pane)
        pane = pane or self.axial
        key = pane.key()
        if key is None or self.store is None:
            return None
        m = Measurement.on_key(kind, points, key, values=pane.values_for(kind, points))
        self.selected_id = m.id
        self.store.add(m)
        self.select(m.id)
        self.panel_wanted.emit()
        return m

    def delete(self, measurement_id: str) -> None:
        """Delete a measurement (undoable)."""
        if self.store is not None and self.store.remove(measurement_id) is not None:
            if self.selected_id == measurement_id:
                self.selected_id = None
            self.status.emit("Measurement deleted (Ctrl+Z to undo)", 4000)

    def delete_selected(self) -> None:
        """Del: delete the selected measurement."""
        if self.selected_id is not None:
            self.delete(self.selected_id)

    def undo(self) -> None:
        """Undo the last change of the measurements; go to its slice (or plane) if it is elsewhere."""
        self._undo_or_redo(True)

    def redo(self) -> None:
        """Redo the last undone change."""
        self._undo_or_redo(False)

    def _undo_or_redo(self, undo: bool) -> None:
        if self.store is None:
            return
        before = {m.id: m for m in self.store}
        done = self.store.undo() if undo else self.store.redo()
        if not done:
            self.status.emit("Nothing to undo" if undo else "Nothing to redo", 3000)
            return
        after = {m.id: m for m in self.store}
        changed = [
            after.get(i) or before.get(i) for i in set(before) | set(after) if before.get(i) != after.get(i)
        ]
        info = self.study.info
        shown = self._shown_keys()
        for m in changed:
            if m is not None and info is not None and m.series_uid == info.series_uid and m.key not in shown:
                self._show_image_of(m)
                break

    def _show_image_of(self, m: Measurement) -> None:
        """Bring the image of ``m`` (of the series on screen) to its pane: the axial slice, or the reformatted
        plane (switching to the MPR layout when its pane is not on screen)."""
        if m.plane == "axial":
            if m.index != self.study.index:
                self.study.set_index(m.index, user=True)
            return
        viewer = self.viewer
        if viewer is None:
            self.status.emit(f"That measurement is on a {m.plane} plane: open an MPR layout", 5000)
            return
        if viewer.layout_name not in ("mpr", "grid"):
            viewer.set_layout("mpr")
        mpr = viewer.mpr
        if mpr.mpr is None:
            self._pending_go_to = m.id  # once the volume is there
            return
        point = mpr.point.copy()
        point[{"coronal": 1, "sagittal": 2}[m.plane]] = m.index
        mpr.set_point(point)

    def _on_item_moved(self, pane: _Pane, item: MeasurementItem, finished: bool) -> None:
        if self._syncing or self.store is None:
            return
        m = self.store.get(item.measurement_id)
        if m is None:
            return
        points = [pane.to_pixel(p) for p in item.view_points()]
        values = pane.values_for(m.kind, points)
        if not finished:
            item.set_text(Measurement(m.kind, points, "", "", 0, values).text())
            return
        if _same_points(points, m.points):
            return
        self.store.replace(m.moved(points, values))

    # ============================================================================================ showing
    def refresh(self) -> None:
        """Show the measurements of the images on screen (each only on its own slice or plane), and the list."""
        self._syncing = True
        try:
            for pane in self.panes:
                key = pane.key()
                wanted = (
                    {m.id: m for m in self.store.for_key(key)} if (self.store is not None and key) else {}
                )
                self._sync_pane(pane, wanted)
        finally:
            self._syncing = False
        if self.selected_id is not None and (self.store is None or self.store.get(self.selected_id) is None):
            self.selected_id = None
        self.panel.set_measurements(self.store.items() if self.store is not None else [], self._shown_keys())
        self.panel.select(self.selected_id)
        self._update_actions()

    def _sync_pane(self, pane: _Pane, wanted: dict[str, Measurement]) -> None:
        for mid in list(pane.items):
            if mid not in wanted:
                pane.view.viewbox.removeItem(pane.items.pop(mid))
        for mid, m in wanted.items():
            view_pts = [pane.to_view(x, y) for x, y in m.points]
            item = pane.items.get(mid)
            if item is None:
                item = MeasurementItem(m.kind, view_pts, pixel_size=pane.pixel_size(), measurement_id=mid)
                item.sigRegionChanged.connect(lambda it, p=pane: self._on_item_moved(p, it, False))
                item.sigRegionChangeFinished.connect(lambda it, p=pane: self._on_item_moved(p, it, True))
                item.sigRegionChangeStarted.connect(lambda it: self.select(it.measurement_id))
                item.sigClicked.connect(lambda it, _ev: self.select(it.measurement_id))
                pane.view.viewbox.addItem(item)
                pane.items[mid] = item
            else:
                current = [pane.to_pixel(p) for p in item.view_points()]
                if not _same_points(current, m.points):
                    item.set_view_points(view_pts)
            item.set_text(m.text())
            item.set_selected(mid == self.selected_id)

    def select(self, measurement_id: str | None) -> None:
        """Select a measurement (handles shown, highlighted, selected in the list)."""
        self.selected_id = measurement_id
        for mid, item in self.items.items():
            item.set_selected(mid == measurement_id)
        self.panel.select(measurement_id)

    def go_to(self, measurement_id: str) -> None:
        """Select a measurement and show its slice or plane (a measurement of another series: a status
        message)."""
        m = self.store.get(measurement_id) if self.store is not None else None
        if m is None:
            return
        self.selected_id = m.id
        info = self.study.info
        if info is None or info.series_uid != m.series_uid:
            self.status.emit("That measurement is on another series: open it from the series list", 5000)
        else:
            self._show_image_of(m)
        self.select(m.id)

    # ============================================================================================ export
    def export(self, path: str | Path, kind: str) -> None:
        """Write the study's measurements to ``path`` as ``"csv"`` or ``"json"``."""
        if self.store is None:
            raise IchViewerError("no study is open")
        (self.store.export_csv if kind == "csv" else self.store.export_json)(path)

    def _on_export_requested(self, kind: str) -> None:
        if self.store is None or not len(self.store):
            self.status.emit("No measurements to export", 3000)
            return
        name = f"measurements-{series_file_stem(self.study.info)}.{kind}"
        documents = QStandardPaths.StandardLocation.DocumentsLocation
        path = dialogs.ask_save_path(
            self.window,
            f"Export measurements as {kind.upper()}",
            documents,
            name,
            f"{kind.upper()} (*.{kind})",
        )
        if not path:
            return
        path = path if path.lower().endswith(f".{kind}") else f"{path}.{kind}"
        try:
            self.export(path, kind)
        except OSError as exc:
            QMessageBox.warning(self.window, "Export measurements", f"Could not write {path}: {exc}")
            return
        self.status.emit(f"Saved {path}", 5000)

    def export_csv_dialog(self) -> None:
        """Tools ▸ Export Measurements as CSV…"""
        self._on_export_requested("csv")

    def export_json_dialog(self) -> None:
        """Tools ▸ Export Measurements as JSON…"""
        self._on_export_requested("json")

    # ============================================================================================ tags
    def show_tags(self) -> None:
        """Open (or raise) the tag browser on the slice on screen; it follows the slice while open."""
        if self.tag_browser is None:
            self.tag_browser = TagBrowser(self.window)
            self.study.index_changed.connect(lambda _i: self._refresh_tags())
            self.study.series_started.connect(lambda _i: self._refresh_tags())
        self._refresh_tags(force=True)
        self.tag_browser.show()
        self.tag_browser.raise_()

    def _refresh_tags(self, force: bool = False) -> None:
        browser = self.tag_browser
        if browser is None or not (force or browser.isVisible()):
            return
        info, index = self.study.info, self.study.index
        if info is None or not (0 <= index < info.n_slices):
            browser.show_message("No image is open.")
            return
        sl = info.slices[index]
        title = f"{info.description or '(no description)'} · Im {index + 1}/{info.n_slices} · {sl.path}"
        try:
            browser.set_rows(read_tag_rows(sl.path), title)
        except IchViewerError as exc:
            browser.show_message(str(exc))


_HINTS = {
    "length": "drag from one end to the other",
    "angle": "drag the first arm to the vertex, then click the end of the second arm",
    "ellipse": "drag from corner to corner",
    "freehand": "drag along the outline",
    "probe": "click a point (mean HU of 3×3 pixels)",
    "midline": "drag along the midline, then click the displaced structure (septum pellucidum)",
}


def tool_actions(acts: dict[str, QAction]) -> list[QAction]:
    """The tool actions of ``acts`` in menu order."""
    return [acts[f"tool_{t}"] for t in TOOLS]
