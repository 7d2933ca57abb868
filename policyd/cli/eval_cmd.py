"""``policyd eval``: replay recorded answers through the engine and report cost per successful outcome."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from policyd.cli.common import at_least
from policyd.errors import InvalidArgument
from policyd.eval.evaluate import Settings, evaluate
from policyd.eval.fit import OBJECTIVES
from policyd.eval.report import plot, table
from policyd.eval.sources import DATASETS, load_dataset


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate a gated ladder on recorded model outputs",
        description=(
            "Fit gates, thresholds and routers on train items only (the dataset's split, a seeded holdout or "
            "k folds), run the real engine with the replay provider over the test items, and print accuracy, "
            "USD per query and per successful outcome with 95%% bootstrap intervals, CPT and APGR next to the "
            "baselines, the best single model and a kNN router."
        ),
    )
    p.add_argument("--dataset", required=True, help=f"one of {', '.join(DATASETS)}, or jsonl:PATH")
    p.add_argument(
        "--data",
        default=os.environ.get("POLICYD_EVAL_DATA"),
        help="the recorded data folder (default $POLICYD_EVAL_DATA, else <repo>/../shared/research/data)",
    )
    p.add_argument("--ladder", help="models cheapest first, comma-separated (default: the dataset's)")
    p.add_argument(
        "--gate",
        default="auto",
        help="auto (chosen by cross-validation on train), or logprob, length, format[:REGEX], arithmetic, "
        "agreement:MODEL, none; join with +",
    )
    p.add_argument(
        "--objective",
        action="append",
        help=f"how a threshold is fitted: pgr:X or cps; repeatable (default: {' '.join(OBJECTIVES)})",
    )
    p.add_argument("--folds", type=at_least(2), default=5, help="k for datasets without a split (default 5)")
    p.add_argument(
        "--split",
        default="auto",
        help="auto (the dataset's train/test, else k folds), given, holdout:F (a seeded share F as test), kfold:K",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the folds, the holdout and the bootstrap (default 0)")
    p.add_argument("--resamples", type=at_least(100), default=1000, help="bootstrap resamples (default 1000)")
    p.add_argument("--no-routers", action="store_true", help="skip the router rows (no scikit-learn needed)")
    p.add_argument("--limit", type=at_least(1), default=None, help="use only the first N items")
    p.add_argument("--concurrency", type=at_least(1), default=64, help="requests in flight (default 64)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default eval-out/<dataset>)")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the JSON report instead of the table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    ds = load_dataset(args.dataset, args.data)
    ladder = [m.strip() for m in args.ladder.split(",")] if args.ladder else list(ds.ladder)
    out = args.out or Path("eval-out") / args.dataset.replace(":", "_").replace("/", "_")
    try:  # before the run, so a bad --out fails at once
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidArgument("--out", f"cannot create {out}: {exc.strerror or exc}") from None
    settings = Settings(
        objectives=tuple(args.objective or OBJECTIVES),
        k=args.folds,
        split=args.split,
        seed=args.seed,
        limit=args.limit,
        concurrency=args.concurrency,
        progress=not args.no_progress,
        routers=not args.no_routers,
        router_dir=out / "routers",
        resamples=args.resamples,
    )
    report = evaluate(ds, ladder, args.gate, settings)
    doc = report.to_json()
    (out / "report.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    if not args.no_plot:
        plot(report, out / "frontier.png")
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print(table(report))
        print(f"wrote {out / 'report.json'}" + ("" if args.no_plot else f" and {out / 'frontier.png'}"))
    return 0
