"""Synthetic populations: a release of many cases at a realistic scale, every body and scan its own (size, organ
volumes and places, field of view, sex, age, contrast phase), for measuring what the label checks find and miss."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.rules.spec import ReleaseSpec
from qa.synth.phantom import BodyFrame, Region, draw_person, render
from qa.synth.sample import CasePlan, Grid, Sample, inject_faults, plan_case, write_body, write_meta

DEFAULT_SPACING = 4.0  # mm: a full-size body on a grid small enough for a few hundred cases
# Fields of view as the release's study types have them (bottom and top along the body, 0 mid-thigh, 1 vertex),
# each case's edges moved by up to JITTER of the body's height (about 4 cm).
FIELDS_OF_VIEW = (
    Region("ct polytrauma", 0.0, 1.0),
    Region("ct thorax-abdomen-pelvis", 0.30, 0.83),
    Region("ct neck-thorax-abdomen-pelvis", 0.30, 0.90),
    Region("ct abdomen-pelvis", 0.30, 0.66),
    Region("ct thorax", 0.55, 0.84),
    Region("ct abdomen", 0.44, 0.66),
)
JITTER = 0.03


@dataclass(frozen=True)
class PersonPlan:
    """One case of a population: its meta.csv plan (sex, age, study type), the body's size and the grid's spacing."""

    plan: CasePlan
    size: tuple[float, float, float]
    spacing: tuple[float, float, float]

    def frame(self) -> BodyFrame:
        return BodyFrame(spacing=self.spacing, region=self.plan.region, size=self.size, shift=self.plan.shift)

    def grid(self) -> Grid:
        shape = self.frame().shape
        spacing = self.spacing
        origin = (-(shape[0] - 1) / 2 * spacing[0], -(shape[1] - 1) / 2 * spacing[1], self.plan.origin_z)
        return Grid(shape=shape, spacing=spacing, origin=origin)


def plan_person(spec: ReleaseSpec, seed: int, index: int, spacing: float) -> PersonPlan:
    """The index-th person of a seed: the sample generator's meta.csv values, a field of view drawn from the study
    types with its edges jittered, and a body whose height follows sex (women 7% shorter) and varies by 4%, its width
    and depth by 6%: with the organs' own variation, an organ's volume varies by about 22% (a liver's does)."""
    rng = np.random.default_rng([seed % (1 << 32), index, 7])
    base = FIELDS_OF_VIEW[int(rng.integers(len(FIELDS_OF_VIEW)))]
    bottom = float(np.clip(base.bottom + rng.uniform(-JITTER, JITTER), 0.0, 0.9))
    top = float(np.clip(base.top + rng.uniform(-JITTER, JITTER), bottom + 0.1, 1.0))
    plan = dataclasses.replace(plan_case(spec, seed, index), region=Region(base.study_type, bottom, top))
    height = (1.0 if plan.sex == "m" else 0.93) * float(np.exp(rng.normal(0.0, 0.04)))
    girth = float(np.exp(rng.normal(0.0, 0.06)))
    size = (girth * float(np.exp(rng.normal(0.0, 0.03))), girth * float(np.exp(rng.normal(0.0, 0.03))), height)
    return PersonPlan(plan=plan, size=size, spacing=(spacing, spacing, spacing))


def write_person(root: Path, spec: ReleaseSpec, person: PersonPlan) -> str:
    """A case folder: the person's CT and one mask per class, on a grid of the person's spacing."""
    plan = person.plan
    rng = np.random.default_rng([plan.seed % (1 << 32), plan.index, 8])
    body = render(spec.classes, person.frame(), plan.sex, rng, person=draw_person(rng))
    write_body(root / plan.case, spec, body, person.grid())
    return plan.case


def write_people(root: Path, spec: ReleaseSpec, people: Iterable[PersonPlan]) -> list[str]:
    return [write_person(root, spec, person) for person in people]


def population_spec(spec: ReleaseSpec, spacing: float = DEFAULT_SPACING) -> ReleaseSpec:
    """The spec a population is checked with: the release's rules at the population's spacing, without a reference
    table (the phantom's organs are not the release's; measure one with qa.report.aggregate.measured_reference)."""
    geometry = spec.geometry.model_copy(update={"spacing": (spacing, spacing, spacing)})
    return spec.model_copy(update={"geometry": geometry, "reference": None})


def make_population(out: Path, spec: ReleaseSpec, cases: int, seed: int = 0, spacing: float = DEFAULT_SPACING,
                    faults: Iterable[str] = (), processes: int = 1) -> Sample:
    """Write a population of `cases` people into the new or empty folder `out` (meta.csv as the sample generator's),
    then inject the named faults, the k-th into the k-th case from the end."""
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty; a population is only written into a new or empty folder")
    people = [plan_person(spec, seed, index, spacing) for index in range(cases)]
    if processes > 1:
        import functools
        import multiprocessing

        with multiprocessing.Pool(processes) as pool:
            pool.map(functools.partial(write_person, out, spec), people, chunksize=1)
    else:
        write_people(out, spec, people)
    write_meta(out, spec, [p.plan for p in people])
    sample = Sample(root=out, cases=[p.plan.case for p in people], seed=seed, shape=people[0].grid().shape,
                    splits={p.plan.case: p.plan.split for p in people})
    inject_faults(sample, spec, list(faults))
    return sample
