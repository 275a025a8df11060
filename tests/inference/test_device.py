"""Device detection and the quiet TensorFlow import."""

from __future__ import annotations

import os

import pytest

from ich_viewer.inference.device import _quiet_fd2, describe_device


def test_device_string():
    device = describe_device()
    assert device == "CPU" or (device.startswith("GPU:0 (") and device.endswith(")"))


def test_quiet_block_hides_c_level_stderr(capfd):
    with _quiet_fd2():
        os.write(2, b"noise from C++\n")
    assert "noise" not in capfd.readouterr().err


def test_quiet_block_replays_stderr_when_it_fails(capfd):
    with pytest.raises(RuntimeError), _quiet_fd2():
        os.write(2, b"why it broke\n")
        raise RuntimeError("import failed")
    assert "why it broke" in capfd.readouterr().err
