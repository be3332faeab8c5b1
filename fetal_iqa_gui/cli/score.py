"""`fetal-iqa score`: score sweep files headlessly, one case after another, with progress on stderr."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import FetalIqaError
from ..progress import ProgressBar
from ..text import counted
from .options import add_engine_options, add_model_options

EXIT_OK, EXIT_ERROR, EXIT_BAD_INPUT = 0, 1, 2


def add_score_command(commands) -> None:
    score = commands.add_parser("score", help="score every frame of sweep files or folders",
                                description="Score every frame of sweep files or folders of them. With --out-dir, a "
                                "rerun skips the cases that finished (resumable).")
    score.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    outputs = score.add_mutually_exclusive_group()
    outputs.add_argument("--out", type=Path, help="CSV of one sweep's scores (one input)")
    outputs.add_argument("--out-dir", type=Path, help="one CSV per sweep plus summary.csv (any number of inputs)")
    score.add_argument("--challenge-output", type=Path, metavar="DIR",
                       help="write the challenge's per-case frame number and mask")
    score.add_argument("--export-best", type=Path, metavar="DIR",
                       help="export each sweep's best frame (PNG + sidecar; named '..._below-threshold' "
                       "when even the best is not good)")
    score.add_argument("--sidecar-name-only", action="store_true",
                       help="exported sidecars name the sweep file without its folders (which may name patients)")
    score.add_argument("--no-cache", action="store_true", help="neither read nor write the score cache")
    add_model_options(score)
    add_engine_options(score)
    score.set_defaults(handler=cmd_score)


def cmd_score(args) -> int:
    from ..batch import expand_paths
    from .options import load_engine
    if args.out and len(args.paths) != 1:
        print("error: --out takes one sweep; use --out-dir for several", file=sys.stderr)
        return EXIT_BAD_INPUT
    engine = load_engine(args)
    return score_files(engine, expand_paths(args.paths), out=args.out, out_dir=args.out_dir,
                       export_dir=args.export_best, challenge_dir=args.challenge_output, use_cache=not args.no_cache,
                       source_name_only=args.sidecar_name_only)


def score_files(engine, paths: list[Path], out: Path | None = None, out_dir: Path | None = None,
                export_dir: Path | None = None, challenge_dir: Path | None = None, use_cache: bool = True,
                source_name_only: bool = False) -> int:
    """Score each file and write its outputs; a failing file is reported and the others go on (exit 2)."""
    from ..batch import SUMMARY_CSV, CaseOutputs, check_case_ids, write_case_outputs, write_summary
    from ..export import ModelInfo
    from ..sweep import case_id
    check_case_ids(paths)
    model = ModelInfo.of(engine.model)
    summary, failed = [], 0
    for path in paths:
        csv_path = out or (out_dir / f"{case_id(path)}_scores.csv" if out_dir else None)
        if csv_path and out_dir and csv_path.exists():
            print(f"skipping {path.name}: {csv_path.name} exists (finished earlier)", file=sys.stderr)
            continue
        outputs = CaseOutputs(csv_path, export_dir, challenge_dir, overwrite=bool(out),
                              source_name_only=source_name_only)
        try:
            scored = score_file(engine, model, path, use_cache)
            rows = write_case_outputs(scored, outputs)
        except FetalIqaError as error:
            print(f"error: {error}", file=sys.stderr)
            failed += 1
            continue
        print(describe_case(path, rows, scored.threshold))
        summary += rows
    if out_dir and summary:
        write_summary(out_dir / SUMMARY_CSV, summary)
    if failed:
        print(f"{failed} of {counted(len(paths), 'input')} failed.", file=sys.stderr)
    return EXIT_BAD_INPUT if failed else EXIT_OK


def score_file(engine, model, path: Path, use_cache: bool):
    """One file loaded and scored (from the cache where it has the scores), with a progress bar."""
    from ..review import ScoredSweep
    from ..scoring import Throughput, run_scoring
    from ..sweep import load_sweep
    sweep = load_sweep(path)
    if use_cache:
        scored = ScoredSweep.from_cache(sweep, model, engine.variant)
    else:
        scored = ScoredSweep(sweep, model)
    progress = ProgressBar(f"{path.name} [{engine.description}]", sweep.layout.n_images)
    throughput = Throughput(scored.n_pending)

    def on_batch(batch):
        throughput.add(len(batch.frames))
        if batch.notice:
            print(f"\nnote: {batch.notice}", file=sys.stderr)
        progress.update(scored.n_scored, extra=f"{throughput.frames_per_second:.1f} frames/s")

    run_scoring(engine, scored, use_cache, on_batch)
    progress.update(scored.n_scored)
    progress.close()
    return scored


def describe_case(path: Path, rows: list[dict], threshold: float) -> str:
    parts = []
    for row in rows:
        if row["best_frame"] == "":
            parts.append(f"sweep {row['sweep']}: no image frames")
            continue
        text = f"sweep {row['sweep']}: frame {row['best_frame']} ({float(row['score']):.3f}"
        text += ")" if row["good"] else f", below the threshold {threshold:.3f}: no good frame)"
        parts.append(text + (f" AC {row['ac_mm']} mm" if row["ac_mm"] else ""))
    return f"{path.name}: best " + "; ".join(parts)
