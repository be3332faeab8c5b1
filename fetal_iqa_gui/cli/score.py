"""`fetal-iqa score`: score sweep files headlessly, one case after another, with progress on stderr."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..base.errors import FetalIqaError, ScoringError
from .helptext import add_command
from .progress import ProgressBar
from ..base.text import counted, shown
from .options import add_engine_options, add_model_options, bounded_int

if TYPE_CHECKING:  # the core loads when a command runs, not for --help
    from ..runs.batch import RunOutputs

EXIT_OK, EXIT_ERROR, EXIT_BAD_INPUT = 0, 1, 2


def add_score_command(commands) -> None:
    score = add_command(
        commands, "score", "score every frame of sweep files or folders",
        "Score every frame of sweep files or folders of them. Nothing is ever written onto an input, "
        "and no existing file is replaced without --force. With --out-dir a run is resumable: a rerun skips the "
        "cases that finished (every output asked for written; a marker in OUT/.done/ says so) and redoes the rest.",
        (("every sweep of `fetal-iqa synth cases` by the demo model; each sweep's best frame exported",
          "score cases/images/stacked_fetal_ultrasound --model demo --out-dir scores --export-best best"),
         ("one sweep's scores as CSV on standard output",
          "score cases/images/stacked_fetal_ultrasound/*.mha --model demo --out -"),
         ("the challenge's outputs of the demo segmentation model (then: fetal-iqa evaluate --challenge)",
          "score cases/images/stacked_fetal_ultrasound --model demo-seg --out-dir seg-scores "
          "--challenge-output predictions")))
    score.add_argument("paths", nargs="+", type=Path, metavar="PATH",
                       help="a sweep file, a folder of them (not searched below), or a DICOM series' folder")
    outputs = score.add_mutually_exclusive_group()
    outputs.add_argument("--out", type=Path, help="CSV of one sweep's scores (one input); '-': standard output")
    outputs.add_argument("--out-dir", type=Path, help="one CSV per sweep plus summary.csv (any number of inputs)")
    score.add_argument("--challenge-output", type=Path, metavar="DIR",
                       help="write the challenge's per-case frame number and mask")
    score.add_argument("--export-best", type=Path, metavar="DIR",
                       help="export each sweep's best frame (PNG + sidecar; named '..._below-threshold' "
                       "when even the best is not good)")
    score.add_argument("--heat-maps", action="store_true",
                       help="with --export-best: each exported frame's heat map beside it ('..._heatmap.png', "
                       "the frame with the map over it, labelled with its method: an explanation aid, not a "
                       "measurement; classification models only)")
    score.add_argument("--dicom-out", type=Path, metavar="DIR",
                       help="write each sweep's chosen frame as a DICOM image (Ultrasound Image for ultrasound DICOM "
                       "inputs, else Secondary Capture) and a DICOM Structured Report of the measurements (TID 1500: "
                       "AC in mm, the ellipse, score, threshold, model), in the input's study, for a PACS "
                       "(default: none)")
    score.add_argument("--force", action="store_true",
                       help="replace existing outputs: with --out, an existing CSV; with --out-dir, redo the "
                       "finished cases too, replacing their outputs (an input is never replaced)")
    score.add_argument("--sidecar-name-only", action="store_true",
                       help="exported sidecars name the sweep file without its folders (which may name patients)")
    score.add_argument("--blank-outside-image", action="store_true",
                       help="exported frames (--export-best, --dicom-out) are 0 outside the ultrasound image, which blanks the "
                       "text scanners burn in around it (institution, date, identifiers): outside the DICOM's "
                       "ultrasound regions, else outside the ACOUSLIC-AI probe's field of view (744 x 562 px frames "
                       "only); a case with neither is refused before it is scored. The sidecar says what was "
                       "blanked (default: off, the frames as recorded)")
    score.add_argument("--no-cache", action="store_true", help="neither read nor write the score cache")
    add_model_options(score, threshold=True)
    add_engine_options(score)
    cluster = score.add_argument_group("Ray (pip install 'fetal-iqa[cluster]')")
    cluster.add_argument("--ray", action="store_true",
                         help="score the cases on Ray workers, each with its own copy of the model (needs --out-dir; "
                         "inputs and outputs on storage every worker sees)")
    cluster.add_argument("--ray-address", metavar="ADDR",
                         help="join this Ray cluster (implies --ray; default: start a local Ray for the run)")
    cluster.add_argument("--ray-workers", type=bounded_int(1, 100_000), metavar="N",
                         help="workers (default: as many as the CPUs hold at --threads each, default 4; "
                         "with --device cuda, one per GPU)")
    score.set_defaults(handler=cmd_score)


def cmd_score(args) -> int:
    """Every refusal (an output onto an input, an existing file, a name clash) comes before the
    model loads and before anything is written."""
    from ..runs.batch import RunOutputs, check_case_ids, check_outputs, expand_paths
    from .options import load_engine
    paths = expand_paths(args.paths)
    if args.out and len(paths) != 1:
        print("error: --out takes one sweep; use --out-dir for several", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.heat_maps and not args.export_best:
        print("error: --heat-maps goes with --export-best (the maps lie beside the exported frames)", file=sys.stderr)
        return EXIT_BAD_INPUT
    on_ray = args.ray or args.ray_address is not None
    if on_ray and not args.out_dir:
        print("error: --ray needs --out-dir (a resumable folder of outputs)", file=sys.stderr)
        return EXIT_BAD_INPUT
    folders: tuple[Path | None, ...] = (args.out_dir, args.export_best, args.challenge_output, args.dicom_out)
    if on_ray:  # workers do not share our working folder: every path absolute
        from ..runs.cluster import import_ray
        import_ray()
        paths = [Path(os.path.abspath(path)) for path in paths]
        folders = tuple(_absolute(folder) for folder in folders)
    csv_to_stdout = args.out == Path("-")
    out_dir, export_dir, challenge_dir, dicom_dir = folders
    outputs = RunOutputs(None if csv_to_stdout else args.out, out_dir, export_dir, challenge_dir, args.force,
                         args.sidecar_name_only, args.blank_outside_image, dicom_dir, args.heat_maps)
    check_case_ids(paths)
    check_outputs(paths, outputs)
    if on_ray:
        return score_on_ray(args, paths, outputs)
    engine = load_engine(args, first_case=paths[0])
    if args.heat_maps and engine.model.is_segmentation:
        print("error: --heat-maps explains a classification model's score; this model segments", file=sys.stderr)
        return EXIT_BAD_INPUT
    return score_files(engine, paths, outputs, use_cache=not args.no_cache, threshold=args.threshold,
                       csv_to_stdout=csv_to_stdout)


def score_files(engine, paths: list[Path], outputs: RunOutputs, use_cache: bool = True,
                threshold: float | None = None, csv_to_stdout: bool = False) -> int:
    """Score each file and write its outputs; a failing file is reported and the others go on.
    `csv_to_stdout` (`--out -`): the scores CSV goes to standard output, so the summary line goes to stderr.

    Exit status: 0, or the highest of the failures' (2 for a bad input, 1 for an output that could
    not be written). A model that gives no usable scores stops the run: it would fail every case.
    """
    from ..runs.batch import plan_cases, prepare_folders, rebuild_summary
    from ..review.export import ModelInfo
    model = ModelInfo.of(engine.model)
    cases = plan_cases(paths, outputs, model, engine.variant, threshold)
    prepare_folders(paths, outputs)
    failures = []
    try:
        for case in cases:
            if case.finished:
                say(f"skipping {shown(case.path.name)}: finished earlier ({shown(case.marker)})")
                continue
            try:
                result = score_file(engine, case, use_cache, threshold)
            except ScoringError:
                raise
            except FetalIqaError as error:
                say_error(error)
                failures.append(error)
                continue
            if csv_to_stdout:
                sys.stdout.flush()
                sys.stdout.buffer.write(result.scored.csv_bytes())
                say(describe_case(case.path, result.rows, result.scored.threshold))
            else:
                print(describe_case(case.path, result.rows, result.scored.threshold))
    finally:
        if outputs.out_dir:
            rebuild_summary(outputs.out_dir)
    if failures:
        print(f"{len(failures)} of {counted(len(paths), 'input')} failed.", file=sys.stderr)
    return max((error.exit_code for error in failures), default=EXIT_OK)


def score_on_ray(args, paths: list[Path], outputs: RunOutputs) -> int:
    """`score_files` on Ray workers: the same planning, per-case outputs and summary (the workers
    write each case's outputs with the same function), progress over cases as they finish."""
    from ..runs.batch import plan_cases, prepare_folders, rebuild_summary
    from ..runs.cluster import RayPool
    from .options import CLI_WORDS, engine_settings, model_spec
    failures = []
    with RayPool(model_spec(args), engine_settings(args), args.ray_address, args.ray_workers, gpu=args.device == "cuda",
                 use_cache=not args.no_cache, say=say, first_case=paths[0], threshold=args.threshold,
                 words=CLI_WORDS) as pool:
        info = pool.model_info()
        for warning in info.warnings:
            say(f"warning: {warning}")
        model = info.loaded_model()
        if model.is_demo:
            say(f"note: {model.name}.")
        cases = plan_cases(paths, outputs, model, info.variant, args.threshold)
        prepare_folders(paths, outputs)
        for case in cases:
            if case.finished:
                say(f"skipping {shown(case.path.name)}: finished earlier ({shown(case.marker)})")
        todo = [case for case in cases if not case.finished]
        progress = ProgressBar(f"{len(todo)} cases on {pool.size} Ray workers [{info.variant}]", len(todo))
        try:
            for done, result in enumerate(pool.score(todo), 1):
                if result.error:
                    say(f"\nerror: {shown(result.error)}" if progress.tty else f"error: {shown(result.error)}")
                    failures.append(result)
                    if result.stops_run:
                        return result.exit_code
                else:
                    print(describe_case(result.path, result.rows or [], result.threshold), flush=True)
                progress.update(done, extra=f"{len(failures)} failed" if failures else "")
        finally:
            progress.close()
            assert outputs.out_dir is not None  # --ray needs --out-dir
            rebuild_summary(outputs.out_dir)
    if failures:
        say(f"{len(failures)} of {len(paths)} inputs failed.")
    return max((failure.exit_code for failure in failures), default=EXIT_OK)


def say(text: str) -> None:
    print(text, file=sys.stderr)


def say_error(error: Exception) -> None:
    """One `error:` line on stderr; the names in it cannot reach the terminal as control characters."""
    say(f"error: {shown(error)}")


def _absolute(path: Path | None) -> Path | None:
    return Path(os.path.abspath(path)) if path else None


def score_file(engine, case, use_cache: bool, threshold: float | None = None):
    """One planned case loaded, scored (from the cache where it has the scores) and written, with a progress bar."""
    from ..engine.scoring import Throughput
    from ..runs.job import CaseJob
    progress = throughput = None

    def on_open(scored):
        nonlocal progress, throughput
        said = engine.for_case(scored.case).description  # the case's view: the patches it skips (made by the job)
        progress = ProgressBar(f"{shown(case.path.name)} [{said}]", scored.case.layout.n_images)
        throughput = Throughput(scored.n_pending)

    def on_batch(batch, scored):
        assert progress is not None and throughput is not None  # made by `on_open`, called first
        throughput.add(len(batch.frames))
        if batch.notice:
            print(f"\nnote: {batch.notice}", file=sys.stderr)
        progress.update(scored.n_scored, extra=f"{throughput.frames_per_second:.1f} frames/s")

    try:
        result = CaseJob(engine, case.path, threshold, use_cache, plan=case).run(on_open, on_batch)
        assert progress is not None  # `on_open` is called before scoring
        progress.update(result.scored.n_scored)
    finally:
        if progress is not None:
            progress.close()
    return result


def describe_case(path: Path, rows: list[dict], threshold: float) -> str:
    parts = []
    for row in rows:
        if row["best_frame"] == "":
            parts.append(f"sweep {row['sweep']}: no image frames")
            continue
        text = f"sweep {row['sweep']}: frame {row['best_frame']} ({float(row['score']):.3f}"
        text += ")" if row["good"] else f", below the threshold {threshold:.3f}: no good frame)"
        parts.append(text + (f" AC {row['ac_mm']} mm" if row["ac_mm"] else ""))
    return f"{shown(path.name)}: best " + "; ".join(parts)
