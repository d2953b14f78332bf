"""Synthetic releases: the phantom body and the sample generator with its fault injectors."""
