"""The views of the window: the slice view, the slice slider, the window/level controls and the notice bar."""
