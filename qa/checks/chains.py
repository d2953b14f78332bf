"""Chains of classes that follow each other head to feet: gaps, and members labelled as two (deep mode)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from qa.checks.base import Context, check, finding
from qa.rules.finding import Finding
from qa.rules.spec import ChainSpec, MergedSpec, ReleaseSpec
from qa.scan.facts import CaseFacts
from qa.scan.measures import Measured, extent_mm, volume_ml


def chain_gaps(case: CaseFacts, spec: ReleaseSpec, chain: ChainSpec, masks: dict[str, Measured]) -> list[Finding]:
    """Members whose mask is empty while a member above and a member below are not."""
    present = [k for k, name in enumerate(chain.members) if name in masks and masks[name].values.voxels > 0]
    if len(present) < 2:
        return []
    found = []
    for k in range(present[0] + 1, present[-1]):
        name = chain.members[k]
        if name not in masks or masks[name].values.voxels > 0:
            continue
        above = chain.members[max(p for p in present if p < k)]
        below = chain.members[min(p for p in present if p > k)]
        path = masks[name].path
        found.append(finding(spec, "LABEL_CHAIN", case.case, path,
                             f"{path}: {name} is empty between {above} and {below}, which are not", subcode="gap",
                             class_name=name, above=above, below=below))
    return found


@dataclass(frozen=True)
class Prediction:
    """What a member's whole neighbours predict for it: volume and extent, and which neighbours spoke."""

    volume_ml: float
    extent_mm: float
    neighbours: list[str]


def _usable_neighbours(k: int, chain: ChainSpec, masks: dict[str, Measured], rule: MergedSpec) -> list[int]:
    """The nearest whole member of at least rule.neighbour_min_ml on each side, within rule.neighbour_distance."""
    chosen = []
    for step in (-1, 1):
        for distance in range(1, rule.neighbour_distance + 1):
            j = k + step * distance
            if not 0 <= j < len(chain.members) or chain.members[j] not in masks:
                continue
            m = masks[chain.members[j]]
            if m.whole and volume_ml(m.values, m.header) >= rule.neighbour_min_ml:
                chosen.append(j)
                break
    return chosen


def predict(k: int, chain: ChainSpec, masks: dict[str, Measured], rule: MergedSpec) -> Prediction | None:
    """The neighbours' volumes scaled to member k by the reference volumes and their extents, each log-averaged with
    weights 1 / distance: the plain geometric mean of two adjacent neighbours, an interpolation across a gap."""
    reference = chain.reference_ml
    neighbours = _usable_neighbours(k, chain, masks, rule)
    if reference is None or not neighbours:
        return None
    weights = [1.0 / abs(j - k) for j in neighbours]
    log_volume = log_extent = 0.0
    for j, weight in zip(neighbours, weights):
        m = masks[chain.members[j]]
        log_volume += weight * (math.log(volume_ml(m.values, m.header)) + math.log(reference[k] / reference[j]))
        log_extent += weight * math.log(extent_mm(m.values, m.header))
    total = sum(weights)
    return Prediction(math.exp(log_volume / total), math.exp(log_extent / total),
                      [chain.members[j] for j in neighbours])


def merged_members(case: CaseFacts, spec: ReleaseSpec, chain: ChainSpec, masks: dict[str, Measured]) -> list[Finding]:
    """Whole members far larger (or taller) than their neighbours predict: two members labelled as one."""
    rule = spec.labels.merged
    found = []
    for k, name in enumerate(chain.members):
        m = masks.get(name)
        if m is None or not m.whole:
            continue
        expected = predict(k, chain, masks, rule)
        if expected is None:
            continue
        volume, extent = volume_ml(m.values, m.header), extent_mm(m.values, m.header)
        volume_ratio = volume / expected.volume_ml
        extent_ratio = None if name in rule.extent_skip else extent / expected.extent_mm
        tall = extent_ratio is not None and extent_ratio >= rule.extent_ratio
        if volume_ratio >= rule.volume_ratio or (volume_ratio >= rule.soft_volume_ratio and tall):
            severity = None
        elif tall:
            severity = "info"
        else:
            continue
        measured = f"{volume_ratio:.2f}x the volume"
        if extent_ratio is not None:
            measured += f" and {extent_ratio:.2f}x the head-to-feet extent"
        found.append(finding(
            spec, "LABEL_CHAIN", case.case, m.path,
            f"{m.path}: {name} has {measured} that {' and '.join(expected.neighbours)} predict: two members labelled "
            "as one? (or a block vertebra, a fusion, a transitional level)",
            subcode="merged", severity=severity, class_name=name, volume_ratio=round(volume_ratio, 3),
            volume_ml=round(volume, 3), predicted_ml=round(expected.volume_ml, 3),
            extent_ratio=None if extent_ratio is None else round(extent_ratio, 3), extent_mm=round(extent, 2),
            predicted_extent_mm=round(expected.extent_mm, 2), neighbours=expected.neighbours))
    return found


@check("chains.case", ("LABEL_CHAIN",), needs="deep")
def check_chains(case: CaseFacts, ctx: Context) -> list[Finding]:
    spec = ctx.spec
    if not spec.labels.chains:
        return []
    masks = ctx.measured_masks(case)
    found = []
    for chain in spec.labels.chains:
        found += chain_gaps(case, spec, chain, masks) + merged_members(case, spec, chain, masks)
    return found
