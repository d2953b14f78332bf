"""The synthetic body of sample releases: where each class sits in a phantom, by name, and the CT that shows it."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

# Body coordinates, independent of any grid:
#   u in [-1, 1], +1 toward the patient's right (RAS +x), scaled to the trunk's half width;
#   v in [-1, 1], +1 toward anterior (RAS +y), scaled to the trunk's half depth;
#   w in [0, 1], from mid-thigh (0) to the vertex of the head (1).
AIR_HU, FAT_HU, SOFT_HU = -1000, -100, 40
FAT_LAYER = 0.88  # fraction of the body outline inside which tissue is soft tissue, outside it subcutaneous fat
TRUNK_WIDTH, TRUNK_DEPTH = 0.44, 0.40  # trunk half axes as fractions of the grid's x and y sizes

VERTEBRAE = (*(f"C{i}" for i in range(1, 8)), *(f"T{i}" for i in range(1, 13)), *(f"L{i}" for i in range(1, 7)), "S1")
SPINE_TOP, SPINE_BOTTOM = 0.875, 0.45
# An adult's vertebrae, level by level: typical volume in mL (the v2 dataset card's means, C5-C7 estimated where cut
# masks depress the card's, L6 as L5) and pitch in mm (body plus disc; cervical short, lumbar tall).
VERTEBRA_ML = {"C1": 12.63, "C2": 17.02, "C3": 12.75, "C4": 12.31, "C5": 13.0, "C6": 14.0, "C7": 15.5, "T1": 21.92,
               "T2": 23.04, "T3": 21.8, "T4": 22.98, "T5": 24.31, "T6": 25.05, "T7": 28.14, "T8": 30.04, "T9": 33.17,
               "T10": 37.97, "T11": 41.41, "T12": 44.88, "L1": 50.86, "L2": 55.86, "L3": 62.09, "L4": 62.66,
               "L5": 62.48, "L6": 62.48, "S1": 47.04}
VERTEBRA_PITCH_MM = {"C1": 15, "C2": 20, "C3": 15, "C4": 15, "C5": 15, "C6": 15, "C7": 16, "T1": 19, "T2": 20,
                     "T3": 21, "T4": 21, "T5": 22, "T6": 23, "T7": 24, "T8": 24, "T9": 25, "T10": 26, "T11": 27,
                     "T12": 28, "L1": 33, "L2": 34, "L3": 35, "L4": 35, "L5": 34, "L6": 34, "S1": 32}
MEAN_VERTEBRA_ML = 33.0
# The body the coordinates stand for when a frame gives them millimetres: trunk half width and half depth, and the
# height from mid-thigh to the vertex, of an adult of about 1.75 m.
BODY_MM = (170.0, 120.0, 1250.0)


@dataclass(frozen=True)
class Part:
    """Where one class sits: an ellipsoid, or a sector of an elliptic ring (ribs, colon) when `ring` is set."""

    name: str
    center: tuple[float, float, float]
    radii: tuple[float, float, float]
    hu: int
    # (thickness, from angle, to angle); angle 0 = posterior, pi = anterior
    ring: tuple[float, float, float] | None = None
    side: int = 0  # a ring keeps only its patient-right (+1) or patient-left (-1) half
    sex: str | None = None


@dataclass(frozen=True)
class Region:
    """A field of view along the body and the study type that scans it."""

    study_type: str
    bottom: float
    top: float


REGIONS = (
    Region("ct polytrauma", 0.0, 1.0),
    Region("ct thorax-abdomen-pelvis", 0.30, 0.83),
    Region("ct neck-thorax-abdomen-pelvis", 0.30, 0.90),
    Region("ct abdomen-pelvis", 0.30, 0.63),
    Region("ct thorax", 0.55, 0.84),
)


def _pair(template: str, center: tuple[float, float, float], radii: tuple[float, float, float], hu: int) -> list[Part]:
    """The right and left copy of a structure, mirrored across the midline."""
    u, v, w = center
    return [Part(template.format(side="right"), (u, v, w), radii, hu),
            Part(template.format(side="left"), (-u, v, w), radii, hu)]


RIB_CAGE = (0.84, 0.82, 0.006)  # half axes of the ribs' ring and each rib's half height


def _ribs() -> list[Part]:
    parts = []
    for k in range(1, 13):
        reach = 2.5 if k <= 7 else 2.2 if k <= 10 else 1.5  # floating ribs stop short of the front
        for side, sign in (("right", 1), ("left", -1)):
            parts.append(Part(f"rib_{side}_{k}", (0.0, -0.05, 0.80 - 0.02 * (k - 1)), RIB_CAGE, 450,
                              ring=(0.08, 0.3, reach), side=sign))
    return parts


def _vertebrae() -> list[Part]:
    """Every level at one pitch, its cross-section growing with its typical volume: each keeps its own slices on a
    coarse grid, where the phantom's height is squeezed onto a few dozen slices."""
    step = (SPINE_TOP - SPINE_BOTTOM) / (len(VERTEBRAE) - 1)
    parts = []
    for i, name in enumerate(VERTEBRAE):
        across = 0.12 * math.sqrt(VERTEBRA_ML[name] / MEAN_VERTEBRA_ML)
        parts.append(Part(f"vertebrae_{name}", (0.0, -0.42, SPINE_TOP - i * step), (across, across, 0.4 * step), 500))
    return parts


def anatomical_spine(levels: list[str], scale: dict[str, float] | None = None) -> list[Part]:
    """The given levels (head first) at their anatomical pitches between the spine's top and bottom, each an
    ellipsoid of its typical volume in a body of BODY_MM (times its `scale` factor, linear), 84% of its pitch tall."""
    half_step = (SPINE_TOP - SPINE_BOTTOM) / (len(VERTEBRAE) - 1) / 2
    top, bottom = SPINE_TOP + half_step, SPINE_BOTTOM - half_step
    pitches = [VERTEBRA_PITCH_MM[level] for level in levels]
    squeeze = (top - bottom) * BODY_MM[2] / sum(pitches)
    parts, upper = [], top
    for level, pitch in zip(levels, pitches):
        factor = (scale or {}).get(level, 1.0)
        height = 0.42 * pitch * squeeze * factor  # half the vertebra's height, mm
        area = 3 * VERTEBRA_ML[level] * 1000 * factor ** 3 / (4 * math.pi * height)  # product of the half axes, mm²
        across, deep = math.sqrt(area * 1.25), math.sqrt(area / 1.25)
        centre = upper - pitch * squeeze / 2 / BODY_MM[2]
        parts.append(Part(f"vertebrae_{level}", (0.0, -0.42, centre),
                          (across / BODY_MM[0], deep / BODY_MM[1], height / BODY_MM[2]), 500))
        upper -= pitch * squeeze / BODY_MM[2]
    return parts


def _parts() -> list[Part]:
    """Every placeable structure, in claiming order: one lying inside another comes first and keeps its voxels."""
    return [
        *_pair("kidney_cyst_{side}", (0.45, -0.30, 0.525), (0.04, 0.05, 0.006), 10),
        Part("spinal_cord", (0.0, -0.62, 0.665), (0.05, 0.05, 0.215), 35),
        Part("brain", (0.0, 0.0, 0.945), (0.45, 0.6, 0.045), 35),
        Part("face", (0.0, 0.72, 0.905), (0.3, 0.12, 0.025), 40),
        Part("skull", (0.0, 0.0, 0.94), (0.55, 0.74, 0.058), 1000),
        Part("thyroid_gland", (0.0, 0.25, 0.835), (0.15, 0.06, 0.015), 60),
        Part("trachea", (0.0, 0.2, 0.80), (0.07, 0.07, 0.06), -950),
        Part("esophagus", (-0.05, -0.18, 0.70), (0.05, 0.05, 0.15), 40),
        *_pair("common_carotid_artery_{side}", (0.1, 0.1, 0.845), (0.04, 0.04, 0.025), 50),
        *_pair("subclavian_artery_{side}", (0.25, 0.1, 0.80), (0.12, 0.04, 0.01), 50),
        *_pair("brachiocephalic_vein_{side}", (0.15, 0.32, 0.785), (0.1, 0.04, 0.012), 45),
        Part("brachiocephalic_trunk", (0.05, 0.25, 0.785), (0.04, 0.04, 0.015), 50),
        Part("superior_vena_cava", (0.15, 0.2, 0.74), (0.05, 0.05, 0.03), 45),
        Part("pulmonary_artery", (0.0, 0.35, 0.715), (0.08, 0.08, 0.02), 50),
        Part("pulmonary_vein", (0.0, 0.05, 0.69), (0.15, 0.05, 0.01), 50),
        Part("atrial_appendage_left", (-0.32, 0.35, 0.705), (0.06, 0.06, 0.012), 45),
        Part("heart_atrium_left", (-0.05, 0.05, 0.695), (0.1, 0.1, 0.015), 45),
        Part("heart_atrium_right", (0.1, 0.2, 0.69), (0.1, 0.1, 0.015), 45),
        Part("heart_ventricle_left", (-0.25, 0.3, 0.67), (0.1, 0.1, 0.02), 45),
        Part("heart_ventricle_right", (-0.05, 0.45, 0.665), (0.1, 0.08, 0.02), 45),
        Part("heart_myocardium", (-0.12, 0.25, 0.68), (0.28, 0.3, 0.045), 50),
        Part("heart", (-0.12, 0.25, 0.68), (0.28, 0.3, 0.045), 45),
        Part("aorta", (-0.15, -0.2, 0.60), (0.07, 0.07, 0.14), 50),
        Part("inferior_vena_cava", (0.12, -0.12, 0.56), (0.06, 0.06, 0.10), 45),
        Part("portal_vein_and_splenic_vein", (-0.05, 0.0, 0.55), (0.3, 0.05, 0.01), 50),
        *_pair("iliac_artery_{side}", (0.18, -0.05, 0.43), (0.04, 0.04, 0.03), 50),
        *_pair("iliac_vena_{side}", (0.22, -0.15, 0.425), (0.04, 0.04, 0.03), 45),
        Part("sternum", (0.0, 0.85, 0.71), (0.08, 0.06, 0.06), 400),
        Part("costal_cartilages", (0.0, -0.05, 0.68), (*RIB_CAGE[:2], 0.07), 120, ring=(0.08, 2.55, 2.9)),
        # shoulder girdle and arms outside the rib cage, the clavicles above the first ribs: no bone cuts another
        *_pair("clavicula_{side}", (0.4, 0.66, 0.813), (0.32, 0.06, 0.006), 700),
        *_pair("scapula_{side}", (0.6, -0.74, 0.74), (0.12, 0.04, 0.05), 600),
        *_pair("humerus_{side}", (0.92, 0.0, 0.72), (0.06, 0.1, 0.07), 700),
        *_ribs(),
        *_vertebrae(),
        Part("sacrum", (0.0, -0.55, 0.41), (0.14, 0.12, 0.025), 450),
        *_pair("hip_{side}", (0.5, -0.1, 0.39), (0.25, 0.45, 0.05), 500),
        *_pair("femur_{side}", (0.48, 0.0, 0.18), (0.12, 0.15, 0.16), 800),
        # behind the liver, and claimed before it: a liver that grows must not swallow them
        *_pair("adrenal_gland_{side}", (0.28, -0.4, 0.56), (0.05, 0.05, 0.01), 35),
        Part("gallbladder", (0.3, 0.45, 0.545), (0.08, 0.08, 0.012), 15),
        Part("liver", (0.45, 0.1, 0.58), (0.38, 0.55, 0.045), 55),
        Part("spleen", (-0.6, -0.25, 0.575), (0.15, 0.22, 0.03), 50),
        Part("stomach", (-0.35, 0.3, 0.575), (0.22, 0.25, 0.035), 30),
        Part("pancreas", (-0.1, 0.1, 0.545), (0.3, 0.07, 0.012), 45),
        *_pair("kidney_{side}", (0.42, -0.35, 0.52), (0.12, 0.16, 0.03), 45),
        Part("duodenum", (0.15, 0.2, 0.525), (0.1, 0.1, 0.02), 35),
        Part("colon", (0.0, 0.1, 0.49), (0.75, 0.7, 0.05), 20, ring=(0.2, 1.0, math.pi)),
        Part("small_bowel", (0.0, 0.4, 0.48), (0.45, 0.3, 0.04), 35),
        Part("prostate", (0.0, 0.35, 0.325), (0.08, 0.08, 0.01), 40, sex="m"),  # before the bladder that grows over it
        Part("urinary_bladder", (0.0, 0.45, 0.355), (0.2, 0.2, 0.025), 10),
        *_pair("lung_upper_lobe_{side}", (0.45, 0.05, 0.75), (0.33, 0.55, 0.05), -850),
        Part("lung_middle_lobe_right", (0.45, 0.25, 0.70), (0.3, 0.35, 0.025), -850),
        *_pair("lung_lower_lobe_{side}", (0.45, -0.1, 0.65), (0.33, 0.55, 0.05), -850),
        *_pair("autochthon_{side}", (0.2, -0.75, 0.62), (0.12, 0.15, 0.2), 50),
        *_pair("iliopsoas_{side}", (0.3, -0.3, 0.44), (0.1, 0.1, 0.07), 50),
        # the small and middle glutei beside the hip bone, not inside it
        *_pair("gluteus_minimus_{side}", (0.81, -0.25, 0.40), (0.06, 0.1, 0.025), 50),
        *_pair("gluteus_medius_{side}", (0.66, -0.55, 0.41), (0.15, 0.18, 0.035), 50),
        *_pair("gluteus_maximus_{side}", (0.45, -0.72, 0.36), (0.3, 0.2, 0.07), 50),
    ]


PARTS: tuple[Part, ...] = tuple(_parts())


def placed(classes: list[str], sex: str) -> list[Part]:
    """The parts of the given classes that the model knows, in claiming order; other classes stay empty."""
    wanted = set(classes)
    return [p for p in PARTS if p.name in wanted and (p.sex is None or p.sex == sex)]


@dataclass(frozen=True)
class Frame:
    """How body coordinates land on a grid in RAS voxel order: the field of view and a small per-case jitter."""

    shape: tuple[int, int, int]
    region: Region
    shift: tuple[float, float] = (0.0, 0.0)
    scale: float = 1.0

    def axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        nx, ny, nz = self.shape
        u = (np.arange(nx) - (nx - 1) / 2) / (TRUNK_WIDTH * nx * self.scale) - self.shift[0]
        v = (np.arange(ny) - (ny - 1) / 2) / (TRUNK_DEPTH * ny * self.scale) - self.shift[1]
        w = self.region.bottom + (np.arange(nz) + 0.5) / nz * (self.region.top - self.region.bottom)
        return u, v, w


@dataclass(frozen=True)
class BodyFrame:
    """Body coordinates in millimetres: a body of BODY_MM times its `size` factors (width, depth, height) on a grid of
    `spacing` mm in RAS voxel order, the field of view from the region's bottom to its top, air around the trunk."""

    spacing: tuple[float, float, float]
    region: Region
    size: tuple[float, float, float] = (1.0, 1.0, 1.0)
    shift: tuple[float, float] = (0.0, 0.0)
    margin: float = 1.2  # grid half width over the trunk's half width: arms and skin stay inside the grid

    @property
    def body_mm(self) -> tuple[float, float, float]:
        return tuple(b * s for b, s in zip(BODY_MM, self.size))

    @property
    def shape(self) -> tuple[int, int, int]:
        width, depth, height = self.body_mm
        return (math.ceil(2 * width * self.margin / self.spacing[0]),
                math.ceil(2 * depth * self.margin / self.spacing[1]),
                max(1, round((self.region.top - self.region.bottom) * height / self.spacing[2])))

    def axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        (nx, ny, nz), (width, depth, height) = self.shape, self.body_mm
        u = (np.arange(nx) - (nx - 1) / 2) * self.spacing[0] / width - self.shift[0]
        v = (np.arange(ny) - (ny - 1) / 2) * self.spacing[1] / depth - self.shift[1]
        w = self.region.bottom + (np.arange(nz) + 0.5) * self.spacing[2] / height
        return u, v, w


@dataclass(frozen=True)
class Person:
    """What makes one body unlike another: a linear size factor and a shift (body coordinates) per part, one size
    factor per vertebra (mostly shared along the spine, as in people), and the image value added by contrast."""

    scale: dict[str, float]
    shift: dict[str, tuple[float, float, float]]
    vertebrae: dict[str, float]
    contrast: dict[str, int]


# Parts whose size and place vary little between people or follow the body's outline: they keep the phantom's.
_FIXED = ("rib_", "vertebrae_", "costal_cartilages", "colon", "skull", "brain", "face", "spinal_cord")
# Image values added by the contrast phases (portal venous, arterial) to blood and perfused organs.
_CONTRAST = {
    "venous": {"vessel": 130, "organ": 60, "kidney": 100},
    "arterial": {"vessel": 280, "organ": 25, "kidney": 150},
}
_VESSELS = ("aorta", "artery", "vein", "vena", "trunk", "heart", "atrial", "portal")
_PERFUSED = ("liver", "spleen", "pancreas", "thyroid", "adrenal")


def draw_person(rng: np.random.Generator, organ_sd: float = 0.06, shift_sd: float = 0.004,
                spine_sd: float = 0.05, level_sd: float = 0.02) -> Person:
    """One person: organ volumes vary about 18% (a linear sd of 6%), organs move about 5 mm, the whole spine scales
    together by 5% and each level by 2% more, and a scan is unenhanced, portal venous or arterial."""
    scale, shift = {}, {}
    for part in PARTS:
        if not part.name.startswith(_FIXED):
            scale[part.name] = float(np.exp(rng.normal(0.0, organ_sd)))
            shift[part.name] = tuple(float(x) for x in rng.normal(0.0, shift_sd, 3))
    spine = float(np.exp(rng.normal(0.0, spine_sd)))
    vertebrae = {level: spine * float(np.exp(rng.normal(0.0, level_sd))) for level in VERTEBRAE}
    phase = _CONTRAST.get(str(rng.choice(["none", "venous", "arterial"])), {})
    contrast = {}
    for part in PARTS:
        if part.name.startswith("kidney_") and "cyst" not in part.name:
            contrast[part.name] = phase.get("kidney", 0)
        elif any(key in part.name for key in _VESSELS):
            contrast[part.name] = phase.get("vessel", 0)
        elif part.name.startswith(_PERFUSED):
            contrast[part.name] = phase.get("organ", 0)
    return Person(scale, shift, vertebrae, contrast)


def person_parts(classes: list[str], sex: str, person: Person) -> list[Part]:
    """The person's parts of the given classes in claiming order: the phantom's, varied, with the spine at its
    anatomical pitches (the levels the classes name)."""
    levels = [level for level in VERTEBRAE if f"vertebrae_{level}" in classes]
    spine = {p.name: p for p in anatomical_spine(levels, person.vertebrae)}
    parts = []
    for part in placed(classes, sex):
        if part.name in spine:
            parts.append(spine[part.name])
            continue
        factor = person.scale.get(part.name, 1.0)
        moved = tuple(c + d for c, d in zip(part.center, person.shift.get(part.name, (0.0, 0.0, 0.0))))
        parts.append(dataclasses.replace(part, center=moved, radii=tuple(r * factor for r in part.radii),
                                         hu=part.hu + person.contrast.get(part.name, 0)))
    return parts


def _outline(w: float) -> list[tuple[float, float, float, float]]:
    """The body's cross-section at height w, as ellipses (center u, center v, half axis u, half axis v)."""
    if w >= 0.88:
        return [(0.0, 0.0, 0.6, 0.78)]
    if w >= 0.83:  # the neck, above the shoulders and clavicles
        return [(0.0, -0.15, 0.45, 0.6)]
    if w >= 0.30:
        return [(0.0, 0.0, 1.0, 1.0)]
    return [(0.48, 0.0, 0.42, 0.7), (-0.48, 0.0, 0.42, 0.7)]


def body_radius(frame: Frame | BodyFrame) -> np.ndarray:
    """Per voxel, the normalised distance from the body's axis: below 1 inside the body, below FAT_LAYER under fat."""
    u, v, w = frame.axes()
    radius = np.full(frame.shape, np.inf)
    for k, height in enumerate(w):
        for cu, cv, au, av in _outline(float(height)):
            r = np.sqrt(((u[:, None] - cu) / au) ** 2 + ((v[None, :] - cv) / av) ** 2)
            radius[:, :, k] = np.minimum(radius[:, :, k], r)
    return radius


def _span(axis: np.ndarray, center: float, radius: float) -> tuple[slice, bool]:
    """The voxels along one axis within `radius` of `center`, and whether the part is thinner than a voxel there and
    was given the nearest voxel: a part whose centre lies on the grid never falls between two voxel centres."""
    inside = np.flatnonzero(np.abs(axis - center) <= radius)
    if inside.size:
        return slice(int(inside[0]), int(inside[-1]) + 1), False
    step = abs(float(axis[1] - axis[0])) if axis.size > 1 else 0.0
    if axis.size and min(axis[0], axis[-1]) - step / 2 <= center <= max(axis[0], axis[-1]) + step / 2:
        nearest = int(np.argmin(np.abs(axis - center)))
        return slice(nearest, nearest + 1), True
    return slice(0, 0), False


def part_region(part: Part, frame: Frame | BodyFrame) -> tuple[tuple[slice, slice, slice], np.ndarray]:
    """The voxels of one part within its bounding box: (the box, a boolean array over the box)."""
    u, v, w = frame.axes()
    spans = [_span(axis, c, r) for axis, c, r in zip((u, v, w), part.center, part.radii)]
    box = tuple(span for span, _ in spans)
    # along an axis where the part was given its nearest voxel, that voxel counts as its centre
    du = (0.0 * u[box[0]] if spans[0][1] else u[box[0]] - part.center[0])[:, None, None]
    dv = (0.0 * v[box[1]] if spans[1][1] else v[box[1]] - part.center[1])[None, :, None]
    dw = (0.0 * w[box[2]] if spans[2][1] else w[box[2]] - part.center[2])[None, None, :]
    ru, rv, rw = part.radii
    planar = (du / ru) ** 2 + (dv / rv) ** 2
    if part.ring is None:
        distance = planar + (dw / rw) ** 2
        if distance.size and distance.min() > 1:  # smaller than a voxel and between voxel centres: the nearest voxel
            return box, distance == distance.min()
        return box, distance <= 1
    thickness, start, stop = part.ring
    angle = np.arctan2(np.abs(du), -dv)
    inside = (planar <= 1) & (planar >= (1 - thickness) ** 2) & (np.abs(dw) <= rw) & (angle >= start) & (angle <= stop)
    if part.side:
        inside &= np.sign(du) == part.side
    return box, inside


@dataclass
class Body:
    """A rendered synthetic body: one label per voxel (0 = no class, i = parts[i - 1]) and its CT in HU."""

    parts: list[Part]
    labels: np.ndarray
    ct: np.ndarray

    def mask(self, name: str) -> np.ndarray:
        index = next((i for i, p in enumerate(self.parts, start=1) if p.name == name), None)
        if index is None:
            return np.zeros(self.labels.shape, dtype=np.uint8)
        return (self.labels == index).astype(np.uint8)


def render(classes: list[str], frame: Frame | BodyFrame, sex: str, rng: np.random.Generator,
           person: Person | None = None) -> Body:
    """Place the classes in a body on the frame's grid, each voxel claimed by at most one class, and make its CT; a
    person varies the phantom's parts."""
    parts = placed(classes, sex) if person is None else person_parts(classes, sex, person)
    radius = body_radius(frame)
    labels = np.zeros(frame.shape, dtype=np.int16)
    for index, part in enumerate(parts, start=1):
        box, inside = part_region(part, frame)
        free = inside & (labels[box] == 0) & (radius[box] < 1)
        labels[box][free] = index
    ct = np.where(radius < 1, np.where(radius < FAT_LAYER, SOFT_HU, FAT_HU), AIR_HU).astype(np.float64)
    hu = np.array([0, *(p.hu for p in parts)], dtype=np.float64)
    ct = np.where(labels > 0, hu[labels], ct)
    ct += rng.normal(0.0, 12.0, frame.shape) * (radius < 1) + rng.normal(0.0, 4.0, frame.shape) * (radius >= 1)
    return Body(parts=parts, labels=labels, ct=np.clip(np.rint(ct), -1024, 3071).astype(np.int16))
