"""Outputs made from a Report: report.json, report.html and the reports index, the console summary."""
