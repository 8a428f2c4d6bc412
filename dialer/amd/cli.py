"""``puente amd``: generate the corpus, evaluate the detectors on it, classify one recording."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from dialer.amd._corpus import DEV_SEEDS, SUBSET_NAMES, TEST_SEEDS, generate_corpus, seed_range
from dialer.amd._eval import DETECTORS, evaluate, make_detector, run_detector
from dialer.amd._exceptions import AmdError
from dialer.amd._wav import MAX_DECODE_S, MAX_RATE_HZ, MIN_RATE_HZ, read_wav

_SEEDS_HELP = (
    f"development seeds {DEV_SEEDS.start}-{DEV_SEEDS.stop - 1} (tune on these), "
    f"test seeds {TEST_SEEDS.start}-{TEST_SEEDS.stop - 1} (report on these)"
)


def _fail(command: str, error: Exception) -> int:
    print(f"puente amd {command}: {error}", file=sys.stderr)
    return 2


def _cmd_corpus(args: argparse.Namespace) -> int:
    try:
        summary = generate_corpus(
            args.out_dir, seed=args.seed, count=args.count, subsets=args.subsets, jobs=args.jobs
        )
    except AmdError as e:
        return _fail("corpus", e)
    print(
        json.dumps(
            {
                "out_dir": str(summary.out_dir),
                "seed": summary.seed,
                "seed_range": seed_range(summary.seed),
                "files": summary.files,
                "subsets": summary.by_subset,
            }
        )
    )
    return 0


def _fmt(value: Any, pct: bool = False) -> str:
    if value is None:
        return "-"
    if pct:
        return f"{100 * value:.1f}%"
    return str(value)


def _print_table(report: dict[str, Any]) -> None:
    print(f"corpus {report['corpus']}: {report['files']} files, seeds {report['seeds']}")
    problems = report.get("checksum_problems")
    if problems is None:
        print("checksums: no SHA256SUMS (not verified)")
    elif problems:
        more = f"; {len(problems) - 5} more" if len(problems) > 5 else ""
        shown = "; ".join(problems[:5]) + more
        print(f"checksums: the corpus differs from its SHA256SUMS: {shown}")
    else:
        print("checksums: every file matches SHA256SUMS")
    header = (
        f"{'detector':<8} {'group':<20} {'n':>4} {'acc':>6} {'dec.acc':>7} {'H->M':>6} "
        f"{'M.rec':>6} {'NOTSURE':>7} {'H after utt p50/p95':>19} {'M from answer p50/max':>21} "
        f"{'beep<=150':>9} {'SIT kind':>8}"
    )
    print(header)
    for name, d in report["detectors"].items():
        rows = [("overall", d["overall"]), *sorted(d["subsets"].items())]
        for group, s in rows:
            hu, md = s["human_after_utterance_ms"], s["machine_decision_ms"]
            print(
                f"{name:<8} {group:<20} {s['files']:>4} {_fmt(s['accuracy'], True):>6} "
                f"{_fmt(s['decided_accuracy'], True):>7} "
                f"{_fmt(s['human_called_machine'], True):>6} "
                f"{_fmt(s['machine_recall'], True):>6} {_fmt(s['notsure_rate'], True):>7} "
                f"{_fmt(hu['median']) + '/' + _fmt(hu['p95']):>19} "
                f"{_fmt(md['median']) + '/' + _fmt(md['max']):>21} "
                f"{_fmt(s['beep_within_150ms'], True):>9} "
                f"{_fmt(s.get('sit_kind_accuracy'), True):>8}"
            )
        met = d["goals"]
        print(
            f"{name:<8} goals: " + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in met.items())
        )


def _cmd_eval(args: argparse.Namespace) -> int:
    try:
        report = evaluate(args.dir, detectors=args.detectors, jobs=args.jobs)
    except AmdError as e:
        return _fail("eval", e)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_table(report)
    return 0


def _cmd_classify(args: argparse.Namespace) -> int:
    try:
        samples, decoded = read_wav(args.file)
    except AmdError as e:
        return _fail("classify", e)
    outcome = run_detector(make_detector(args.detector), samples)
    print(
        json.dumps(
            {
                "file": Path(args.file).name,
                "detector": args.detector,
                "verdict": outcome["verdict"],
                "cause": outcome["cause"],
                "decision_ms": outcome["decision_ms"],
                "beep_ms": outcome["beep_ms"],
                "duration_ms": len(samples) // 8,
                "file_duration_ms": decoded.file_ms,
                "capped_at_ms": MAX_DECODE_S * 1000 if decoded.capped else None,
                "cue": outcome["cue"],
            }
        )
    )
    return 0


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more: {value}")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {value}")
    return value


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "amd",
        help="answering-machine detection: corpus, evaluation, classify a WAV",
        description="Answering-machine detection: Puente's detector and the app_amd baseline.",
    )
    sub = p.add_subparsers(dest="amd_action", metavar="ACTION", required=True)

    c = sub.add_parser(
        "corpus",
        help="generate a labelled corpus with espeak-ng and sox",
        description=(
            "Generate a deterministic corpus (8 kHz s16 mono WAVs, labels.jsonl, manifest.json, "
            f"SHA256SUMS). Seeds: {_SEEDS_HELP}. Needs the Debian packages espeak-ng and sox."
        ),
    )
    c.add_argument("out_dir", type=Path)
    c.add_argument("--seed", type=_non_negative, required=True, help=_SEEDS_HELP)
    c.add_argument("--count", type=_positive, default=200, help="number of files (200)")
    c.add_argument(
        "--subsets",
        nargs="+",
        choices=SUBSET_NAMES,
        metavar="SUBSET",
        help=f"only these subsets ({', '.join(SUBSET_NAMES)})",
    )
    c.add_argument("--jobs", type=_positive, default=None, help="worker processes (all cores)")
    c.set_defaults(func=_cmd_corpus)

    e = sub.add_parser(
        "eval",
        help="score Puente's detector and the app_amd baseline on a corpus",
        description="Run both detectors over a corpus; figures per subset and overall.",
    )
    e.add_argument("dir", type=Path)
    e.add_argument("--json", action="store_true", help="print the full report as JSON")
    e.add_argument(
        "--detectors",
        nargs="+",
        choices=DETECTORS,
        default=list(DETECTORS),
        metavar="NAME",
        help="puente and/or app_amd (both)",
    )
    e.add_argument("--jobs", type=_positive, default=None, help="worker processes (all cores)")
    e.set_defaults(func=_cmd_eval)

    k = sub.add_parser(
        "classify",
        help="print one verdict as JSON for a WAV file",
        description=(
            f"Classify a PCM WAV ({MIN_RATE_HZ}-{MAX_RATE_HZ} Hz, resampled to 8 kHz; plain "
            "or WAVE_FORMAT_EXTENSIBLE). Prints verdict, cause and decision_ms (from the start "
            "of the file); a recording that ends undecided is taken as followed by silence. "
            f"Only the first {MAX_DECODE_S} s are analysed (capped_at_ms says when a file was "
            "longer); a truncated file is refused."
        ),
    )
    k.add_argument("file", type=Path)
    k.add_argument("--detector", choices=DETECTORS, default="puente")
    k.set_defaults(func=_cmd_classify)
