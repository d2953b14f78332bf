"""meta.csv as a table: decoding with the spec's encoding, normalising cells, and the pandera schema of its columns."""

from __future__ import annotations

import csv
import io
import re
import warnings
from dataclasses import dataclass

import pandas as pd
import pandera.pandas as pa

from qa.rules.spec import ColumnRule, MetaSpec

# The file's first line is the header, so the first data row is line 2.
FIRST_DATA_LINE = 2
# A release's metadata table has a dozen columns of short values. A header of 100,000 names would cost pandas and the
# report minutes and hundreds of MB (every column is judged and listed), so wider tables are refused before parsing.
MAX_COLUMNS = 1_000
MAX_CELL_CHARS = 1_000
_SPACES = re.compile(r"\s+")


class MetaUnreadable(ValueError):
    """meta.csv cannot be turned into a table; `subcode` says how (a META_UNREADABLE subcode), the message why."""

    def __init__(self, subcode: str, message: str) -> None:
        super().__init__(message)
        self.subcode = subcode


@dataclass
class Normalized:
    line: int
    column: str
    raw: str
    value: str


@dataclass
class MetaTable:
    """meta.csv's cells as strings (None where empty), indexed by line number in the file."""

    frame: pd.DataFrame
    normalized: list[Normalized]


def normalize(value: str) -> str:
    return _SPACES.sub(" ", value).strip().lower()


def read_table(raw: bytes, spec: MetaSpec) -> MetaTable:
    try:
        text = raw.decode(spec.encoding)
    except UnicodeDecodeError as exc:
        raise MetaUnreadable("encoding", f"not valid {spec.encoding} at byte {exc.start}: {exc.reason}") from exc
    except LookupError as exc:
        raise MetaUnreadable("encoding", f"the spec's encoding {spec.encoding!r} is unknown") from exc
    text = text.lstrip("\ufeff")
    first_line = text.split("\n", 1)[0].strip()
    if not first_line:
        raise MetaUnreadable("no_header", "the file has no header line")
    if spec.separator not in first_line and len(spec.columns) > 1:
        raise MetaUnreadable("separator", f"the header line has no {spec.separator!r} separator: {first_line[:80]!r}")
    _refuse_wide_lines(text, spec.separator)
    try:
        # index_col=False: rows ending in a separator must not make pandas take the first column for an index
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", pd.errors.ParserWarning)
            frame = pd.read_csv(io.StringIO(text), sep=spec.separator, dtype=str, keep_default_na=False,
                                skip_blank_lines=True, quoting=csv.QUOTE_MINIMAL, index_col=False)
    except (pd.errors.ParserError, csv.Error, ValueError) as exc:
        raise MetaUnreadable("parse", f"cannot be parsed as {spec.separator!r}-separated values: "
                                      f"{str(exc).strip()}") from exc
    if caught:
        _refuse_cells_past_the_header(text, spec.separator)
    names = [str(c) for c in frame.columns]
    # Cell by cell in Python rather than column by column in pandas: a metadata table is small, and pandas' string
    # methods cost a few milliseconds a column whatever its length (most of a warm cached run's meta.csv).
    columns = frame.to_numpy(dtype=object).T.tolist()
    _refuse_long_cells(names, columns)
    # a blank cell is None; a missing one (a short row) stays as pandas reads it
    cells = {k: [None if isinstance(v, str) and not v.strip() else v for v in column]
             for k, column in enumerate(columns)}
    frame = pd.DataFrame(cells, index=range(FIRST_DATA_LINE, FIRST_DATA_LINE + len(frame)), dtype=object)
    frame.columns = [name.strip() for name in names]
    return MetaTable(frame=frame, normalized=_normalize_columns(frame, spec))


def _refuse_wide_lines(text: str, separator: str) -> None:
    """A line with more fields than MAX_COLUMNS, counted as separators, before pandas spends a second per 100,000 of
    them. A separator inside a quoted cell counts too, but a cell holding that many is longer than MAX_CELL_CHARS."""
    fields = [line.count(separator) + 1 for line in text.split("\n")]
    widest = max(range(len(fields)), key=fields.__getitem__)
    if fields[widest] > MAX_COLUMNS:
        where = "the header line" if widest == 0 else f"line {widest + 1}"
        raise MetaUnreadable("too_wide", f"{where} has {fields[widest]} fields, more than a metadata table has "
                                         f"({MAX_COLUMNS})")


def _refuse_long_cells(names: list[str], columns: list[list[object]]) -> None:
    longest_name = max(map(len, names), default=0)
    lengths = [max((len(v) for v in column if isinstance(v, str)), default=0) for column in columns]
    longest_cell = max(lengths, default=0)
    if max(longest_name, longest_cell) > MAX_CELL_CHARS:
        where = f"column {names[lengths.index(longest_cell)]!r}" if longest_cell >= longest_name else "the header"
        raise MetaUnreadable("too_wide", f"a cell of {max(longest_name, longest_cell)} characters in {where}, longer "
                                         f"than a metadata value is ({MAX_CELL_CHARS})")


def _refuse_cells_past_the_header(text: str, separator: str) -> None:
    """Rows longer than the header: empty trailing fields (a separator at the end of a row) are harmless, a value
    past the last column would be lost."""
    rows = csv.reader(io.StringIO(text), delimiter=separator)
    try:
        width = len(next(rows))
        for line, row in enumerate(rows, start=FIRST_DATA_LINE):
            if any(cell.strip() for cell in row[width:]):
                raise MetaUnreadable("parse", f"line {line} has {len(row)} fields but the header names {width}: "
                                              "the cells past the last column would be lost")
    except csv.Error as exc:  # e.g. a field past the header longer than the csv module's limit
        raise MetaUnreadable("parse", f"cannot be parsed as {separator!r}-separated values: {exc}") from exc


def _normalize_columns(frame: pd.DataFrame, spec: MetaSpec) -> list[Normalized]:
    changed: list[Normalized] = []
    for name, rule in spec.columns.items():
        if not rule.normalize or name not in frame.columns:
            continue
        for line, raw in frame[name].items():
            if raw is not None and (value := normalize(raw)) != raw:
                changed.append(Normalized(line=int(line), column=name, raw=raw, value=value))
                frame.at[line, name] = value
    return changed


def _numeric(series: pd.Series) -> pd.Series:
    return pd.to_numeric(series, errors="coerce")


# pandera names an empty cell in a non-nullable column 'not_nullable'; the finding says it as a person would.
NOT_EMPTY = "not empty"


def _checks(rule: ColumnRule, subcodes: dict[str, str], whole: bool = False) -> list[pa.Check]:
    """The column's pandera checks; each check's name is recorded in `subcodes` with the subcode its failures get.
    With `whole`, the pattern must match the whole value rather than be found in it."""
    checks: list[tuple[str, pa.Check]] = []
    if rule.type == "int":
        checks.append(("type", pa.Check(lambda s: s.str.fullmatch(r"[+-]?\d+"), name="integer")))
    elif rule.type == "float":
        checks.append(("type", pa.Check(lambda s: _numeric(s).notna(), name="number")))
    if rule.min is not None:
        low = rule.min
        checks.append(("range", pa.Check(lambda s: _numeric(s).isna() | (_numeric(s) >= low),
                                         name=f"at least {low:g}")))
    if rule.max is not None:
        high = rule.max
        checks.append(("range", pa.Check(lambda s: _numeric(s).isna() | (_numeric(s) <= high),
                                         name=f"at most {high:g}")))
    # Named custom checks rather than pandera's built-ins, so that the failure cases carry a rule a person can read.
    if rule.allowed is not None:
        allowed = set(rule.allowed)
        checks.append(("allowed", pa.Check(lambda s: s.isin(allowed), name=f"one of {', '.join(rule.allowed)}")))
    if rule.pattern is not None:
        # \d is 0-9 (re.ASCII); the id column's values are case ids, matched whole as case folder names are.
        pattern = re.compile(rule.pattern, re.ASCII)
        if whole:
            checks.append(("pattern", pa.Check(lambda s: s.map(lambda v: pattern.fullmatch(v) is not None),
                                               name=f"matches {rule.pattern} as a whole")))
        else:
            checks.append(("pattern", pa.Check(lambda s: s.str.contains(pattern, regex=True),
                                               name=f"matches {rule.pattern}")))
    subcodes.update({c.name: subcode for subcode, c in checks})
    return [c for _, c in checks]


def column_schema(spec: MetaSpec, present: list[str], subcodes: dict[str, str]) -> pa.DataFrameSchema:
    """The pandera schema of the spec's columns that the file has (absent ones are META_COLUMNS' business)."""
    columns = {
        name: pa.Column(object, checks=_checks(rule, subcodes, whole=name == spec.id_column), nullable=rule.nullable,
                        required=False)
        for name, rule in spec.columns.items()
        if name in present
    }
    return pa.DataFrameSchema(columns, strict=False, coerce=False)


@dataclass
class CellFailure:
    line: int | None
    column: str
    value: str | None
    rule: str
    subcode: str


def validate(table: MetaTable, spec: MetaSpec) -> list[CellFailure]:
    """Every cell that breaks its column's rule, from pandera's failure cases."""
    subcodes = {NOT_EMPTY: "empty"}
    schema = column_schema(spec, list(table.frame.columns), subcodes)
    try:
        schema.validate(table.frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        return [_failure(row, subcodes) for row in exc.failure_cases.to_dict("records") if row["column"] is not None]
    return []


def _failure(row: dict, subcodes: dict[str, str]) -> CellFailure:
    rule = str(row["check"])
    if rule == "not_nullable":
        rule = NOT_EMPTY
    value = row["failure_case"]
    index = row["index"]
    return CellFailure(
        line=None if pd.isna(index) else int(index),
        column=str(row["column"]),
        value=None if value is None or (isinstance(value, float) and pd.isna(value)) else str(value),
        rule=rule,
        subcode=subcodes.get(rule, "type"),  # pandera's own checks are about the column's type
    )
