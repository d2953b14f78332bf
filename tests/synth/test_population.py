"""The population generator's promises: full-size bodies in millimetres on the asked spacing, a spine without gaps in
anatomical order, people who differ, and the same bytes for the same seed."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from qa.rules.spec import ReleaseSpec, load_spec
from qa.synth.phantom import BODY_MM, VERTEBRAE
from qa.synth.population import make_population, plan_person, population_spec
from qa.synth.sample import Sample


@pytest.fixture(scope="module")
def spec() -> ReleaseSpec:
    return population_spec(load_spec("totalsegmentator-v2"), 5.0)


@pytest.fixture(scope="module")
def population(tmp_path_factory: pytest.TempPathFactory, spec: ReleaseSpec) -> Sample:
    return make_population(tmp_path_factory.mktemp("population") / "release", spec, cases=6, seed=4)


def whole_volumes(root: Path, spec: ReleaseSpec, case: str) -> dict[str, float]:
    """Each mask's volume in mL, of the masks that are not empty and not cut by the grid's first or last slice."""
    found = {}
    for name in spec.classes:
        image = nib.load(root / case / spec.mask_file(name))
        data = np.asarray(image.dataobj)
        slices = np.flatnonzero(data.any(axis=(0, 1)))
        if slices.size and slices[0] > 0 and slices[-1] < data.shape[2] - 1:
            found[name] = int(np.count_nonzero(data)) * float(np.prod(image.header.get_zooms()[:3])) / 1000
    return found


def test_the_grid_has_the_asked_spacing_and_spans_the_field_of_view_in_millimetres(spec: ReleaseSpec) -> None:
    person = plan_person(spec, seed=4, index=0, spacing=5.0)
    grid = person.grid()
    height_mm = (person.plan.region.top - person.plan.region.bottom) * BODY_MM[2] * person.size[2]
    assert grid.spacing == (5.0, 5.0, 5.0)
    assert abs(grid.shape[2] * 5.0 - height_mm) <= 5.0


def test_spine_in_view_has_no_gap_and_runs_head_to_feet(population: Sample, spec: ReleaseSpec) -> None:
    for case in population.cases:
        affine = nib.load(population.root / case / spec.image).affine
        heights = []
        for level in VERTEBRAE:
            name = f"vertebrae_{level}"
            if name not in spec.classes:
                continue
            data = np.asarray(nib.load(population.root / case / spec.mask_file(name)).dataobj)
            heights.append(None if not data.any() else (affine @ [*np.argwhere(data).mean(axis=0), 1.0])[2])
        present = [k for k, h in enumerate(heights) if h is not None]
        assert present == list(range(present[0], present[-1] + 1)), case
        shown = [heights[k] for k in present]
        assert shown == sorted(shown, reverse=True), case


def test_organs_have_adult_volumes_and_people_differ(population: Sample, spec: ReleaseSpec) -> None:
    livers = [whole_volumes(population.root, spec, case).get("liver") for case in population.cases]
    livers = [v for v in livers if v]
    assert livers and all(500 < v < 2500 for v in livers)
    assert len({round(v) for v in livers}) == len(livers)


def test_same_seed_writes_identical_bytes(tmp_path: Path, spec: ReleaseSpec) -> None:
    first = make_population(tmp_path / "a", spec, cases=2, seed=9)
    second = make_population(tmp_path / "b", spec, cases=2, seed=9)
    files = sorted(p.relative_to(first.root) for p in first.root.rglob("*.nii.gz"))
    assert all((first.root / f).read_bytes() == (second.root / f).read_bytes() for f in files)
