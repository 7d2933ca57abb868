"""``policyd router train``: a router file for the ``route`` strategy, from eval records or the ledger."""

from __future__ import annotations

import argparse
import math
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from policyd.cli.common import add_data_dir_option
from policyd.errors import InvalidArgument


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("router", help="train a pre-generation router for the route strategy")
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    t = verbs.add_parser(
        "train",
        help="train a router file",
        description=(
            "Train a logistic router on hashed request features for P(the cheap model fails where the strong one "
            "succeeds) and write a versioned JSON router file a policy names (strategy: route). From recorded eval "
            "data (--dataset: trained on the train items only, the cut fitted on out-of-fold scores) or from the "
            "ledger's own outcomes and caller reports (--ledger: task and tenant features)."
        ),
    )
    src = t.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", help="a policyd eval dataset name or jsonl:PATH")
    src.add_argument("--ledger", action="store_true", help="train from the ledger in --data-dir")
    t.add_argument("--data", default=os.environ.get("POLICYD_EVAL_DATA"), help="the recorded data folder")
    add_data_dir_option(t)
    t.add_argument("--cheap", help="the cheap model (default: the dataset ladder's first)")
    t.add_argument("--strong", help="the strong model (default: the dataset ladder's last)")
    t.add_argument("--policy", help="--ledger: only this policy's outcomes")
    t.add_argument(
        "--split",
        default="auto",
        help="--dataset: train on the train part of auto (the dataset's split, else every item), given or holdout:F",
    )
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--objective", default="pgr:0.5", help="--dataset: how the cut is fitted: pgr:X or cps")
    t.add_argument(
        "--gate",
        help="--dataset: also fit the cascade's gate threshold jointly (e.g. logprob), or 'learned' for the "
        "file's own post-generation model (the learned-gate validator)",
    )
    t.add_argument("--threshold", type=float, help="the cut to store (default: fitted, or break-even for --ledger)")
    t.add_argument("--out", type=Path, required=True, help="the router file to write (JSON)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.out.suffix != ".json":
        raise InvalidArgument("--out", f"{args.out}: a router file is JSON (name it *.json)")
    if args.ledger:
        return _from_ledger(args)
    return _from_dataset(args)


def _from_dataset(args: argparse.Namespace) -> int:
    from policyd.eval.fit import folds
    from policyd.eval.gates import check_applicable, parse_gate
    from policyd.eval.routed import fit_learned, fit_route, fit_router_cut, label_of
    from policyd.eval.router import cross_fitted_router
    from policyd.eval.routerfile import Vectorizer
    from policyd.eval.runner import request_text
    from policyd.eval.sources import load_dataset

    ds = load_dataset(args.dataset, args.data)
    cheap, strong = args.cheap or ds.ladder[0], args.strong or ds.ladder[-1]
    for flag, model in (("--cheap", cheap), ("--strong", strong)):
        if model not in ds.prices:
            raise InvalidArgument(flag, f"{ds.name} has no model {model!r} (known: {', '.join(ds.models)})")
    items = ds.complete_items([cheap, strong])
    if args.split == "auto" and not ds.has_splits:
        train = items
    else:
        parts = folds(ds, items, split=args.split, seed=args.seed)
        if len(parts) != 1:
            raise InvalidArgument("--split", "a router file is trained once: use auto, given or holdout:F")
        train = list(parts[0].train)
    vec = Vectorizer()
    texts = [request_text(ds, i, cheap) for i in train]
    y = [label_of(ds, i, cheap, strong) for i in train]
    router, oof = cross_fitted_router(vec, texts, y, {}, seed=args.seed)
    post, post_oof = _post_model(ds, train, texts, cheap, vec, args.seed)
    gate_note = ""
    if args.threshold is not None:
        cut = args.threshold
    elif args.gate == "learned":
        cut, post_cut = fit_learned(ds, train, oof, post_oof, cheap, strong, args.objective)
        post = replace(post, threshold=post_cut if math.isfinite(post_cut) else 2.0)
        gate_note = f"; the learned gate below it escalates at P(wrong) >= {post.threshold!r}"
    elif args.gate:
        gate = parse_gate(args.gate)
        check_applicable(gate, has_logprobs=ds.has_signal("logprob_conf", [cheap]), has_answers=ds.has_answers([cheap]))
        cut, choice = fit_route(ds, train, oof, (cheap, strong), gate, args.objective)
        gate_note = f"; the cascade below it: gate {gate.spec} threshold {choice.threshold!r}"
    else:
        cut = fit_router_cut(ds, train, oof, cheap, strong, args.objective)
    meta = {
        "source": ds.name,
        "cheap": cheap,
        "strong": strong,
        "label": "cheap model wrong and strong model right",
        "trained_items": len(train),
        "positives": sum(y),
        "objective": args.objective,
        "seed": args.seed,
    }
    router = replace(router, threshold=cut if math.isfinite(cut) else 2.0, meta=meta, post=post)
    router.save(args.out)
    print(
        f"wrote {args.out}: {len(train)} train items of {ds.name}, {sum(y)} where {cheap} fails and {strong} "
        f"succeeds; cut {router.threshold!r} fitted for {args.objective} on out-of-fold scores{gate_note}"
    )
    return 0


def _post_model(
    ds: Any, train: list[str], texts: list[str], cheap: str, vec: Any, seed: int
) -> tuple[Any, list[float]]:
    """The learned gate (post-generation model) on the cheap model's recorded answers, and its OOF scores."""
    from policyd.eval.router import post_matrix, train_post
    from policyd.eval.simulate import observe

    recs = [ds.get(i, cheap) for i in train]
    x, stats = post_matrix(vec, texts, [r.answer for r in recs], [observe(r).logprobs for r in recs])
    return train_post(x, [int(not r.correct) for r in recs], stats, vec.n_features, seed=seed)


def _from_ledger(args: argparse.Namespace) -> int:
    from policyd.daemon import default_data_dir
    from policyd.eval.ledger_source import read_examples
    from policyd.eval.router import router_of
    from policyd.eval.routerfile import Vectorizer
    from policyd.ledger.store import ledger_path

    if not (args.cheap and args.strong):
        raise InvalidArgument("--cheap", "--ledger needs --cheap and --strong (the models of the route plan)")
    found = read_examples(ledger_path(args.data_dir or default_data_dir()), args.cheap, args.strong, args.policy)
    if len(found.examples) < 10:
        raise InvalidArgument(
            "--ledger", f"only {len(found.examples)} outcomes where {args.cheap} answered: too few to train on"
        )
    vec = Vectorizer(n_features=1 << 12, ngrams=1, inputs=("task", "tenant"))
    texts = [vec.text("", e.task, e.tenant) for e in found.examples]
    y = [e.label for e in found.examples]
    # Cost break-even: a cascade pays c_cheap + p * c_strong when the cheap answer is wasted with
    # probability p; going straight to the strong model pays c_strong. Route when p >= 1 - c_cheap / c_strong.
    if args.threshold is not None:
        cut = args.threshold
    elif found.strong_usd > 0:
        cut = 1 - min(1.0, found.cheap_usd / found.strong_usd)
    else:
        cut = 0.5
    meta = {
        "source": "ledger",
        "cheap": args.cheap,
        "strong": args.strong,
        "policy": args.policy or "",
        "trained_outcomes": len(y),
        "positives": sum(y),
        "from_caller_reports": sum(e.reported for e in found.examples),
    }
    router = router_of(vec, texts, y, cut, meta)
    router.save(args.out)
    print(
        f"wrote {args.out}: {len(y)} outcomes where {args.cheap} answered ({meta['from_caller_reports']} labelled by "
        f"caller reports, {found.skipped} skipped), {sum(y)} positives; cut {cut!r} (cost break-even unless set)"
    )
    return 0
