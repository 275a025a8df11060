"""``ich-viewer pacs echo|find|get SERVER``: DICOM verification, study query and study retrieve (DIMSE or
DICOMweb). A SERVER is ``dicomweb:http://HOST:PORT/PATH`` or ``dimse:AET@HOST:PORT``."""

from __future__ import annotations

import argparse
import sys

from ich_viewer.commands._common import EXIT_OK, UsageError, print_json

HELP = (
    "Query and retrieve from a PACS: 'pacs echo SERVER', 'pacs find SERVER --json', "
    "'pacs get SERVER --study UID --json' (SERVER: dicomweb:http://HOST:PORT/PATH or dimse:AET@HOST:PORT)."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "action", choices=("echo", "find", "get"), help="echo: C-ECHO/QIDO; find: studies; get: one study"
    )
    p.add_argument("server", help="dicomweb:http://HOST:PORT/PATH or dimse:AET@HOST:PORT")
    p.add_argument("--ae-title", default=None, help="our AE title (default ICHVIEWER)")
    p.add_argument("--json", action="store_true", help="print the contract's JSON on stdout")
    q = p.add_argument_group("find")
    q.add_argument("--patient-id", metavar="ID", help="(0010,0020) Patient ID; wildcards * and ? allowed")
    q.add_argument("--patient-name", metavar="PAT", help="(0010,0010) Patient's Name, e.g. 'DOE*'")
    q.add_argument("--date", metavar="FROM-TO", help="study date: YYYYMMDD, FROM-TO, FROM- or -TO")
    q.add_argument("--modality", metavar="CT", help="a modality in the study, e.g. CT")
    g = p.add_argument_group("get")
    g.add_argument("--study", metavar="UID", help="(0020,000D) Study Instance UID to retrieve")
    g.add_argument(
        "--dest", metavar="DIR", help="parent folder of the retrieved study (default: the app's cache)"
    )
    g.add_argument(
        "--move-port",
        type=int,
        metavar="N",
        help="port of our temporary C-MOVE destination where C-GET is refused",
    )


def run(args: argparse.Namespace) -> int:
    from ich_viewer.pacs import client
    from ich_viewer.pacs.config import DEFAULT_AE_TITLE, default_retrieve_dir
    from ich_viewer.pacs.servers import ServerSyntaxError, parse_server, valid_ae_title

    try:
        server = parse_server(args.server)
        ae_title = valid_ae_title(args.ae_title) if args.ae_title is not None else DEFAULT_AE_TITLE
        date = client.normalise_date_range(args.date)
    except (ServerSyntaxError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    if args.action != "find" and any((args.patient_id, args.patient_name, args.date, args.modality)):
        raise UsageError("--patient-id, --patient-name, --date and --modality belong to 'pacs find'")
    if args.action != "get" and (args.study or args.dest or args.move_port):
        raise UsageError("--study, --dest and --move-port belong to 'pacs get'")
    if args.action == "echo":
        client.echo(server, ae_title=ae_title)
        if args.json:
            print_json({"server": str(server), "ok": True})
        else:
            print(f"{server} answered")
        return EXIT_OK
    if args.action == "find":
        studies = client.find_studies(
            server,
            patient_id=args.patient_id,
            patient_name=args.patient_name,
            date_range=date,
            modality=args.modality,
            ae_title=ae_title,
        )
        if args.json:
            print_json({"studies": studies})
        else:
            for s in studies:
                print(
                    f"{s['study_date'] or '--------'}  {s['patient_id']:<16} {s['patient_name']:<24} "
                    f"{'/'.join(s['modalities']):<6} {s['n_series']:>3} series {s['n_instances']:>5} images  "
                    f"{s['description']}  {s['study_uid']}"
                )
            print(f"{len(studies)} studies")
        return EXIT_OK
    if not args.study:
        raise UsageError("pacs get needs --study UID")
    if args.move_port is not None and not 1 <= args.move_port <= 65535:
        raise UsageError("--move-port must be 1 to 65535")
    dest = args.dest or default_retrieve_dir()

    def progress(done: int, total: int) -> None:
        if not args.json and sys.stderr.isatty():
            sys.stderr.write(f"\rretrieved {done}/{total or '?'}")
            sys.stderr.flush()

    result = client.get_study(
        server, args.study, dest, ae_title=ae_title, progress=progress, move_port=args.move_port
    )
    if args.json:
        print_json(result)
    else:
        print(f"retrieved {result['n_instances']} instances into {result['folder']}")
    return EXIT_OK
