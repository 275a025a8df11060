"""The one table of the window's actions (menus, toolbar, keyboard shortcuts), how to build and place them, and
the keyboard help generated from the same table.

Each row names its slot by attribute path on the object that owns it (``owner``): the main window, or the AI
controller (``"ai"``). The window builds its rows, the AI controller builds its own, and the window places both
in its menus and its toolbar.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMenu, QToolBar, QWidget

from ich_viewer.core.windowing import PRESETS
from ich_viewer.qt.settings import MOUSE_ACTIONS

__all__ = [
    "ACTIONS",
    "MENUS",
    "ActionSpec",
    "build_actions",
    "build_mouse_menu",
    "fill_toolbar",
    "place_in_menus",
    "shortcut_help_text",
]

Shortcut = str | QKeySequence.StandardKey

#: The window's menus, in menu-bar order.
MENUS = ("&File", "&View", "&Window", "&Tools", "&Settings", "&Help")


@dataclass(frozen=True)
class ActionSpec:
    """One action of the window.

    Attributes
    ----------
    id : str
        Key of the action in the owner's ``actions`` dict.
    text : str
        Menu text (``&`` marks the mnemonic).
    slot : str
        Attribute path of the slot on the owner, e.g. ``"reset_view"`` or ``"study.step_slice"``. A checkable
        action's slot receives the new checked state, any other is called with ``args``.
    shortcuts : tuple
        Key sequences (strings such as ``"Ctrl+E"``, or a ``QKeySequence.StandardKey``); the first is the one
        menus show.
    menu : str
        One of :data:`MENUS`, optionally with a submenu (``"&View/&Slices"``); empty: a shortcut only.
    separator : bool
        A separator before this action in its menu.
    toolbar : tuple of int
        ``(group, position)`` on the toolbar (groups are separated); empty: not on the toolbar.
    tip : str
        Tool tip and status tip.
    checkable : bool
    args : tuple
        Arguments of the slot (not checkable actions).
    owner : str
        ``"window"``, ``"ai"``, ``"tools"`` (the measurement tools and the tag browser), ``"keys"`` (the key
        images), ``"hematoma"`` or ``"pacs"``
        (:class:`~ich_viewer.qt.pacs.controller.PacsController`).
    """

    id: str
    text: str
    slot: str
    shortcuts: tuple[Shortcut, ...] = ()
    menu: str = ""
    separator: bool = False
    toolbar: tuple[int, ...] = ()
    tip: str = ""
    checkable: bool = False
    args: tuple[Any, ...] = ()
    owner: str = "window"


_K = QKeySequence.StandardKey
_AI = "ai"
_TOOLS = "tools"
_PACS = "pacs"
_HEMATOMA = "hematoma"
_KEYS = "keys"

#: Every action of the window, in menu order.
ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("open_folder", "Open &Folder…", "_on_open_folder", (_K.Open,), "&File", toolbar=(1, 0)),
    ActionSpec("open_file", "Open F&ile…", "_on_open_file", ("Ctrl+Shift+O",), "&File"),
    ActionSpec(
        "open_pacs",
        "Open from &PACS…",
        "open_from_pacs",
        ("Ctrl+Shift+P",),
        "&File",
        tip="Query a PACS by patient, name and date and open a study",
        owner=_PACS,
    ),
    ActionSpec(
        "demo", "Open &Demo Study", "open_demo", ("Ctrl+D",), "&File", tip="Generate a synthetic study"
    ),
    ActionSpec(
        "open_beside",
        "Open Study &Beside…",
        "viewer.choose_compare_folder",
        menu="&File",
        tip="Load a second study (e.g. a prior) beside this one, scrolled together by position",
    ),
    ActionSpec("export_png", "&Export View as PNG…", "_on_export_png", ("Ctrl+E",), "&File", True, (5, 0)),
    ActionSpec("copy_view", "&Copy View", "copy_view_to_clipboard", (_K.Copy,), "&File"),
    ActionSpec(
        "export_hide_identity",
        "Exports &Without Patient Name and ID (for a Talk)",
        "set_export_hide_identity",
        menu="&File",
        tip="PNG exports and copied views leave the patient's name and ID out of the corner text",
        checkable=True,
    ),
    ActionSpec("export_csv", "Export AI Results as &CSV…", "_on_export_csv", menu="&File", owner=_AI),
    ActionSpec("export_json", "Export AI Results as &JSON…", "_on_export_json", menu="&File", owner=_AI),
    ActionSpec(
        "export_ai_dicom",
        "Export AI Results as &DICOM…",
        "export_results_dialog",
        menu="&File",
        tip="Comprehensive SR and Grad-CAM Secondary Captures (research use only) into a folder",
        owner=_PACS,
    ),
    ActionSpec(
        "send_results",
        "&Send AI Results to PACS…",
        "send_results_dialog",
        menu="&File",
        tip="Store the SR and the Secondary Captures on a configured server",
        owner=_PACS,
    ),
    ActionSpec(
        "export_anonymised",
        "Export &Anonymised Study…",
        "export_anonymised_dialog",
        menu="&File",
        tip="PS3.15 basic profile: names, IDs and dates replaced, UIDs remapped, private tags removed",
        owner=_PACS,
    ),
    ActionSpec("details", "Show Load &Details…", "_on_notice_details", menu="&File"),
    ActionSpec("quit", "&Quit", "close", (_K.Quit,), "&File", separator=True),
    ActionSpec("fit", "&Fit to Window", "slice_view.fit", ("F",), "&View", toolbar=(3, 1)),
    ActionSpec(
        "reset",
        "&Reset View",
        "reset_view",
        ("Space",),
        "&View",
        toolbar=(3, 2),
        tip="Fit, initial window, no inversion",
    ),
    ActionSpec("zoom_in", "Zoom &In", "slice_view.zoom_by", ("+",), "&View", args=(1.25,)),
    ActionSpec("zoom_out", "Zoom &Out", "slice_view.zoom_by", ("-",), "&View", args=(0.8,)),
    ActionSpec(
        "invert", "&Invert", "slice_view.set_inverted", ("I",), "&View", toolbar=(3, 0), checkable=True
    ),
    ActionSpec(
        "overlays", "Show &Overlays", "_on_overlays_toggled", ("O",), "&View", toolbar=(3, 3), checkable=True
    ),
    ActionSpec("cine", "&Play Cine", "study.set_cine_playing", ("P",), "&View", True, (4, 0), checkable=True),
    ActionSpec("next", "Next Slice", "study.step_slice", ("Up", "Right"), "&View/&Slices", args=(1,)),
    ActionSpec("prev", "Previous Slice", "study.step_slice", ("Down", "Left"), "&View/&Slices", args=(-1,)),
    ActionSpec("page_up", "Forward 10%", "study.step_pages", ("PgUp",), "&View/&Slices", args=(1,)),
    ActionSpec("page_down", "Back 10%", "study.step_pages", ("PgDown",), "&View/&Slices", args=(-1,)),
    ActionSpec("first", "First Slice", "study.go_to_end", ("Home",), "&View/&Slices", args=(False,)),
    ActionSpec("last", "Last Slice", "study.go_to_end", ("End",), "&View/&Slices", args=(True,)),
    ActionSpec("cancel", "Cancel Loading", "cancel_loading", ("Esc",)),
    ActionSpec(
        "layout_axial", "&Axial Only", "viewer.set_layout", ("Ctrl+1",), "&View/&Layout", args=("axial",)
    ),
    ActionSpec(
        "layout_mpr",
        "&MPR: Axial, Coronal, Sagittal",
        "viewer.set_layout",
        ("Ctrl+2",),
        "&View/&Layout",
        tip="Three panes with a linked crosshair: click or Shift+drag to move it",
        args=("mpr",),
    ),
    ActionSpec(
        "layout_grid",
        "MPR &2×2 (with AI Curves or the Second Series)",
        "viewer.set_layout",
        ("Ctrl+3",),
        "&View/&Layout",
        args=("grid",),
    ),
    ActionSpec(
        "layout_compare",
        "&Compare Two Series Side by Side",
        "viewer.set_layout",
        ("Ctrl+4",),
        "&View/&Layout",
        tip="Scrolled together by patient position, W/L linked",
        args=("compare",),
    ),
    ActionSpec(
        "compare_series", "Compare With &Series…", "viewer.choose_compare_series", menu="&View/&Layout"
    ),
    ActionSpec(
        "compare_up",
        "Second Series Up (Unlinked)",
        "viewer.compare.step_unlinked",
        ("Alt+Up",),
        "&View/&Layout",
        tip="Align a prior: scroll the second series alone; scrolling stays linked with the new offset",
        args=(1,),
    ),
    ActionSpec(
        "compare_down",
        "Second Series Down (Unlinked)",
        "viewer.compare.step_unlinked",
        ("Alt+Down",),
        "&View/&Layout",
        args=(-1,),
    ),
    ActionSpec(
        "compare_realign",
        "Reset Compare Alignment",
        "viewer.compare.reset_alignment",
        menu="&View/&Layout",
        tip="By patient position in one frame of reference, else by the centres of the two stacks",
    ),
    ActionSpec(
        "slab_mode",
        "Slab &Mode: Thin, Average, MIP, MinIP",
        "viewer.mpr.cycle_slab_mode",
        ("S",),
        "&View/Sla&b",
        tip="Thick slab in every pane (S: next mode)",
    ),
    ActionSpec(
        "slab_thicker", "&Thicker Slab", "viewer.mpr.step_slab_thickness", ("]",), "&View/Sla&b", args=(1,)
    ),
    ActionSpec(
        "slab_thinner", "T&hinner Slab", "viewer.mpr.step_slab_thickness", ("[",), "&View/Sla&b", args=(-1,)
    ),
    *(
        ActionSpec(
            f"preset_{n}",
            f"{p.name} ({p.width:g}/{p.center:g})",
            "study.set_window",
            (str(n),),
            "&Window",
            args=(p.center, p.width, p.name),
        )
        for n, p in enumerate(PRESETS, start=1)
    ),
    ActionSpec("file_window", "File Window", "_on_window_special", ("6",), "&Window", args=("file",)),
    ActionSpec("auto_window", "Auto Window", "_on_window_special", ("7",), "&Window", args=("auto",)),
    # the reading tools (ich_viewer.qt.tools.controller.ToolsController); the tool rows form an exclusive group
    *(
        ActionSpec(f"tool_{tool}", text, "set_tool", (key,), "&Tools", tip=tip, args=(tool,), owner=_TOOLS)
        for tool, text, key, tip in (
            ("pointer", "&Pointer (No Tool)", "N", "Mouse reads HU and drags W/L; no drawing"),
            ("length", "&Length", "L", "Measure a distance in mm"),
            ("angle", "&Angle", "A", "Measure an angle in degrees"),
            ("ellipse", "&Ellipse ROI", "E", "HU mean, SD, min, max and area in an ellipse"),
            ("freehand", "&Freehand ROI", "D", "HU statistics in a drawn outline"),
            ("probe", "HU &Probe (3×3)", "H", "Mean HU of 3×3 pixels at a point"),
            ("midline", "&Midline Shift", "Shift+M", "Distance of a point from the midline in mm"),
        )
    ),
    ActionSpec("undo", "&Undo", "undo", ("Ctrl+Z",), "&Tools", True, owner=_TOOLS),
    ActionSpec("redo", "&Redo", "redo", ("Ctrl+Shift+Z", "Ctrl+Y"), "&Tools", owner=_TOOLS),
    ActionSpec(
        "delete_measurement", "&Delete Measurement", "delete_selected", ("Del",), "&Tools", owner=_TOOLS
    ),
    ActionSpec(
        "export_measurements_csv",
        "Export Measurements as &CSV…",
        "export_csv_dialog",
        (),
        "&Tools",
        True,
        owner=_TOOLS,
    ),
    ActionSpec(
        "export_measurements_json",
        "Export Measurements as &JSON…",
        "export_json_dialog",
        menu="&Tools",
        owner=_TOOLS,
    ),
    ActionSpec("dicom_tags", "DICOM &Tags…", "show_tags", ("Ctrl+T",), "&Tools", True, owner=_TOOLS),
    # key images (ich_viewer.qt.tools.key_images.KeyImageController)
    ActionSpec(
        "key_image",
        "Mark &Key Image",
        "toggle_current",
        ("K",),
        "&Tools",
        True,
        tip="Mark the slice on screen as a key image, or unmark it (K); listed in the Key images dock",
        owner=_KEYS,
    ),
    ActionSpec(
        "export_key_png",
        "Export Key Images as P&NG…",
        "export_png_dialog",
        menu="&Tools",
        tip="One PNG per key image, in the window it was marked in, without patient name or ID",
        owner=_KEYS,
    ),
    ActionSpec(
        "export_key_dicom",
        "Export Key Images as DICOM (&KOS)…",
        "export_dicom_dialog",
        menu="&Tools",
        tip="A DICOM Key Object Selection Document referencing the key images",
        owner=_KEYS,
    ),
    ActionSpec(
        "send_key_images",
        "Send Key Images to PACS…",
        "send_dialog",
        menu="&Tools",
        tip="Store the Key Object Selection on a configured server",
        owner=_KEYS,
    ),
    # the hematoma volume tool (ich_viewer.qt.hematoma.HematomaController)
    ActionSpec(
        "hematoma_grow",
        "&Hematoma Volume (Click a Clot)",
        "set_mode",
        ("V",),
        "&Tools",
        True,
        tip="Click inside a clot: 3-D region grow, volume in mL, ABC/2, mean HU; Shift+click adds a part (V)",
        args=("grow",),
        owner=_HEMATOMA,
    ),
    ActionSpec(
        "hematoma_brush",
        "Hematoma &Brush",
        "set_mode",
        ("B",),
        "&Tools",
        tip="Add to the segmentation (B)",
        args=("brush",),
        owner=_HEMATOMA,
    ),
    ActionSpec(
        "hematoma_erase",
        "Hematoma E&raser",
        "set_mode",
        ("Shift+B",),
        "&Tools",
        tip="Remove from the segmentation (Shift+B)",
        args=("erase",),
        owner=_HEMATOMA,
    ),
    ActionSpec("hematoma_clear", "&Clear Hematoma", "clear", (), "&Tools", owner=_HEMATOMA),
    ActionSpec("model_folder", "&Model Folder…", "_on_choose_model_folder", (), "&Settings", True, owner=_AI),
    ActionSpec("bundled_model", "Use &Bundled Demo Model", "use_bundled_model", menu="&Settings", owner=_AI),
    ActionSpec(
        "auto_ai",
        "Run AI &Automatically After Loading",
        "_on_auto_toggled",
        (),
        "&Settings",
        owner=_AI,
        checkable=True,
    ),
    ActionSpec("pacs_settings", "&PACS…", "settings_dialog", menu="&Settings", owner=_PACS),
    ActionSpec(
        "pacs_listener",
        "Run the &Listener in the App",
        "set_listener_running",
        menu="&Settings",
        tip="Receive studies (C-STORE on our AE title and port, 127.0.0.1) and triage them into the Worklist",
        checkable=True,
        owner=_PACS,
    ),
    ActionSpec("shortcuts", "&Keyboard and Mouse", "_on_shortcuts_help", ("F1",), "&Help"),
    ActionSpec("about_model", "About the &Model…", "show_model_card", menu="&Help", owner=_AI),
    ActionSpec("about", "&About ICH Viewer", "_on_about", menu="&Help"),
    ActionSpec(
        "run_ai",
        "Run &AI",
        "run_current",
        ("Ctrl+R",),
        toolbar=(6, 0),
        tip="Run the hemorrhage model on the series on screen (Ctrl+R)",
        owner=_AI,
    ),
    ActionSpec(
        "heatmap",
        "&Heatmap",
        "set_heatmap_visible",
        ("G",),
        toolbar=(6, 1),
        tip="Show where the model looked (Grad-CAM) (G)",
        checkable=True,
        owner=_AI,
    ),
)


def build_actions(
    owner: str,
    target: object,
    parent: QObject,
    checked: Mapping[str, bool] | None = None,
    specs: Iterable[ActionSpec] = ACTIONS,
) -> dict[str, QAction]:
    """Create the QActions of ``owner``'s rows, connected to their slots on ``target``; return them by id.

    ``checked`` gives the initial state of checkable actions (set before connecting: no slot call).
    """
    checked = checked or {}
    actions: dict[str, QAction] = {}
    for spec in specs:
        if spec.owner != owner:
            continue
        action = QAction(spec.text, parent)
        if spec.shortcuts:
            action.setShortcuts([QKeySequence(k) for k in spec.shortcuts])
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        if spec.tip:
            action.setToolTip(spec.tip)
            action.setStatusTip(spec.tip)
        slot = attrgetter(spec.slot)(target)
        if spec.checkable:
            action.setCheckable(True)
            action.setChecked(bool(checked.get(spec.id, False)))
            action.toggled.connect(slot)
        else:
            action.triggered.connect(lambda _=False, s=slot, a=spec.args: s(*a))
        actions[spec.id] = action
    return actions


def place_in_menus(
    menus: Mapping[str, QMenu], actions: Mapping[str, QAction], specs: Iterable[ActionSpec] = ACTIONS
) -> None:
    """Append each row's action to its menu (submenus are created where their first row is)."""
    submenus: dict[str, QMenu] = {}
    for spec in specs:
        if not spec.menu:
            continue
        top, _, sub = spec.menu.partition("/")
        menu = menus[top]
        if sub:
            if spec.menu not in submenus:
                submenus[spec.menu] = menu.addMenu(sub)
            menu = submenus[spec.menu]
        if spec.separator:
            menu.addSeparator()
        menu.addAction(actions[spec.id])


def fill_toolbar(
    toolbar: QToolBar,
    actions: Mapping[str, QAction],
    widgets: Mapping[int, Sequence[QWidget]] = {},
    specs: Iterable[ActionSpec] = ACTIONS,
    groups: Iterable[int] | None = None,
) -> None:
    """Add the toolbar rows by ``(group, position)``, ``widgets`` at the end of their group, a separator between
    groups; ``groups``: only these (default all)."""
    rows = sorted((s for s in specs if s.toolbar), key=lambda s: s.toolbar)
    present = {s.toolbar[0] for s in rows} | set(widgets)
    groups = sorted(present if groups is None else present & set(groups))
    for n, group in enumerate(groups):
        if n:
            toolbar.addSeparator()
        for spec in rows:
            if spec.toolbar[0] == group:
                toolbar.addAction(actions[spec.id])
        for widget in widgets.get(group, ()):
            toolbar.addWidget(widget)


_MOUSE_NAMES = {"window": "Window/level", "pan": "Pan", "zoom": "Zoom"}
_MOUSE_HELP = {"window": "window/level (horizontal = width, vertical = level)", "pan": "pan", "zoom": "zoom"}


def build_mouse_menu(menu: QMenu, mapping: Mapping[str, str], choose) -> dict[str, QActionGroup]:
    """Fill Settings ▸ Mouse Buttons: per button an exclusive choice of :data:`MOUSE_ACTIONS`, checked as in
    ``mapping``; ``choose(button, action)`` is called on a choice. Returns the groups by button."""
    groups: dict[str, QActionGroup] = {}
    for button in ("left", "middle", "right"):
        sub = menu.addMenu(f"{button.capitalize()} drag")
        group = QActionGroup(menu)
        group.setExclusive(True)
        for name in MOUSE_ACTIONS:
            action = QAction(_MOUSE_NAMES[name], menu, checkable=True)
            action.setData(name)
            action.setChecked(name == mapping[button])
            action.triggered.connect(lambda _=False, b=button, n=name: choose(b, n))
            group.addAction(action)
            sub.addAction(action)
        groups[button] = group
    return groups


def _plain(text: str) -> str:
    """Menu text without its mnemonic marks and ellipsis."""
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&").rstrip("…")


def shortcut_help_text(mapping: Mapping[str, str], specs: Iterable[ActionSpec] = ACTIONS) -> str:
    """The Help ▸ Keyboard and Mouse text: the mouse mapping, then every shortcut of the table by menu."""
    mouse = ", ".join(
        f"{button} drag = {_MOUSE_HELP[mapping[button]]}" for button in ("left", "middle", "right")
    )
    lines = [
        f"Mouse: {mouse}, wheel = slices (Settings ▸ Mouse Buttons to change).",
        "Hematoma Volume: click inside a clot; Shift+click adds a part that does not touch it.",
    ]
    groups: dict[str, list[str]] = {}
    for spec in specs:
        keys = [QKeySequence(k).toString(QKeySequence.SequenceFormat.NativeText) for k in spec.shortcuts]
        keys = [k for k in keys if k]
        if keys:
            where = _plain(spec.menu.partition("/")[0]) or "Other"
            groups.setdefault(where, []).append(f"    {' or '.join(keys)}: {_plain(spec.text)}")
    for where, entries in groups.items():
        lines += ["", f"{where}:", *entries]
    return "\n".join(lines)
