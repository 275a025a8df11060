"""``python -m training prepare | train | calibrate | evaluate | export | submission | explain-eval`` (see
README.md, "The bundled model" and "Training on the full RSNA set").

Errors in the input (missing files, bad options) are reported as one line on stderr with exit code 1 or 2
(set ``TRAINING_DEBUG=1`` for full tracebacks).
Heavy modules are imported inside the commands: this module is re-imported by the phantom-generation worker
processes.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

EXIT_OK, EXIT_USAGE, EXIT_DATA = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(EXIT_USAGE)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m training", description="Train, evaluate, export and explain ICH models.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    q = sub.add_parser("prepare", help="decode a data set once into a sharded cache of model inputs")
    q.add_argument("--data", required=True, choices=("rsna", "phe-sich"))
    q.add_argument("src", help="rsna: folder with stage_2_train.csv and stage_2_train/; phe-sich: its folder")
    q.add_argument("--out", required=True, help="cache folder (an unfinished one is resumed)")
    q.add_argument("--csv", default=None, help="rsna: the label CSV (default SRC/stage_2_train.csv)")
    q.add_argument("--image-size", type=int, default=256)
    q.add_argument("--context-slices", type=int, default=0, help="neighbouring slices per side")
    q.add_argument("--dtype", choices=("uint8", "float16"), default="uint8")
    q.add_argument("--shard-size", type=int, default=1024, help="labelled slices per shard")
    q.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes (scan and decode)")
    q.add_argument("--seed", type=int, default=0, help="rsna: the patient split")

    t = sub.add_parser("train", help="train a model into a run folder")
    t.add_argument(
        "--data",
        choices=("phantom", "rsna", "real", "phe-sich"),
        default=None,
        help="phantom (default), rsna, real (PHE-SICH-CT-IDS + composites + phantoms, see --phe-sich); "
        "with --cache: the cache's kind",
    )
    t.add_argument("--out", required=True, help="run folder to create")
    t.add_argument(
        "--cache", default=None, help="a prepared cache (python -m training prepare) to stream from"
    )
    t.add_argument(
        "--resume", action="store_true", help="continue the run in --out (start it if there is none)"
    )
    t.add_argument("--overwrite", action="store_true", help="replace the run in --out")
    t.add_argument(
        "--architecture",
        default="ich_cnn",
        help="ich_cnn (default), ich_cnn_wide, efficientnet_b0 or resnet50",
    )
    t.add_argument(
        "--weights", default=None, help="pretrained backbone weights file (efficientnet_b0, resnet50)"
    )
    t.add_argument(
        "--mixed-precision", action="store_true",
        help="float16 compute on GPU (mixed_float16), bfloat16 on a CPU with AMX / AVX-512 BF16 (mixed_bfloat16)",
    )  # fmt: skip
    t.add_argument(
        "--lr-scaling", choices=("linear", "sqrt", "none"), default="linear",
        help="how the learning rate grows with the number of replicas",
    )  # fmt: skip
    t.add_argument(
        "--cpu-replicas", type=int, default=0, help="MirroredStrategy over N logical CPUs (testing)"
    )
    t.add_argument("--epochs", type=int, default=20)
    t.add_argument("--batch-size", type=int, default=32, help="batch size per replica (global: x replicas)")
    t.add_argument("--image-size", type=int, default=256, help="model input size (multiple of 8)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (cosine decay after warm-up)")
    t.add_argument("--steps-per-epoch", type=int, default=None, help="default: training slices / batch size")
    t.add_argument("--patience", type=int, default=6, help="early-stopping patience in epochs")
    t.add_argument("--dropout", type=float, default=0.3)
    t.add_argument("--no-augment", action="store_true", help="switch off training augmentation")
    t.add_argument(
        "--augment-on",
        choices=("data", "model"),
        default="data",
        help="augment in the input pipeline (CPU, default) or inside the training step on the model's device",
    )
    t.add_argument(
        "--negative-fraction", type=float, default=None, help="share of slices without blood per batch"
    )
    t.add_argument(
        "--min-sensitivity", type=float, default=0.9, help="validation sensitivity of the thresholds"
    )
    t.add_argument("--context-slices", type=int, default=0, help="neighbouring slices per side (RSNA only)")
    t.add_argument(
        "--workers", type=int, default=min(2, os.cpu_count() or 1), help="data-generation processes"
    )
    t.add_argument("--train-size", type=int, default=6000, help="phantom training slices")
    t.add_argument("--val-size", type=int, default=1200, help="phantom validation slices")
    t.add_argument("--test-size", type=int, default=1200, help="phantom held-out test slices")
    t.add_argument("--phantom-size", type=int, default=256, help="size at which phantoms are generated")
    t.add_argument("--endless", action="store_true", help="phantoms: a fresh slice for every draw")
    t.add_argument("--rsna-csv", help="stage_2_train.csv")
    t.add_argument("--rsna-dir", help="folder of the RSNA DICOM files")
    t.add_argument("--rsna-index", help="JSON index cache (written on first use, read afterwards)")
    t.add_argument(
        "--phe-sich", metavar="DIR", help="real data: the PHE-SICH-CT-IDS folder (labels.csv, images/)"
    )
    t.add_argument(
        "--png-dir", metavar="DIR", help="real data: extra brain-window PNGs in normal/ and intraparenchymal/"
    )
    t.add_argument("--composites-per-type", type=int, default=600, help="real data: composites per subtype")
    t.add_argument(
        "--composite-variant",
        choices=("broad", "phantom"),
        default="broad",
        help="real data: the composites' lesion laws (phantom: epidural and subdural as the phantom draws them, "
        "thin crescents, falx layers, isodense subdurals)",
    )
    t.add_argument("--phantom-slices", type=int, default=600, help="real data: pure phantom slices at 512 px")
    t.add_argument("--phantom-share", type=float, default=0.10, help="real data: share of phantoms per batch")
    t.add_argument(
        "--input-domain",
        choices=("brain", "wide"),
        default="brain",
        help="real data: the model input's shared domain (brain: 0-80 HU, three channels; wide: 0-110 HU with a "
        "60-110 HU channel for dense blood at the skull, trained with random saturation of the window's top)",
    )
    t.add_argument("--init-from", metavar="RUN", help="start from the best weights of an earlier run")
    t.add_argument("--verbose", type=int, choices=(0, 1, 2), default=None, help="Keras progress display")

    e = sub.add_parser("evaluate", help="evaluate a run (or a model folder) on held-out data")
    e.add_argument("path", help="run folder, or a model folder (model.json) to test on held-out phantoms")
    e.add_argument(
        "--cache", default=None, help="evaluate on this prepared cache (the model's own data kind)"
    )
    e.add_argument("--split", default="test", choices=("test", "val"))
    e.add_argument("--n", type=int, default=None, help="phantoms: number of slices (default: the run's)")
    e.add_argument("--report", default=None, help="report folder (default RUN/report)")
    e.add_argument("--phantom-size", type=int, default=256, help="model folder only: phantom generation size")
    e.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    e.add_argument("--studies", type=int, default=0, help="phantom runs: also N held-out test studies")
    e.add_argument("--study-size", type=int, default=256, help="rows = columns of the phantom studies")
    e.add_argument(
        "--phe-sich",
        metavar="DIR",
        help="model folder: judge it on the product path (held-out PHE-SICH patients, "
        "composites, 512 px phantom studies, as DICOM through the app's engine)",
    )
    e.add_argument("--phantom-studies", type=int, default=30, help="product path: phantom studies")
    e.add_argument("--record", action="store_true", help="product path: write the figures into model.json")

    c = sub.add_parser("calibrate", help="choose the thresholds on validation phantom studies (study level)")
    c.add_argument("run_dir", help="run folder, or (with --phe-sich) an exported model folder")
    c.add_argument(
        "--phe-sich",
        metavar="DIR",
        help="model folder: choose its reading and study thresholds on the validation "
        "PHE-SICH patients, composites and phantom studies, through the app's engine",
    )
    c.add_argument("--phantom-studies", type=int, default=24, help="with --phe-sich: phantom studies")
    c.add_argument("--studies", type=int, default=88, help="validation phantom studies")
    c.add_argument("--study-size", type=int, default=256, help="rows = columns of the phantom studies")
    c.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))

    d = sub.add_parser(
        "hu-check",
        help="the same real DICOM slices as HU and as 8-bit brain-window renderings, through the app",
    )
    d.add_argument("model_dir")
    d.add_argument("dicom_dir", help="a folder of real DICOM slices (e.g. RSNA files)")
    d.add_argument("--record", action="store_true", help="write the figures into model.json")

    m = sub.add_parser("submission", help="the Kaggle RSNA stage-2 CSV (ID,Label) of a test folder")
    m.add_argument("model", help="model folder (model.json) or run folder")
    m.add_argument("test_dir", help="folder of test DICOM files (e.g. stage_2_test)")
    m.add_argument("--out", required=True, help="CSV to write")
    m.add_argument("--batch-size", type=int, default=32)

    k = sub.add_parser("card", help="print the figure tables of a model folder's card (Markdown)")
    k.add_argument("model_dir")

    x = sub.add_parser("export", help="write the model folder of a run")
    x.add_argument("run_dir")
    x.add_argument("--name", default="ich-ct-cnn")
    x.add_argument("--out", required=True, help="model folder to write, e.g. resources/models/ich-ct-cnn")
    x.add_argument("--version", default="1.0")
    x.add_argument("--gradcam-layer", default=None, help="Grad-CAM layer for model.json (default: last conv)")

    q2 = sub.add_parser(
        "sequence", help="second stage: a study-level GRU head over the cached slice embeddings of a model"
    )
    q2.add_argument("model_dir", help="model folder to extend with sequence.keras (model.json sequence_head)")
    q2.add_argument("--cache", required=True, help="a prepared cache (python -m training prepare)")
    q2.add_argument("--out", default=None, help="folder for the embeddings and report (default: beside)")
    q2.add_argument("--units", type=int, default=64, help="GRU units per direction")
    q2.add_argument("--epochs", type=int, default=20)
    q2.add_argument("--seed", type=int, default=0)

    g = sub.add_parser("explain-eval", help="Grad-CAM localisation on phantoms with known masks")
    g.add_argument("--model", default=None, help="model folder (default: the bundled model)")
    g.add_argument("--per-kind", type=int, default=100, help="positive slices per hemorrhage type (>= 100)")
    g.add_argument("--dilate", type=int, default=3, help="mask dilation in pixels for the pointing game")
    g.add_argument("--phantom-size", type=int, default=256, help="size at which phantoms are generated")
    g.add_argument(
        "--record", action="store_true", help="write the figures into model.json (metrics.gradcam)"
    )
    g.add_argument("--out", default=None, help="folder for explain.json and example PNGs")
    g.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    g.add_argument("--layer", default=None, help="Grad-CAM layer (default: the model's gradcam_layer)")
    g.add_argument("--split", default="explain", choices=("explain", "val"), help="phantom seeds to use")
    return p


def _cmd_train(a: argparse.Namespace) -> int:
    from training.run_folder import TrainConfig
    from training.train import run_training

    data = a.data
    if a.cache:
        from training.cache import Cache

        kind = Cache.open(a.cache).data
        if data not in (None, kind):
            raise ValueError(f"--data {data}, but the cache {a.cache} holds {kind} data")
        data = kind
    config = TrainConfig(
        out=a.out,
        data=data or "phantom",
        cache=a.cache,
        weights=a.weights,
        mixed_precision=a.mixed_precision,
        lr_scaling=a.lr_scaling,
        cpu_replicas=a.cpu_replicas,
        architecture=a.architecture,
        epochs=a.epochs,
        batch_size=a.batch_size,
        image_size=a.image_size,
        seed=a.seed,
        lr=a.lr,
        steps_per_epoch=a.steps_per_epoch,
        patience=a.patience,
        dropout=a.dropout,
        augment=not a.no_augment,
        augment_on=a.augment_on,
        negative_fraction=a.negative_fraction,
        min_sensitivity=a.min_sensitivity,
        context_slices=a.context_slices,
        workers=a.workers,
        train_size=a.train_size,
        val_size=a.val_size,
        test_size=a.test_size,
        phantom_size=a.phantom_size,
        endless=a.endless,
        rsna_csv=a.rsna_csv,
        rsna_dir=a.rsna_dir,
        rsna_index=a.rsna_index,
        phe_sich=a.phe_sich,
        png_dir=a.png_dir,
        composites_per_type=a.composites_per_type,
        composite_variant=a.composite_variant,
        phantom_slices=a.phantom_slices,
        phantom_share=a.phantom_share,
        input_domain=a.input_domain,
        init_from=a.init_from,
        verbose=a.verbose,
    )
    run_training(config, resume=a.resume, overwrite=a.overwrite)
    return EXIT_OK


def _cmd_prepare(a: argparse.Namespace) -> int:
    import json

    from training.cache import prepare

    report = prepare(
        a.data, a.src, a.out, image_size=a.image_size, context_slices=a.context_slices, dtype=a.dtype,
        shard_size=a.shard_size, workers=a.workers, seed=a.seed, csv_path=a.csv,
    )  # fmt: skip
    short = {k: v for k, v in report.items() if k != "undecodable"}
    print(json.dumps(short, indent=2))
    print(f"cache: {a.out} (report {a.out}/report.json)")
    return EXIT_OK


def _cmd_submission(a: argparse.Namespace) -> int:
    from training.submission import write_submission

    n = write_submission(a.model, a.test_dir, a.out, batch_size=a.batch_size)
    print(
        f"wrote {a.out}: {n['images']} images of {n['series']} series ({n['unreadable']} unreadable, at the prior)"
    )
    return EXIT_OK


def _cmd_evaluate(a: argparse.Namespace) -> int:
    from pathlib import Path

    from training.evaluate import evaluate_model_folder, evaluate_run, evaluate_studies
    from training.metrics import format_table
    from training.run_folder import STUDIES_REPORT_DIR, default_report_dir

    path = Path(a.path)
    if a.cache:
        from training.evaluate import evaluate_model_folder_cache, evaluate_run

        report = Path(a.report) if a.report else (
            Path(f"report-{path.name}") if (path / "model.json").is_file() else default_report_dir(path, a.split)
        )  # fmt: skip
        if (path / "model.json").is_file():
            metrics = evaluate_model_folder_cache(path, a.cache, report, split=a.split)
        else:
            metrics = evaluate_run(path, split=a.split, report_dir=report, cache=a.cache)
        print(format_table(metrics))
        print("study level (max over slices):")
        print(format_table(metrics["study_metrics"]))
        print(f"report: {report}")
        return EXIT_OK
    if a.phe_sich and (path / "model.json").is_file():
        from training.product_eval import evaluate_folder, format_figures

        report = Path(a.report or f"report-{path.name}")
        fig = evaluate_folder(
            path,
            phe_root=a.phe_sich,
            report_dir=report,
            phantom_studies=a.phantom_studies,
            record=a.record,
            split=a.split,
        )
        print(format_figures(fig))
        print(f"report: {report / 'metrics.json'}")
        return EXIT_OK
    if (path / "model.json").is_file():
        report = Path(a.report or f"report-{path.name}")
        metrics = evaluate_model_folder(
            path, report, n=a.n or 1200, phantom_size=a.phantom_size, workers=a.workers
        )
    else:
        metrics = evaluate_run(path, split=a.split, n=a.n, report_dir=a.report)
        report = Path(a.report) if a.report else default_report_dir(path, a.split)
    print(format_table(metrics))
    print(f"report: {report}")
    if a.studies and not (path / "model.json").is_file():
        studies = evaluate_studies(path, n_studies=a.studies, size=a.study_size, workers=a.workers)
        print("held-out test studies (a study is flagged when a slice reaches the threshold):")
        print(format_table(studies))
        print(f"report: {path / STUDIES_REPORT_DIR}")
    return EXIT_OK


def _cmd_calibrate(a: argparse.Namespace) -> int:
    import json

    from training.evaluate import calibrate_run

    if a.phe_sich:
        from training.product_eval import calibrate_folder, format_figures

        out = calibrate_folder(a.run_dir, phe_root=a.phe_sich, phantom_studies=a.phantom_studies)
        print("reading: " + json.dumps(out["reading"]))
        print("study-level thresholds: " + json.dumps({k: round(v, 4) for k, v in out["thresholds"].items()}))
        print(format_figures(out["figures"]))
        return EXIT_OK
    thresholds = calibrate_run(a.run_dir, n_studies=a.studies, size=a.study_size, workers=a.workers)
    print("study-level thresholds: " + json.dumps({k: round(v, 4) for k, v in thresholds.items()}))
    return EXIT_OK


def _cmd_hu_check(a: argparse.Namespace) -> int:
    from training.product_eval import hu_versus_brain_window

    hu_versus_brain_window(a.model_dir, a.dicom_dir, record=a.record)
    return EXIT_OK


def _cmd_card(a: argparse.Namespace) -> int:
    from training.card import card_markdown

    print(card_markdown(a.model_dir), end="")
    return EXIT_OK


def _cmd_export(a: argparse.Namespace) -> int:
    from training.export import export_run

    info = export_run(a.run_dir, a.out, name=a.name, version=a.version, gradcam_layer=a.gradcam_layer)
    print(f"wrote {info.folder} (sha256 {info.sha256[:12]}…, {info.model_path.stat().st_size / 1e6:.1f} MB)")
    return EXIT_OK


def _cmd_sequence(a: argparse.Namespace) -> int:
    from training.sequence import run_sequence_stage

    run_sequence_stage(a.model_dir, a.cache, out=a.out, units=a.units, epochs=a.epochs, seed=a.seed)
    return EXIT_OK


def _cmd_explain(a: argparse.Namespace) -> int:
    from training.explain import run_explain_eval

    run_explain_eval(
        model_dir=a.model,
        per_kind=a.per_kind,
        dilate=a.dilate,
        phantom_size=a.phantom_size,
        record=a.record,
        out=a.out,
        workers=a.workers,
        layer=a.layer,
        split=a.split,
    )
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    handler = {
        "prepare": _cmd_prepare,
        "submission": _cmd_submission,
        "train": _cmd_train,
        "evaluate": _cmd_evaluate,
        "calibrate": _cmd_calibrate,
        "export": _cmd_export,
        "hu-check": _cmd_hu_check,
        "card": _cmd_card,
        "explain-eval": _cmd_explain,
        "sequence": _cmd_sequence,
    }[args.command]
    from ich_viewer.errors import IchViewerError

    if os.environ.get("TRAINING_DEBUG"):
        return handler(args)  # full tracebacks
    try:
        return handler(args)
    except ValueError as exc:
        print(f"training: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (FileNotFoundError, IchViewerError) as exc:
        print(f"training: {exc}", file=sys.stderr)
        return EXIT_DATA
    except KeyboardInterrupt:
        print("training: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
