"""tsqa: release QA for TotalSegmentator-style segmentation datasets."""

__version__ = "0.2.0"
