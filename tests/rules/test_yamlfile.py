"""The YAML reader of specs, waivers and the serve config: hostile nesting, aliases and sizes are refused in a fraction
of a second with one line naming the file and line, before anything is built from them."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from support import HOSTILE_YAML

from qa.rules.yamlfile import MAX_YAML_BYTES, MAX_YAML_DEPTH, MAX_YAML_NODES, YamlFileError, line_of, read_yaml


@pytest.mark.parametrize("make", HOSTILE_YAML.values(), ids=HOSTILE_YAML.keys())
def test_hostile_yaml_is_refused_within_a_second_with_its_file_and_line(tmp_path: Path, make) -> None:
    path = tmp_path / "hostile.yaml"
    path.write_text(make())
    started = time.monotonic()
    with pytest.raises(YamlFileError) as caught:
        read_yaml(path, "spec")
    assert time.monotonic() - started < 1.0
    message = str(caught.value)
    assert message.startswith(f"{path}:") and message.split(":")[1].isdigit() and "\n" not in message, message


def test_nesting_at_the_depth_bound_is_read_and_one_deeper_is_not(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("[" * MAX_YAML_DEPTH + "]" * MAX_YAML_DEPTH)
    data, _ = read_yaml(path, "spec")
    for _ in range(MAX_YAML_DEPTH - 1):
        [data] = data
    assert data == []
    path.write_text("[" * (MAX_YAML_DEPTH + 1) + "]" * (MAX_YAML_DEPTH + 1))
    with pytest.raises(YamlFileError, match=f"nested deeper than {MAX_YAML_DEPTH} levels"):
        read_yaml(path, "spec")


@pytest.mark.parametrize(("aliases", "refused"), [(1047, False), (1048, True)])
def test_the_node_bound_counts_every_node_once_with_its_aliases_expanded(
    tmp_path: Path, aliases: int, refused: bool
) -> None:
    path = tmp_path / "aliases.yaml"
    path.write_text("a: &a [" + ", ".join(["0"] * 999) + "]\nb: [" + ", ".join(["*a"] * aliases) + "]\n")
    nodes = 1 + 1 + 1000 + 1 + 1 + aliases * 1000  # the mapping, key a, its list, key b, its list, the aliases
    assert (nodes > MAX_YAML_NODES) is refused
    if refused:
        with pytest.raises(YamlFileError, match="nodes with its aliases expanded"):
            read_yaml(path, "spec")
    else:
        assert len(read_yaml(path, "spec")[0]["b"]) == aliases


def test_anchors_aliases_and_merge_keys_of_ordinary_size_still_load(tmp_path: Path) -> None:
    path = tmp_path / "anchors.yaml"
    path.write_text("base: &base {type: float, nullable: false}\nage: {<<: *base, min: 0}\nsame: *base\n")
    data, _ = read_yaml(path, "spec")
    assert data["age"] == {"type": "float", "nullable": False, "min": 0} and data["same"] == data["base"]


def test_a_file_larger_than_the_size_bound_is_refused_unparsed(tmp_path: Path) -> None:
    path = tmp_path / "large.yaml"
    path.write_bytes(b"# " + b"x" * MAX_YAML_BYTES + b"\n[")  # the syntax error at the end is never reached
    with pytest.raises(YamlFileError, match=f"{path}: larger than 4 MiB"):
        read_yaml(path, "spec")


def test_a_syntax_error_names_its_line_and_the_tree_names_the_lines_of_fields(tmp_path: Path) -> None:
    path = tmp_path / "some.yaml"
    path.write_text("a: 1\nb:\n  - c: 2\n")
    _, tree = read_yaml(path, "spec")
    assert line_of(tree, ("b", 0, "c")) == 3
    path.write_text("a: 1\nb: [\n")
    with pytest.raises(YamlFileError, match=f"{path}:3: not valid YAML"):
        read_yaml(path, "spec")
