"""Executors: map a pure per-case function over cases and yield results as they complete."""
