"""The README's CI examples work as written: their YAML parses, every tsqa command in them is one the CLI takes, and
the waivers example validates."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import yaml
from support import REPO

from qa.app.cli import build_parser
from qa.rules.waivers import load_waivers

README = (REPO / "README.md").read_text()
CI = README[README.index("## In CI\n"):README.index("## Architecture\n")]
BLOCKS = [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", CI, re.S)]


def strings(node: object) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)


def tsqa_commands() -> list[list[str]]:
    found = []
    for block in BLOCKS:
        for text in strings(block):
            for line in text.splitlines():
                if line.strip().startswith("tsqa "):
                    found.append(shlex.split(line.strip())[1:])
    return found


def uses(workflow: dict) -> set[str]:
    return {step["uses"].split("@")[0] for job in workflow["jobs"].values() for step in job["steps"] if "uses" in step}


def test_the_ci_examples_parse_as_github_workflows_and_a_gitlab_pipeline_that_keep_the_reports() -> None:
    waivers, gate, refresh, gitlab = BLOCKS
    assert "waivers" in waivers
    wanted = {"actions/upload-artifact", "github/codeql-action/upload-sarif", "mikepenz/action-junit-report"}
    assert wanted <= uses(gate)
    assert "peter-evans/create-pull-request" in uses(refresh)
    assert gitlab["tsqa"]["artifacts"]["reports"]["junit"] == "qa-report/junit.xml"
    assert gitlab["tsqa"]["artifacts"]["when"] == "always"


def test_every_tsqa_command_of_the_ci_examples_is_accepted_by_the_cli() -> None:
    commands = tsqa_commands()
    assert {c[0] for c in commands} == {"check", "diff"} and len(commands) >= 5
    for argv in commands:
        build_parser().parse_args(argv)


def test_the_gate_uses_a_baseline_waivers_junit_and_sarif_and_the_refresh_writes_the_baseline() -> None:
    checks = [c for c in tsqa_commands() if c[0] == "check"]
    assert any({"--baseline", "--waivers", "--junit", "--sarif"} <= set(c) for c in checks)
    assert any("--write-baseline" in c for c in checks)


def test_the_readme_waivers_example_validates(tmp_path: Path) -> None:
    (block,) = [b for b in BLOCKS if "waivers" in b]
    path = tmp_path / "waivers.yaml"
    path.write_text(yaml.safe_dump(block))
    assert load_waivers(path).entries[0].subcode == "not_orthonormal"
