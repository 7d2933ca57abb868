from __future__ import annotations

import json
import math

import pytest

from policyd.errors import InvalidArgument
from policyd.eval.records import Record, fit_prices, iter_jsonl, variant_of, write_jsonl
from policyd.eval.sources import load_dataset
from policyd.types import Effort
from tests.eval.synthetic import CHEAP, STRONG, records, write


def test_jsonl_round_trip_keeps_every_field(tmp_path):
    recs = records(3, 2)
    write_jsonl(recs, tmp_path / "r.jsonl")
    assert list(iter_jsonl(tmp_path / "r.jsonl")) == recs


@pytest.mark.parametrize(
    ("line", "where"),
    [
        ("{not json", "r.jsonl:1: not valid JSON"),
        ('{"dataset": "d", "item": 1, "model": "m", "answer": "", "correct": true}', "missing cost_usd"),
        (
            '{"dataset": "d", "item": 1, "model": "m", "answer": "", "correct": "yes", "cost_usd": 0}',
            "r.jsonl:1.correct: must be true or false",
        ),
        (
            '{"dataset": "d", "item": 1, "model": "m", "answer": "", "correct": true, "cost_usd": -1}',
            "r.jsonl:1.cost_usd: must be a finite number >= 0",
        ),
        (
            '{"dataset": "d", "item": 1, "model": "m", "answer": "", "correct": true, "cost_usd": 0, "colour": 1}',
            "r.jsonl:1.colour: unknown field",
        ),
        (
            '{"dataset": "d", "item": 1, "model": "m", "answer": "", "correct": true, "cost_usd": 0, "split": "dev"}',
            "r.jsonl:1.split: must be train, test or empty",
        ),
    ],
)
def test_bad_record_lines_name_the_line_and_field(tmp_path, line, where):
    path = tmp_path / "r.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(InvalidArgument, match=where.replace(".", r"\.")):
        list(iter_jsonl(path))


def test_variant_names_effort_and_sample():
    assert variant_of(Effort.OFF, 0) == ""
    assert variant_of(Effort.HIGH, 0) == "effort=high"
    assert variant_of(Effort.LOW, 2) == "effort=low,sample=2"


def test_prices_are_fitted_from_recorded_tokens_and_costs():
    prices = fit_prices(
        [
            Record("d", "", "1", "m", "", True, (100 * 2.5 + 10 * 10) / 1e6, tokens_in=100, tokens_out=10),
            Record("d", "", "2", "m", "", True, (50 * 2.5 + 40 * 10) / 1e6, tokens_in=50, tokens_out=40),
        ],
        "test",
    )
    assert prices["m"].input_usd_per_mtok == 2.5
    assert prices["m"].output_usd_per_mtok == 10.0


def test_jsonl_dataset_orders_models_cheapest_first(tmp_path):
    ds = load_dataset(f"jsonl:{write(tmp_path / 'r.jsonl')}")
    assert ds.ladder == (CHEAP, STRONG)
    assert ds.gate == "logprob"
    assert ds.has_splits
    assert math.isclose(ds.prices[STRONG].input_usd_per_mtok, 3.0)


def test_unknown_dataset_and_missing_folder_are_clear_errors(tmp_path):
    with pytest.raises(InvalidArgument, match="unknown dataset 'nope'"):
        load_dataset("nope")
    with pytest.raises(InvalidArgument, match="is not a directory"):
        load_dataset("cascades-mmlu", tmp_path / "absent")
    with pytest.raises(InvalidArgument, match="missing file"):
        load_dataset("cascades-mmlu", tmp_path)


def test_written_records_are_plain_json(tmp_path):
    write(tmp_path / "r.jsonl", n_train=1, n_test=0)
    first = json.loads((tmp_path / "r.jsonl").read_text().splitlines()[0])
    assert first["signals"]["logprob_conf"] < 0
