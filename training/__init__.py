"""Training, evaluation and export of ICH models (phantom or RSNA data). Imports ich_viewer, never the reverse."""
