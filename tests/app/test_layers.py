"""The import rule of qa/'s layers: only app/ imports from every layer, and no import runs back up the pipeline."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from support import REPO

PACKAGE = REPO / "qa"
# What each layer may import from qa, besides itself. Order of the pipeline, bottom up:
# source -> rules -> scan -> execute -> checks -> report -> output -> app; synth writes samples from rules alone.
ALLOWED = {
    "source": set(),
    "rules": {"source"},
    "scan": {"source", "rules"},
    "execute": set(),
    "checks": {"rules", "scan.facts", "scan.measures"},  # facts and measures, never scan's readers or a source
    "report": {"rules", "scan.facts", "scan.measures"},
    "output": {"report", "rules"},  # output sees the Report (and the evidence files beside it)
    "synth": {"rules"},
    "app": {"source", "rules", "scan", "execute", "checks", "report", "output", "synth"},
}


def qa_imports(path: Path) -> set[str]:
    """Every qa module a file imports, at module level or inside functions, as 'layer.module'."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        found |= {name.removeprefix("qa.") for name in names if name.startswith("qa.")}
    return found


def layer_of(path: Path) -> str | None:
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else None


def allowed(layer: str, target: str) -> bool:
    if target == "__init__" or target.split(".")[0] == layer:
        return True
    return any(target == a or target.startswith(f"{a}.") for a in ALLOWED[layer])


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if layer_of(p) is not None)


def test_every_layer_of_the_package_has_a_rule() -> None:
    assert {layer_of(p) for p in MODULES} == set(ALLOWED)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_stay_within_the_layers_below(path: Path) -> None:
    layer = layer_of(path)
    assert sorted(t for t in qa_imports(path) if not allowed(layer, t)) == []


def test_the_rule_catches_an_import_running_back_up(tmp_path: Path) -> None:
    sample = tmp_path / "checks.py"
    sample.write_text("from qa.scan.nifti import read_file_facts\nfrom qa.app.pipeline import run_check\n")
    assert sorted(t for t in qa_imports(sample) if not allowed("checks", t)) == ["app.pipeline", "scan.nifti"]
