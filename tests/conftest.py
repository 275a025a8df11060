"""Shared pytest set-up: offscreen Qt, quiet TensorFlow, a single-thread-friendly environment."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
