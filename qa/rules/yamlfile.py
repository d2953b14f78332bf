"""YAML files read with their node tree, so that an error can name the line of the field it is about, and bounded
in size, nesting and alias expansion before they are parsed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

# The loader tsqa reads YAML with: libyaml's when PyYAML has it (a hundred times faster on a large file), else PyYAML's.
SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# A spec is about 25 kB and nests 6 levels; a waivers file of thousands of waivers is well under a megabyte.
MAX_YAML_BYTES = 4 << 20
MAX_YAML_DEPTH = 64
# Nodes of the document with every alias (and merge key) expanded: what building and validating the data walks.
MAX_YAML_NODES = 1 << 20


class YamlFileError(Exception):
    """A YAML file that cannot be read or parsed; the message names the file and, where known, the line."""


@dataclass
class _Open:
    """A collection whose end event has not come yet: its anchor, and its expanded nodes and depth so far."""

    anchor: str | None
    nodes: int = 1
    depth: int = 1


def _size(event: yaml.Event, stack: list[_Open], anchored: dict[str, tuple[int, int]]) -> tuple[int, int] | None:
    """The expanded nodes and depth of the node an event completes (None: it completes none), noting its anchor."""
    if isinstance(event, yaml.CollectionEndEvent):
        done = stack.pop()
        anchor, size = done.anchor, (done.nodes, done.depth)
    elif isinstance(event, yaml.ScalarEvent):
        anchor, size = event.anchor, (1, 0)
    elif isinstance(event, yaml.AliasEvent):
        return anchored.get(event.anchor, (1, 0))  # an unknown anchor: the composer says so
    else:
        return None
    if anchor is not None:
        anchored[anchor] = size
    return size


def _bounded(text: str, where: str) -> None:
    """Refuse YAML nested deeper than MAX_YAML_DEPTH or expanding to more than MAX_YAML_NODES nodes, aliases counted
    as the nodes they stand for. The event stream is flat and the parser iterative, so neither a 50,000-level nesting
    (the composer recurses) nor chained aliases or merge keys (billion laughs) cost more than a pass over the text."""
    anchored: dict[str, tuple[int, int]] = {}
    stack = [_Open(None, nodes=0, depth=0)]
    total = 0
    for event in yaml.parse(text, Loader=SafeLoader):
        line = event.start_mark.line + 1
        if isinstance(event, yaml.CollectionStartEvent):
            stack.append(_Open(event.anchor))
            total += 1
            if len(stack) - 1 > MAX_YAML_DEPTH:
                raise YamlFileError(f"{where}:{line}: nested deeper than {MAX_YAML_DEPTH} levels")
            continue
        size = _size(event, stack, anchored)
        if size is None:
            continue
        nodes, depth = size
        stack[-1].nodes += nodes
        stack[-1].depth = max(stack[-1].depth, depth + 1)
        if not isinstance(event, yaml.CollectionEndEvent):  # a collection's nodes were counted as they came
            total += nodes
        if total > MAX_YAML_NODES:
            raise YamlFileError(f"{where}:{line}: more than {MAX_YAML_NODES:,} nodes with its aliases expanded")
        if len(stack) - 1 + depth > MAX_YAML_DEPTH:
            raise YamlFileError(f"{where}:{line}: nested deeper than {MAX_YAML_DEPTH} levels with its aliases expanded")


def parse_yaml(text: str, where: str, loader: type[yaml.SafeLoader] = SafeLoader) -> tuple[Any, yaml.Node | None]:
    """The data of YAML text and its node tree (for line_of), read with a safe `loader` once its nesting and alias
    expansion are known to be bounded; `where` names the text in errors."""
    try:
        _bounded(text, where)
        parser = loader(text)
        try:
            tree = parser.get_single_node()
            data = None if tree is None else parser.construct_document(tree)
        finally:
            parser.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"{where}:{mark.line + 1}" if mark is not None else where
        raise YamlFileError(f"{at}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from exc
    return data, tree


def read_yaml(path: Path, what: str, loader: type[yaml.SafeLoader] = SafeLoader) -> tuple[Any, yaml.Node | None]:
    """The file's data and its node tree (for line_of), read with a safe `loader`; `what` names it in errors."""
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_YAML_BYTES + 1)
        if len(raw) > MAX_YAML_BYTES:
            raise YamlFileError(f"{path}: larger than {MAX_YAML_BYTES >> 20} MiB, more than a {what} holds")
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise YamlFileError(f"cannot read {what} {path}: {getattr(exc, 'strerror', None) or exc}") from exc
    return parse_yaml(text, str(path), loader)


def line_of(node: yaml.Node | None, loc: tuple) -> int | None:
    """The 1-based line of the deepest node of a validation error's location that the YAML has."""
    line = None
    for part in loc:
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == str(part)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            node = None
    if node is not None:
        line = node.start_mark.line + 1
    return line
