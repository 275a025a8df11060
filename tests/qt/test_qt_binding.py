"""Guards against known-bad Qt binding releases."""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal


class _Emitter(QObject):
    fired = Signal(object)


def test_signal_emit_keeps_the_reference_count_of_true(qapp):
    # PySide6 6.12.0 returns True from SignalInstance.emit() without a new reference: every emit (pyqtgraph
    # emits on each mouse move and plot update) then drops one reference to True, and the process dies with
    # "bool_dealloc: deallocating True or False". pyproject.toml excludes that release.
    emitter = _Emitter()
    emitter.fired.connect(lambda _value: None)
    before = sys.getrefcount(True)
    for _ in range(1000):
        emitter.fired.emit(emitter)
    assert sys.getrefcount(True) - before > -100
