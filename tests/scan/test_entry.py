"""Fact cache entries: data that reads back as the same facts, and nothing else ever reads back."""

from __future__ import annotations

import os
import pickle
import time
import zlib
from pathlib import Path

import msgpack
import pytest

from qa.rules.spec import load_spec
from qa.scan.case import Layout, scan_case
from qa.scan.entry import JSON, MAGIC, MSGPACK, decode, encode
from qa.scan.facts import CaseFacts
from qa.source.base import Entry
from qa.source.fs import FolderSource

LAYOUT = Layout.of(load_spec("totalsegmentator-v2"))


@pytest.fixture(scope="module")
def facts(example_root: Path) -> CaseFacts:
    return scan_case(FolderSource(example_root), "s0000", LAYOUT, "deep")


class _RunsACommand:
    """What a crafted pickle does: name os.system, with a command that leaves a file behind."""

    def __init__(self, canary: Path) -> None:
        self.canary = canary

    def __reduce__(self) -> tuple:
        return os.system, (f"touch {self.canary}",)


def test_an_entry_reads_back_as_the_same_facts(facts: CaseFacts) -> None:
    assert decode(encode(facts)) == facts


def test_an_entry_keeps_the_objects_the_scan_shares_shared_and_equal_headers_once(facts: CaseFacts) -> None:
    back = decode(encode(facts))
    assert len({id(v) for v in back.deep.masks.values()}) == len({id(v) for v in facts.deep.masks.values()}) < 117
    assert len({id(f.header) for f in back.files.values()}) == 2  # the CT's, and the one all 117 masks share


def test_a_pickle_that_runs_a_command_is_no_entry_and_runs_nothing(tmp_path: Path) -> None:
    canary = tmp_path / "ran"
    crafted = pickle.dumps(_RunsACommand(canary))
    for blob in (crafted, zlib.compress(crafted), MAGIC + JSON + zlib.compress(crafted),
                 MAGIC + MSGPACK + zlib.compress(crafted)):
        assert decode(blob) is None
    assert not canary.exists()


def test_an_entry_of_the_earlier_pickle_format_is_no_entry(facts: CaseFacts) -> None:
    assert decode(zlib.compress(pickle.dumps(facts), 1)) is None


def test_an_entry_of_another_format_number_is_no_entry(facts: CaseFacts) -> None:
    blob = encode(facts)
    assert decode(MAGIC[:-1] + bytes([MAGIC[-1] + 1]) + blob[len(MAGIC):]) is None


def test_an_entry_whose_fields_have_the_wrong_types_is_no_entry(facts: CaseFacts) -> None:
    text = zlib.decompress(encode(facts)[len(MAGIC) + 1:])
    wrong = text.replace(b'"size":', b'"size":"many","was":', 1)
    assert decode(MAGIC + JSON + zlib.compress(wrong)) is None


def test_an_entry_numbering_a_header_that_is_not_there_is_no_entry(facts: CaseFacts) -> None:
    text = zlib.decompress(encode(facts)[len(MAGIC) + 1:])
    wrong = text.replace(b'"header_of":{"s0000/ct.nii.gz":0', b'"header_of":{"s0000/ct.nii.gz":7', 1)
    assert wrong != text
    assert decode(MAGIC + JSON + zlib.compress(wrong)) is None


def test_an_entry_that_inflates_past_its_bound_is_refused_without_inflating_it() -> None:
    bomb = MAGIC + JSON + zlib.compress(b" " * (200 << 20), 9)  # 200 MB of spaces in 0.2 MB
    started = time.perf_counter()
    assert decode(bomb) is None
    assert time.perf_counter() - started < 2


def test_facts_with_names_that_are_not_utf8_read_back_with_their_bytes() -> None:
    name = b"s0000/segmentations/liver\xff.nii.gz".decode("utf-8", "surrogateescape")
    facts = CaseFacts(case="s0000", entries=[Entry(name, "file")])
    assert decode(encode(facts)) == facts


def test_a_messagepack_entry_of_other_types_is_no_entry() -> None:
    for data in ({"format": 2, "case": {"case": msgpack.ExtType(1, b"x")}}, [1, 2, 3], {"format": 2}):
        assert decode(MAGIC + MSGPACK + zlib.compress(msgpack.packb(data))) is None


def test_a_cut_entry_is_no_entry(facts: CaseFacts) -> None:
    blob = encode(facts)
    assert decode(blob[: len(blob) // 2]) is None
