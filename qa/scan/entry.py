"""A case's facts as a fact cache entry: JSON that can only become the facts' own types, each shared object once.

An entry is data, never code: it is parsed as JSON (MessagePack for the rare case whose names are not UTF-8, which
JSON cannot carry) and validated by pydantic into the facts' dataclasses (a field of the wrong type, an unknown shape
or another format is a refused entry, not an object of another class). Headers
equal in every bit, and the mask values and stream facts the scan shares between byte-identical empty masks, are
stored once and shared again when read, as the judging expects (it measures each shared object once)."""

from __future__ import annotations

import dataclasses
import zlib
from dataclasses import dataclass, field
from typing import Annotated, Literal

import msgpack
from pydantic import Field, TypeAdapter
from pydantic_core import PydanticSerializationError

from qa.scan.facts import FACTS_JSON, CaseFacts, FileFacts, HeaderFacts, MaskValues, StreamFacts

# The entry's own format: a change of its shape changes it (a change of the facts' changes FACTS_VERSION).
ENTRY_FORMAT = 2
MAGIC = b"tsqa-facts\x00" + bytes([ENTRY_FORMAT])
# What follows the magic: JSON (fast: pydantic parses and validates it in one pass), or MessagePack with names that
# are not UTF-8 kept as the file system's bytes (surrogate escapes), which JSON has no way to write.
JSON, MSGPACK = b"J", b"M"
# The most an entry inflates to: a case of thousands of masks is a few MB; a zlib bomb stops here.
MAX_ENTRY_BYTES = 64 << 20
Number = Annotated[int, Field(ge=0)]


@dataclass
class _Entry:
    """The stored form: the case without its headers, mask values and stream facts, and those once each."""

    __pydantic_config__ = FACTS_JSON

    format: Literal[2]
    case: CaseFacts
    headers: list[HeaderFacts] = field(default_factory=list)
    header_of: dict[str, Number] = field(default_factory=dict)
    masks: list[MaskValues] = field(default_factory=list)
    mask_of: dict[str, Number] = field(default_factory=dict)
    streams: list[StreamFacts] = field(default_factory=list)
    stream_of: dict[str, Number] = field(default_factory=dict)


_ENTRY = TypeAdapter(_Entry)
_HEADER = TypeAdapter(HeaderFacts)


class _Shared:
    """Objects numbered once each: by identity, or (headers) by their JSON, which tells -0.0 from 0.0."""

    def __init__(self) -> None:
        self.items: list = []
        self.numbers: dict[object, int] = {}

    def number(self, item: object, key: object) -> int:
        found = self.numbers.get(key)
        if found is None:
            found = self.numbers[key] = len(self.items)
            self.items.append(item)
        return found


def encode(facts: CaseFacts) -> bytes:
    """A case's facts as a cache entry holds them."""
    headers, masks, streams = _Shared(), _Shared(), _Shared()
    files, header_of = {}, {}
    for path, file in facts.files.items():
        if file.header is not None:
            header_of[path] = headers.number(file.header, _HEADER.dump_json(file.header))
            file = dataclasses.replace(file, header=None)
        files[path] = file
    case = dataclasses.replace(facts, files=files)
    mask_of, stream_of = {}, {}
    if facts.deep is not None:
        mask_of = {path: masks.number(values, id(values)) for path, values in facts.deep.masks.items()}
        stream_of = {path: streams.number(stream, id(stream)) for path, stream in facts.deep.streams.items()}
        case.deep = dataclasses.replace(facts.deep, masks={}, streams={})
    entry = _Entry(ENTRY_FORMAT, case, headers.items, header_of, masks.items, mask_of, streams.items, stream_of)
    try:
        return MAGIC + JSON + zlib.compress(_ENTRY.dump_json(entry), 1)
    except PydanticSerializationError:  # a name that is not UTF-8
        packed = msgpack.packb(_ENTRY.dump_python(entry), unicode_errors="surrogateescape")
        return MAGIC + MSGPACK + zlib.compress(packed, 1)


def decode(blob: bytes) -> CaseFacts | None:
    """The facts of an entry; None when it is damaged, of another format, too large, or not facts."""
    kind = blob[len(MAGIC):len(MAGIC) + 1]
    if not blob.startswith(MAGIC) or kind not in (JSON, MSGPACK):
        return None
    inflater = zlib.decompressobj()
    try:
        data = inflater.decompress(memoryview(blob)[len(MAGIC) + 1:], MAX_ENTRY_BYTES)
        if inflater.unconsumed_tail or not inflater.eof:
            return None
        if kind == JSON:
            entry = _ENTRY.validate_json(data)
        else:
            entry = _ENTRY.validate_python(msgpack.unpackb(data, unicode_errors="surrogateescape", strict_map_key=True))
        return _rebuilt(entry)
    # pydantic's ValidationError and msgpack's errors are ValueErrors; msgpack's ExtType is no fact (a TypeError)
    except (zlib.error, ValueError, TypeError, IndexError):
        return None


def _rebuilt(entry: _Entry) -> CaseFacts:
    """The case with its shared objects put back; IndexError when a number points past them."""
    case, headers = entry.case, entry.headers
    files = {}
    for path, file in case.files.items():
        number = entry.header_of.get(path)
        if number is not None:
            file = FileFacts(file.path, file.size, headers[number], file.isize, file.corrupt, file.stream_error,
                             file.trailer)
        files[path] = file
    case.files = files
    if case.deep is not None:
        case.deep.masks = {path: entry.masks[n] for path, n in entry.mask_of.items()}
        case.deep.streams = {path: entry.streams[n] for path, n in entry.stream_of.items()}
    return case
