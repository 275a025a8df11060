"""The GUI entry point: QApplication with a dark reading-room theme, the crash handler, the main window, and
the ``--screenshot`` flow of the contract."""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from PySide6.QtCore import QEvent, QObject, QSettings, QStandardPaths, Qt, QTimer
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from ich_viewer import __version__
from ich_viewer.qt.main_window import MainWindow
from ich_viewer.qt.workers import wait_for_pools

__all__ = ["ScreenshotDriver", "apply_dark_theme", "crash_report_text", "run_app"]

EXIT_OK = 0
EXIT_NOTHING_USABLE = 2
EXIT_INTERNAL = 3
SCREENSHOT_SIZE = (1600, 1000)
SCREENSHOT_TIMEOUT_S = 600.0
#: Set to ``1`` to print start-up timestamps on stderr, to ``exit`` to also quit once the first slice is painted.
STARTUP_TRACE_ENV = "ICH_VIEWER_STARTUP_TRACE"
EXIT_WAIT_MS = 15_000


def apply_dark_theme(app: QApplication) -> None:
    """Fusion style with a dark palette, as in PACS reading rooms."""
    app.setStyle("Fusion")
    palette = QPalette()
    base = QColor(24, 26, 29)
    window = QColor(36, 39, 43)
    text = QColor(225, 228, 232)
    highlight = QColor(52, 110, 170)
    roles = {
        QPalette.ColorRole.Window: window,
        QPalette.ColorRole.WindowText: text,
        QPalette.ColorRole.Base: base,
        QPalette.ColorRole.AlternateBase: window,
        QPalette.ColorRole.ToolTipBase: QColor(50, 54, 60),
        QPalette.ColorRole.ToolTipText: text,
        QPalette.ColorRole.Text: text,
        QPalette.ColorRole.Button: QColor(46, 50, 56),
        QPalette.ColorRole.ButtonText: text,
        QPalette.ColorRole.BrightText: QColor(255, 90, 90),
        QPalette.ColorRole.Highlight: highlight,
        QPalette.ColorRole.HighlightedText: QColor(255, 255, 255),
        QPalette.ColorRole.Link: QColor(110, 170, 230),
        QPalette.ColorRole.PlaceholderText: QColor(130, 136, 142),
    }
    for role, color in roles.items():
        palette.setColor(role, color)
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(110, 114, 120))
    app.setPalette(palette)


def crash_report_text(exc_type: type[BaseException], tb: TracebackType | None) -> str:
    """A crash report without patient data: versions, the exception type and the code locations only.

    The exception *message* and local variables are left out on purpose: they may contain file paths or DICOM
    values (names, IDs) of the study that was open.
    """
    frames = traceback.extract_tb(tb) if tb is not None else []
    lines = [
        f"ICH Viewer {__version__} crash report",
        f"time (UTC): {datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds')}",
        f"python {platform.python_version()} on {platform.platform()}",
        f"exception: {exc_type.__module__}.{exc_type.__qualname__} (message omitted: may hold patient data)",
        "traceback (most recent call last):",
    ]
    for frame in frames:
        lines.append(f"  {Path(frame.filename).name}:{frame.lineno} in {frame.name}")
    return "\n".join(lines) + "\n"


def _crash_dir() -> Path:
    root = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(root or tempfile.gettempdir()) / "crash-reports"


def write_crash_report(exc_type: type[BaseException], tb: TracebackType | None) -> Path | None:
    """Write :func:`crash_report_text` into the app's data folder; return its path (None if not writable)."""
    try:
        folder = _crash_dir()
        folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        path = folder / f"crash-{stamp}-{os.getpid()}.txt"
        path.write_text(crash_report_text(exc_type, tb), encoding="utf-8")
        return path
    except OSError:
        return None


def install_exception_hook(*, interactive: bool, debug: bool) -> None:
    """Route uncaught exceptions to a crash report plus a dialog (or a stderr line when not interactive)."""

    def hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            QApplication.quit()
            return
        report = write_crash_report(exc_type, tb)
        if debug:
            traceback.print_exception(exc_type, exc, tb)
        where = f" A crash report was written to {report}." if report else ""
        line = f"ich-viewer: internal error: {exc_type.__name__}.{where}"
        print(line, file=sys.stderr)
        if interactive and QApplication.instance() is not None:
            QMessageBox.critical(
                None,
                "ICH Viewer — unexpected error",
                f"An unexpected error occurred ({exc_type.__name__}). The viewer keeps running, but the last "
                f"action may not have completed.{where}",
            )
        elif not interactive:
            QApplication.exit(EXIT_INTERNAL)

    sys.excepthook = hook


class ScreenshotDriver:
    """Waits until the window is ready (everything visible done), saves ``window.grab()`` and quits."""

    def __init__(self, window: MainWindow, out: str | Path, timeout_s: float = SCREENSHOT_TIMEOUT_S) -> None:
        self.window = window
        self.out = Path(out)
        self.deadline = time.monotonic() + timeout_s
        self.exit_code: int | None = None
        self._ready_polls = 0
        self.timer = QTimer()
        self.timer.setInterval(100)
        self.timer.timeout.connect(self._on_timer_timeout)
        window.load_failed.connect(self._on_window_load_failed)

    def start(self) -> None:
        """Begin polling."""
        self.timer.start()

    def _finish(self, code: int) -> None:
        if self.exit_code is not None:
            return
        self.exit_code = code
        self.timer.stop()
        QApplication.exit(code)

    def _on_window_load_failed(self, message: str) -> None:
        print(f"ich-viewer: {message}", file=sys.stderr)
        self._finish(EXIT_NOTHING_USABLE)

    def _on_timer_timeout(self) -> None:
        if time.monotonic() > self.deadline:
            print("ich-viewer: timed out waiting for the window to be ready", file=sys.stderr)
            self._finish(EXIT_INTERNAL)
            return
        if not self.window.is_ready():
            self._ready_polls = 0
            return
        self._ready_polls += 1
        if self._ready_polls < 3:  # let layouts and repaints settle
            return
        self.out.parent.mkdir(parents=True, exist_ok=True)
        if not self.window.grab().save(str(self.out), "PNG"):
            print(f"ich-viewer: could not write {self.out}", file=sys.stderr)
            self._finish(EXIT_INTERNAL)
            return
        print(f"wrote {self.out}", file=sys.stderr)
        self._finish(EXIT_OK)


class StartupTrace(QObject):
    """Prints ``ich-viewer-startup: shown <epoch s>`` at the first paint of ``widget`` (the slice view's viewport)
    and ``first-slice <epoch s>`` at its first paint while ``has_slice()``, on stderr (``ICH_VIEWER_STARTUP_TRACE``;
    used by the start-up benchmark). With ``exit_on_first_slice`` the app quits right after the first slice is
    painted."""

    def __init__(self, widget: QWidget, has_slice: Callable[[], bool], *, exit_on_first_slice: bool) -> None:
        super().__init__(widget)
        self.has_slice = has_slice
        self.exit_on_first_slice = exit_on_first_slice
        self.shown = False
        widget.installEventFilter(self)

    def eventFilter(self, obj, ev) -> bool:
        if ev.type() == QEvent.Type.Paint:
            if not self.shown:
                self.shown = True
                print(f"ich-viewer-startup: shown {time.time():.6f}", file=sys.stderr, flush=True)
            if self.has_slice():
                print(f"ich-viewer-startup: first-slice {time.time():.6f}", file=sys.stderr, flush=True)
                obj.removeEventFilter(self)
                if self.exit_on_first_slice:
                    QTimer.singleShot(0, lambda: QApplication.exit(EXIT_OK))
        return False


def _refuse_missing(window: MainWindow, path: str, screenshot: str | None) -> bool:
    """For a PATH that does not exist: with ``--screenshot`` print one line, close and return True (exit 2);
    otherwise show the error in the window's notice and return False."""
    if Path(path).exists():
        return False
    message = f"no such file or folder: {path}"
    if screenshot:
        print(f"ich-viewer: {message}", file=sys.stderr)
        window.close()
        return True
    window.notice.show_notice(message, level="error")
    return False


def run_app(args: argparse.Namespace) -> int:
    """Run the GUI for the parsed command line (``path, demo, screenshot, no_ai, slice, heatmap, model, seed, layout,
    beside, debug``)."""
    screenshot = getattr(args, "screenshot", None)
    debug = bool(getattr(args, "debug", False))
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("ICH Viewer")
    app.setOrganizationName("ICH Viewer")
    app.setApplicationVersion(__version__)
    apply_dark_theme(app)
    install_exception_hook(interactive=not screenshot, debug=debug)

    settings = None
    temp_settings: Path | None = None
    if screenshot:
        # a screenshot never depends on, nor changes, the user's preferences
        fd, name = tempfile.mkstemp(prefix="ich-viewer-settings-", suffix=".ini")
        os.close(fd)
        temp_settings = Path(name)
        settings = QSettings(name, QSettings.Format.IniFormat)
    window = MainWindow(settings=settings)
    window.study.requested_slice = getattr(args, "slice", None)
    layout = getattr(args, "layout", None)
    if layout:
        window.viewer.set_layout(layout)
    window.configure_ai(enabled=not getattr(args, "no_ai", False), model_dir=getattr(args, "model", None))

    driver = None
    if screenshot:
        window.setAttribute(Qt.WidgetAttribute.WA_DontShowOnScreen, False)
        window.resize(*SCREENSHOT_SIZE)
        driver = ScreenshotDriver(window, screenshot)
        show_heatmap = bool(getattr(args, "heatmap", False))

        def on_prediction(prediction) -> None:
            if window.study.requested_slice is None and prediction.top_slices:
                # without --slice, show the model's most suspicious slice
                window.study.set_index(int(prediction.top_slices[0]), user=True)
            if show_heatmap:
                window.ai.set_heatmap_visible(True)

        window.ai.prediction_ready.connect(on_prediction)
    trace = os.environ.get(STARTUP_TRACE_ENV, "")
    if trace:
        view = window.slice_view
        window.startup_trace = StartupTrace(
            view.viewport(), lambda: view.slice_hu is not None, exit_on_first_slice=trace == "exit"
        )
    window.show()

    path = getattr(args, "path", None)
    if trace != "exit":
        # TensorFlow and the model load in the background once the window (and a study's first image) shows
        window.ai.enable_preload(now=not (path or getattr(args, "demo", False)))
    if getattr(args, "demo", False):
        QTimer.singleShot(0, lambda: window.open_demo(seed=getattr(args, "seed", None)))
    elif path:
        if _refuse_missing(window, path, screenshot):
            return EXIT_NOTHING_USABLE
        if Path(path).exists():
            QTimer.singleShot(0, lambda: window.open_path(path))
    elif screenshot:
        driver = None
        QTimer.singleShot(300, lambda: _grab_empty(window, screenshot))
    beside = getattr(args, "beside", None)
    if beside:
        if _refuse_missing(window, beside, screenshot):
            return EXIT_NOTHING_USABLE
        if Path(beside).exists():
            QTimer.singleShot(0, lambda: window.viewer.open_beside(beside, switch=not layout))
    if driver is not None:
        driver.start()
    code = app.exec()
    if screenshot:
        window.close()
        if temp_settings is not None:
            temp_settings.unlink(missing_ok=True)
    if not wait_for_pools(EXIT_WAIT_MS):
        # a worker stuck in a native call (e.g. TensorFlow still importing) would crash the interpreter's
        # shutdown; everything the user asked for is done, so leave without it
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(int(code))
    return int(code)


def _grab_empty(window: MainWindow, out: str) -> None:
    ok = window.grab().save(out, "PNG")
    QApplication.exit(EXIT_OK if ok else EXIT_INTERNAL)
