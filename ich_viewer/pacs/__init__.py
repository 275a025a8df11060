"""DICOM networking, Qt-free: PACS query/retrieve/store (DIMSE with pynetdicom, DICOMweb with dicomweb-client),
the C-STORE listener that triages what it receives, and its SQLite worklist store.

Modules
-------
:mod:`~ich_viewer.pacs.servers`
    ``dicomweb:http://HOST:PORT/PATH`` / ``dimse:AET@HOST:PORT`` parsed into a :class:`~ich_viewer.pacs.servers.Server`.
:mod:`~ich_viewer.pacs.client`
    ``echo``, ``find_studies``, ``get_study``, ``store`` against a server.
:mod:`~ich_viewer.pacs.store`
    The SQLite (WAL) store of received studies, series, instances and their triage status.
:mod:`~ich_viewer.pacs.listener`
    The C-STORE SCP and its triage worker.
:mod:`~ich_viewer.pacs.config`
    Default AE title, port and folders (the app's cache and data folders).
"""
