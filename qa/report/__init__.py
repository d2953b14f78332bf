"""The report: one pydantic model that is report.json, its JSON Schema and the input of every output."""
