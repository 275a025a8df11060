"""Session fixtures of the inference tests: one tiny model folder and its loaded engine."""

from __future__ import annotations

import pytest

from tests.inference.helpers import write_tiny_model_folder


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A valid tiny model folder (input 32x32x3, agreed layer names), written once per session."""
    return write_tiny_model_folder(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="session")
def tiny_engine(tiny_model_dir):
    """The :class:`InferenceEngine` of :func:`tiny_model_dir`."""
    from ich_viewer.inference.engine import InferenceEngine

    return InferenceEngine.load(tiny_model_dir)
