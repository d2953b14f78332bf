"""The finding codes: tsqa's public contract, each with its default severity, subcodes, pass and explanation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning", "info"]
SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "error": 2}
# The pass that sees a finding: quick reads headers and gzip trailers, deep also decompresses every byte.
Pass = Literal["quick", "deep"]


@dataclass(frozen=True)
class Subcode:
    """A variant of a code: waivers, severities (`CODE:subcode`) and CI rules can single it out."""

    name: str
    meaning: str
    needs: Pass | None = None  # None: the pass of its code


@dataclass(frozen=True)
class Code:
    """One finding code. A code with subcodes gives every finding one of them; a code without gives none."""

    code: str
    severity: Severity
    title: str
    what: str
    why: str
    fix: str
    needs: Pass = "quick"
    subcodes: tuple[Subcode, ...] = ()

    def subcode(self, name: str) -> Subcode | None:
        return next((s for s in self.subcodes if s.name == name), None)


_CODES = [
    Code(
        "META_MISSING", "error", "meta.csv is missing",
        "The release root has no metadata table (the spec's meta.file, meta.csv for TotalSegmentator).",
        "Without it no case has a split, age or scanner, and nobody can tell which case folders belong to the release.",
        "Restore meta.csv from the release archive; check that the path points at the release root, not a parent "
        "folder.",
    ),
    Code(
        "META_UNREADABLE", "error", "meta.csv cannot be parsed",
        "meta.csv does not decode with the spec's encoding, has no header line, or its header does not use the "
        "spec's separator.",
        "Every reader of the release (pandas, nnU-Net converters) will fail or read one giant column.",
        "Save the file as UTF-8 (with BOM for TotalSegmentator) and separate columns with the spec's separator (';').",
        subcodes=(
            Subcode("unreadable", "meta.csv is not a regular file inside the release, or reading it failed"),
            Subcode("too_large", "meta.csv is larger than a metadata table can be"),
            Subcode("encoding", "the bytes do not decode with the spec's encoding"),
            Subcode("no_header", "the file has no header line"),
            Subcode("separator", "the header line does not use the spec's separator"),
            Subcode("parse", "the rows cannot be parsed as separated values"),
        ),
    ),
    Code(
        "META_COLUMNS", "error", "meta.csv columns differ from the spec",
        "A column the spec requires is absent (error), or a column the spec does not know is present (warning). "
        "details.missing / details.unknown list them.",
        "Code that reads meta.csv by column name breaks on a missing column; an unknown column often means a wrong "
        "spec or a typo.",
        "Add the missing column (empty values are allowed where the spec says nullable); rename or drop unknown "
        "columns, "
        "or use a spec for the right release.",
        subcodes=(
            Subcode("missing", "a column the spec requires is absent"),
            Subcode("unknown", "a column the spec does not know is present"),
        ),
    ),
    Code(
        "META_VALUE", "error", "a meta.csv cell breaks its column's rule",
        "One cell fails the rule of its column: wrong type, empty where not nullable, not an allowed value, not "
        "matching "
        "the pattern, or out of range. details give row (the line in the file), column, value and the rule that "
        "failed.",
        "Splits, ages and sexes drive training splits and subgroup statistics; one bad cell silently moves a case.",
        "Correct the value in meta.csv at the given line.",
        subcodes=(
            Subcode("empty", "an empty cell in a column that may not be empty"),
            Subcode("type", "not an integer or not a number where the column needs one"),
            Subcode("range", "a number below the column's min or above its max"),
            Subcode("allowed", "not one of the column's allowed values"),
            Subcode("pattern", "not matching the column's pattern"),
        ),
    ),
    Code(
        "META_NORMALIZED", "info", "a meta.csv cell was accepted after normalisation",
        "A cell of a column marked `normalize` only passes its rule after stripping, collapsing double spaces or "
        "lower-casing "
        "(e.g. 'CT Polytrauma ' or 'ct  operation'). details give the raw and the normalised value.",
        "Grouping by such a column splits one value into several spellings.",
        "Rewrite the cell in its normalised form.",
    ),
    Code(
        "META_DUPLICATE_ID", "error", "an image id is listed more than once",
        "The id column of meta.csv has the same id on several rows. details give the id and the lines.",
        "Two rows for one case can disagree on split or metadata; joins on the id multiply rows.",
        "Keep one row per case.",
    ),
    Code(
        "META_SPLIT_COUNTS", "error", "split sizes differ from the release's",
        "The number of cases per split in meta.csv differs from the spec's expected counts. Skipped with --subset.",
        "A split that lost or gained cases makes published results incomparable and usually means an incomplete copy.",
        "Compare with the published release; if you check a partial copy on purpose, pass --subset.",
        subcodes=(
            Subcode("total", "the number of rows differs from the release's case count"),
            Subcode("splits", "the cases per split differ from the release's"),
        ),
    ),
    Code(
        "CASE_MISSING", "error", "a case listed in meta.csv has no folder",
        "meta.csv lists an image id but the release root has no folder of that name.",
        "Training on the release silently uses fewer cases than documented; incomplete downloads look exactly like "
        "this.",
        "Re-extract or re-download the case; otherwise remove its row from meta.csv.",
    ),
    Code(
        "CASE_UNLISTED", "error", "a case folder is not listed in meta.csv",
        "The release root has a case folder (named like a case) whose id meta.csv does not list.",
        "The case has no split and no metadata; loaders that glob folders use it, loaders that read meta.csv do not.",
        "Add its row to meta.csv or remove the folder.",
    ),
    Code(
        "FILE_MISSING", "error", "an expected file is absent",
        "A case lacks its image or the mask of a class that the spec lists. One finding per missing file.",
        "TotalSegmentator ships one mask per class for every case, empty or not; a missing mask breaks converters "
        "and reads as 'structure absent' to the careless.",
        "Restore the file from the release archive; if the class is truly absent, ship an empty mask.",
        subcodes=(
            Subcode("file", "one expected file is absent"),
            Subcode("folder", "a case's mask folder is absent, so all its masks are"),
        ),
    ),
    Code(
        "FILE_UNEXPECTED", "warning", "an unexpected file or folder",
        "A file or folder that the spec does not expect: unknown mask names, stray copies, macOS junk ('._*', "
        "'.DS_Store', "
        "'__MACOSX'), folders at the root that are not cases, or a symbolic link.",
        "Junk inflates the release; an unknown mask name usually means a renamed class that loaders will skip.",
        "Delete the junk; rename masks to the spec's class names, or check with the spec of the right release.",
        subcodes=(
            Subcode("os_junk", "operating-system leftovers: macOS resource forks and folder metadata, Windows "
                               "thumbnails"),
            Subcode("link", "a symbolic link where a file or folder is expected"),
            Subcode("unknown", "a file or folder the spec does not expect"),
        ),
    ),
    Code(
        "FILE_CORRUPT", "error", "a file is not a readable NIfTI",
        "The file is empty, not gzip, truncated, has an unreadable or absurd NIfTI header, is not a regular file, is "
        "a link "
        "leaving the release, or the size its header declares differs from the size in the gzip trailer (ISIZE, "
        "modulo 2^32). "
        "The deep pass also decompresses every byte: a CRC32 or length mismatch anywhere in the stream, or data "
        "shorter than "
        "the header says, is found only there (a header can look perfect over a broken stream). The subcode says "
        "which kind, "
        "details.reason the exact problem.",
        "A training job crashes on it hours in, or, worse, a tool reads garbage silently.",
        "Re-extract the file from the archive (avoid macOS Archive Utility), or re-download the case.",
        subcodes=(
            Subcode("unreadable", "not a regular file, a link leaving the release or dangling, or a read error"),
            Subcode("empty", "a file of 0 bytes"),
            Subcode("not_gzip", "named .gz but without gzip's magic bytes"),
            Subcode("truncated", "the gzip stream ends before the end of the NIfTI header"),
            Subcode("bad_header", "no usable NIfTI header: the stream breaks in it, or its size, magic, dimensions, "
                                  "data type or vox_offset are wrong"),
            Subcode("absurd_size", "the header declares more voxels or bytes than geometry.max_voxels or max_bytes"),
            Subcode("size_mismatch", "the header's size differs from the gzip trailer's: truncated, padded or a wrong "
                                     "header"),
            Subcode("stream", "decompressing every byte fails: CRC32, length, broken deflate data or data shorter than "
                              "declared", "deep"),
        ),
    ),
    Code(
        "GEOM_SHAPE_MISMATCH", "error", "a mask's grid shape differs from its image's",
        "The mask's voxel dimensions are not those of the case's image. details give both shapes.",
        "Voxel-wise training pairs image and mask arrays directly; a different shape crashes or misaligns every "
        "sample.",
        "Resample the mask onto the image grid (nearest neighbour), or regenerate it from the source segmentation.",
    ),
    Code(
        "GEOM_AFFINE_MISMATCH", "error", "a mask's affine differs from its image's",
        "The mask's voxel-to-world affine deviates from the image's by more than geometry.affine_tolerance_mm. "
        "details.max_deviation_mm is the largest displacement of a corner of the grid between the two affines.",
        "Tools that respect world coordinates (ITK, 3D Slicer, MONAI with resampling) shift the mask against the "
        "image, "
        "or refuse to combine them.",
        "Copy the image's sform/qform into the mask header (the voxel data need not change if the shapes agree).",
    ),
    Code(
        "GEOM_SPACING", "error", "the image's voxel spacing is not the release's",
        "The image's voxel size (pixdim) differs from geometry.spacing by more than geometry.spacing_tolerance. "
        "details give the measured and the expected spacing.",
        "The release promises one spacing; models trained without resampling learn the wrong scale.",
        "Resample the case to the release spacing, or fix the spec if the release mixes spacings on purpose.",
        subcodes=(
            Subcode("mismatch", "a finite spacing that differs from the release's"),
            Subcode("not_finite", "a voxel size that is NaN or infinite"),
        ),
    ),
    Code(
        "GEOM_ORIENTATION", "error", "the image's axis codes are not the release's",
        "The orientation of the image's affine (nibabel.aff2axcodes) is not geometry.axcodes, e.g. LPS in a RAS "
        "release.",
        "Left and right classes swap, and pipelines that assume one orientation flip the anatomy.",
        "Reorient the image and its masks together (nibabel.as_closest_canonical) and rewrite both headers.",
    ),
    Code(
        "GEOM_AFFINE_INVALID", "error", "the affine cannot be trusted",
        "Non-finite or singular affine, neither sform nor qform set, a transform code outside NIfTI's 0 to 5, a qform "
        "whose quaternion is not a rotation, sform and qform that disagree beyond the affine tolerance, or direction "
        "cosines that are not orthonormal within geometry.orthonormal_tolerance. The subcode says which, details give "
        "the number. Checked on the image, and on a mask only where its affine differs from the image's.",
        "ITK, SimpleITK and 3D Slicer refuse non-orthonormal direction cosines ('ITK only supports orthonormal "
        "direction "
        "cosines'); tools disagree about which of two disagreeing transforms to use.",
        "Rewrite the header with an orthonormalised rotation (e.g. from the qform) and matching sform and qform.",
        subcodes=(
            Subcode("non_finite", "the affine has NaN or infinite entries"),
            Subcode("singular", "the affine's rotation and scaling part is singular"),
            Subcode("bad_code", "a transform code outside NIfTI's 0 to 5"),
            Subcode("bad_quaternion", "the only transform is a qform whose quaternion is not a rotation"),
            Subcode("no_transform", "neither sform nor qform is set"),
            Subcode("sform_qform", "sform and qform disagree beyond geometry.affine_tolerance_mm"),
            Subcode("not_orthonormal", "direction cosines off orthonormal beyond geometry.orthonormal_tolerance"),
        ),
    ),
    Code(
        "IMAGE_DTYPE", "error", "the image's stored data type is not allowed",
        "The image stores voxels in a type the spec does not allow (TotalSegmentator CTs are int16 Hounsfield units).",
        "Float CTs are twice the size and hint at a resampled or rescaled image; unsigned types cannot hold air at "
        "-1000 HU.",
        "Convert the image to the release's data type.",
    ),
    Code(
        "LABEL_DTYPE", "error", "a mask's stored data type or scaling is not allowed",
        "The mask stores voxels in a type the spec does not allow, or its header scaling (scl_slope, scl_inter) "
        "makes a "
        "stored 0 or 1 load as something else. details give the dtype and the scaling.",
        "Binary masks loaded as floats like 0.999 fail equality tests; the wrong type multiplies the size on disk.",
        "Rewrite the mask as uint8 with scl_slope 1 and scl_inter 0 (or NaN, meaning none).",
        subcodes=(
            Subcode("dtype", "the stored data type is not one of the spec's mask_dtypes"),
            Subcode("scaling", "scl_slope or scl_inter make a stored 0 or 1 load as something else"),
        ),
    ),
]

_CODES += [
    Code(
        "LABEL_VALUES", "error", "a mask holds values other than 0 and 1",
        "A class mask must be binary. details.values lists the other values found with their voxel counts (at most "
        "20).",
        "Converters that build a multi-label map by multiplying or summing masks produce wrong labels; thresholds at "
        "0.5 "
        "or equality tests with 1 silently drop or add voxels.",
        "Binarise the mask (value > 0 -> 1) if the extra values are an export artefact, or find which tool wrote them.",
        needs="deep",
    ),
    Code(
        "LABEL_OVERLAP", "warning", "two masks of a case share voxels",
        "Two class masks of one case mark the same voxels. details give both classes, the voxel count, the volume in "
        "mL and "
        "the share of the smaller mask. The severity comes from the spec's values.overlap_warning_share and "
        "overlap_error_share (below the warning share it is info); the report also aggregates overlaps per class pair.",
        "Converting to one label map lets the later class win silently, so the earlier class loses voxels in "
        "training data.",
        "Decide which class owns the shared voxels and remove them from the other mask.",
        needs="deep",
    ),
    Code(
        "LABEL_IN_PADDING", "warning", "a mask reaches into the image's padding",
        "Part of a mask lies where the image holds only its padding value (the constant minimum that fills the region "
        "outside the scanned volume, when at least 1% of the image has it). details give the voxels there and their "
        "share "
        "of the mask; reported from the spec's values.padding_share on, except for classes in values.padding_exempt "
        "(air-filled organs, whose air a clipped scanner writes as the same value).",
        "Labels beyond the scanned volume are annotation errors: a model is taught that an organ lies where no data "
        "is.",
        "Crop the mask to the scanned volume, or look at the case: the mask may belong to another case or be shifted.",
        needs="deep",
    ),
    Code(
        "LABEL_POSITION", "warning", "a mask lies where its class cannot be",
        "A mask's centroid (world RAS millimetres) breaks the spec's anatomy rules by more than anatomy.tolerance_mm: "
        "a vertebra above its upper neighbour (head_to_feet), a class below one it must lie above (e.g. heart below "
        "the "
        "liver, a lung lobe below it), or a *_left class on the subject's right of its *_right twin. details give both "
        "classes, both centroids and the distance out of place.",
        "Swapped or mislabelled masks teach a model the wrong anatomy; neighbouring vertebrae were mixed up in "
        "10-15% of "
        "reviewed v2.0.1 cases, and hearts were labelled in the abdomen.",
        "Open the case with both masks and relabel the one that is wrong (often two neighbours are swapped).",
        needs="deep",
        subcodes=(
            Subcode("order", "a member of a head-to-feet sequence lies above the one before it"),
            Subcode("above", "a class lies below one it must lie above"),
            Subcode("side", "an *_left class lies on the subject's right of its *_right twin"),
        ),
    ),
    Code(
        "LABEL_ALL_EMPTY", "error", "every mask of a case is empty",
        "The case has masks but none of them marks a single voxel.",
        "A case without annotation teaches a model that nothing is there; a whole MRI release once shipped dozens of "
        "such "
        "cases with matching checksums.",
        "Re-export the segmentations of the case, or drop the case from the release.",
        needs="deep",
    ),
    Code(
        "IMAGE_VALUES", "error", "the image holds implausible values",
        "The image has NaN or infinite voxels, or values outside the spec's values.image_min .. image_max (loaded "
        "units, "
        "HU for CT). details give the measured min, max and the NaN and infinity counts.",
        "Normalisation by min/max or percentiles is thrown off; NaN spreads through every computation. One pre-release "
        "TotalSegmentator CT went from -9758 to 4349 HU.",
        "Re-export the image from the source DICOM, or clip the padding to the scanner's minimum.",
        needs="deep",
    ),
    Code(
        "QA_INTERNAL", "error", "tsqa could not check a case",
        "Checking this case raised an unexpected error or killed its worker process. A case runs in a worker process "
        "of its own (one case per worker at a time, even with --jobs 1); when that process dies (a crash, the kernel's "
        "out-of-memory killer, a kill), the case runs once more in a fresh worker, and only a second death makes this "
        "finding. The other cases were checked. details.error says what happened.",
        "Nothing is known about the case, so it must not pass silently.",
        "Look at the case's files by hand, and report the error to tsqa's developers with the details.",
        subcodes=(
            Subcode("crash", "the worker process checking the case died twice (crash or killed)"),
            Subcode("error", "checking the case raised an unexpected error"),
        ),
    ),
    Code(
        "QA_PARTIAL", "warning", "tsqa checked a case only in part",
        "Measuring the case in full at once needs more memory than --max-memory allows (its files declare a large "
        "grid, or a mask has very many voxels), so the deep pass left a measurement out. Every byte was still "
        "decompressed and verified, and the image and every mask were measured (values, voxels, extent), streamed "
        "in bounded steps where they did not fit whole. details.reason says what it would have needed.",
        "A problem of the kind left out cannot be seen in this case: its absence from the report proves nothing.",
        "Run again with a larger --max-memory where the machine has it (the reason says how much the case needs), "
        "or look at the file: a grid declared far larger than the release's others is a problem of its own.",
        needs="deep",
        subcodes=(
            Subcode("overlaps", "shared voxels were not counted (LABEL_OVERLAP): for the whole case (no room for "
                                "an owner per voxel), or for one mask (no room for its voxels' indices)"),
            Subcode("padding", "the image was streamed, not held: no mask was measured against it "
                               "(LABEL_IN_PADDING, the mean HU inside masks)"),
        ),
    ),
]

CODES: dict[str, Code] = {c.code: c for c in _CODES}
