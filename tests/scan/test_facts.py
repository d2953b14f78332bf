"""Facts serialise to JSON-compatible data and back unchanged, NaN and raw bytes included."""

from __future__ import annotations

import json
from pathlib import Path

from qa.app.pipeline import scan_release
from qa.scan.case import Layout
from qa.scan.facts import FACTS_VERSION, CaseFacts, HeaderFacts, MetaFacts, ReleaseFacts, from_data, to_data
from qa.source.fs import FolderSource


def test_facts_of_a_deep_scan_of_the_real_example_survive_a_trip_through_json(example_root: Path) -> None:
    facts = scan_release(FolderSource(example_root), Layout(), mode="deep")
    text = json.dumps(to_data(facts))
    assert from_data(ReleaseFacts, json.loads(text)) == facts


def test_a_case_round_trips_on_its_own(example_root: Path) -> None:
    case = scan_release(FolderSource(example_root), Layout(), mode="quick").cases[0]
    assert from_data(CaseFacts, json.loads(json.dumps(to_data(case)))) == case


def test_non_finite_numbers_and_raw_bytes_survive() -> None:
    nan = float("nan")
    affine = [[nan, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
    header = HeaderFacts(version=1, shape=(2, 2, 2), dtype="int16", byteorder="<", zooms=(nan, 1.0, float("inf")),
                         affine=affine, sform_code=2, qform_code=0, sform=None, qform=None, slope=None, inter=None,
                         data_offset=352, data_bytes=16)
    back = from_data(HeaderFacts, json.loads(json.dumps(to_data(header))))
    assert repr(back) == repr(header)
    meta = MetaFacts(path="meta.csv", present=True, raw=b"\xef\xbb\xbfimage_id\n\xff")
    assert from_data(MetaFacts, json.loads(json.dumps(to_data(meta)))) == meta


def test_facts_version_is_a_positive_integer() -> None:
    assert isinstance(FACTS_VERSION, int) and FACTS_VERSION >= 1
