"""Checks: pure functions from facts and a spec to findings, each registered with the codes it can raise."""
