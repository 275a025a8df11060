"""The window's side panels that are not the AI's (the series panel)."""
