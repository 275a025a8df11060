"""The PACS side of the window (thin widgets over :mod:`ich_viewer.pacs`): File ▸ Open from PACS, the Worklist
dock, File ▸ Send AI Results / Export AI Results as DICOM / Export Anonymised Study, Settings ▸ PACS."""
