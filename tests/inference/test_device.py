"""Device detection and the one TensorFlow import (``ich_viewer.inference.tf_runtime``)."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import textwrap
import threading

import pytest

from ich_viewer.inference import tf_runtime
from ich_viewer.inference.device import describe_device
from ich_viewer.inference.tf_runtime import import_keras, import_tensorflow, paused_gc, quiet_fd2


def test_device_string():
    device = describe_device()
    assert device == "CPU" or (device.startswith("GPU:0 (") and device.endswith(")"))


def test_quiet_block_hides_c_level_stderr(capfd):
    with quiet_fd2():
        os.write(2, b"noise from C++\n")
    assert "noise" not in capfd.readouterr().err


def test_quiet_block_replays_stderr_when_it_fails(capfd):
    with pytest.raises(RuntimeError), quiet_fd2():
        os.write(2, b"why it broke\n")
        raise RuntimeError("import failed")
    assert "why it broke" in capfd.readouterr().err


def test_paused_gc_restores_the_previous_state():
    was = gc.isenabled()
    try:
        gc.enable()
        with paused_gc():
            assert not gc.isenabled()
        assert gc.isenabled()
        gc.disable()
        with paused_gc():
            pass
        assert not gc.isenabled()
    finally:
        (gc.enable if was else gc.disable)()


def test_import_is_idempotent_and_thread_safe():
    results: list[object] = []
    threads = [threading.Thread(target=lambda: results.append(import_tensorflow())) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    tf = import_tensorflow()
    assert [r is tf for r in results] == [True] * 4
    assert tf is sys.modules["tensorflow"]
    assert import_keras() is sys.modules["keras"]
    assert tf_runtime.gpu_names() == tf_runtime.gpu_names()


# A fresh interpreter: the first import is the one that pauses, collects and freezes.
_FIRST_IMPORT = textwrap.dedent(
    """
    import gc, json, os, sys, weakref

    gc.disable()  # no automatic collection may free the cycle before the import (that would hide the bug)

    class Garbage:
        pass

    a, b = Garbage(), Garbage()
    a.other, b.other = b, a  # a reference cycle: only the cyclic collector can free it
    alive = weakref.ref(a)
    del a, b

    from ich_viewer.inference.tf_runtime import import_tensorflow

    before = gc.get_freeze_count()
    import_tensorflow()
    print(json.dumps({
        "garbage_alive": alive() is not None,
        "frozen_before": before,
        "frozen_after": gc.get_freeze_count(),
        "gc_enabled_after": gc.isenabled(),
        "tf_cpp_min_log_level": os.environ.get("TF_CPP_MIN_LOG_LEVEL"),
        "imported": "tensorflow" in sys.modules and "keras" in sys.modules,
    }))
    """
)


def test_first_import_collects_before_it_freezes(tmp_path):
    env = {
        k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", tf_runtime.SHOW_TF_LOGS_ENV)
    }
    proc = subprocess.run(
        [sys.executable, "-c", _FIRST_IMPORT],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["imported"]
    assert report["frozen_before"] == 0
    assert report["frozen_after"] > 10_000  # TensorFlow's and Keras's long-lived objects are frozen
    assert not report["garbage_alive"], (
        "a garbage cycle from before the import was frozen instead of collected"
    )
    assert report["gc_enabled_after"] is False  # the caller's collector state is restored, not forced on
    assert report["tf_cpp_min_log_level"] == "2"
    assert proc.stderr == ""  # TensorFlow's C++ start-up lines do not reach stderr
