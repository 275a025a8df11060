"""``ich-viewer listen``: a C-STORE SCP that stores what it receives and triages each complete CT series;
exits cleanly on SIGINT/SIGTERM."""

from __future__ import annotations

import argparse

from ich_viewer.commands._common import EXIT_OK, UsageError

HELP = (
    "Receive studies by DICOM C-STORE (bound to 127.0.0.1 unless --host), triage each complete CT series with "
    "the model and keep a worklist (see 'ich-viewer worklist'). Stops on SIGINT/SIGTERM."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=int, default=None, help="TCP port (default 11112)")
    p.add_argument("--ae-title", default=None, help="our AE title (default ICHVIEWER)")
    p.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; others need --allow)"
    )
    p.add_argument(
        "--allow",
        nargs="+",
        action="extend",
        default=[],
        metavar="AET@HOST",
        help="accept only these calling AE titles (AET@HOST, or AET from any host); others are rejected",
    )
    p.add_argument("--store", metavar="DIR", help="store folder (default: the app's data folder)")
    p.add_argument(
        "--idle", type=float, default=None, metavar="S", help="a series is complete after S s idle (10)"
    )
    p.add_argument("--model", metavar="DIR", help="model folder (default: the bundled model)")
    p.add_argument("--no-triage", action="store_true", help="store only, do not run the model")
    p.add_argument("--tls-cert", metavar="PEM", help="TLS certificate (DICOM over TLS)")
    p.add_argument("--tls-key", metavar="PEM", help="TLS private key")


def run(args: argparse.Namespace) -> int:
    import logging
    import signal
    import sys
    import threading
    from pathlib import Path

    from ich_viewer.pacs.config import DEFAULT_AE_TITLE, DEFAULT_IDLE_S, DEFAULT_PORT, default_store_dir
    from ich_viewer.pacs.listener import Listener, ListenerConfig, allow_list
    from ich_viewer.pacs.servers import ServerSyntaxError, valid_ae_title

    try:
        ae_title = valid_ae_title(args.ae_title) if args.ae_title is not None else DEFAULT_AE_TITLE
        allow = allow_list(args.allow)
    except ServerSyntaxError as exc:
        raise UsageError(str(exc)) from None
    port = DEFAULT_PORT if args.port is None else args.port
    if not 0 <= port <= 65535:
        raise UsageError("--port must be 0 to 65535")
    idle = DEFAULT_IDLE_S if args.idle is None else args.idle
    if idle < 0:
        raise UsageError("--idle must be >= 0")
    if bool(args.tls_cert) != bool(args.tls_key):
        raise UsageError("--tls-cert and --tls-key go together")
    if args.model and args.no_triage:
        raise UsageError("--model and --no-triage exclude each other")
    if args.model:
        from ich_viewer.inference.model_folder import verify_model_folder

        verify_model_folder(args.model)  # a broken model fails now, not at the first study
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    config = ListenerConfig(
        store=Path(args.store) if args.store else default_store_dir(),
        ae_title=ae_title,
        host=args.host,
        port=port,
        allow=allow,
        idle_s=idle,
        model_dir=Path(args.model) if args.model else None,
        tls=(Path(args.tls_cert), Path(args.tls_key)) if args.tls_cert else None,
        triage=not args.no_triage,
        debug=args.debug,
    )
    stop = threading.Event()

    def on_signal(signum, _frame) -> None:
        stop.set()

    import faulthandler

    faulthandler.register(
        signal.SIGUSR1, all_threads=True
    )  # `kill -USR1 PID`: every thread's stack on stderr
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    listener = Listener(config).start()
    try:
        tls = " (TLS)" if config.tls else ""
        print(
            f"listening on {config.host}:{listener.port}{tls} as {ae_title}, store {config.store}",
            flush=True,
        )
        listener.wait(stop)
    finally:
        listener.stop()
    print(
        f"stopped; {listener.stats['stored']} instances stored, {listener.stats['triaged']} series triaged",
        flush=True,
    )
    return EXIT_OK
