"""Scanning a release into facts: the only layer that reads the data (through a ReleaseSource), read-only."""
