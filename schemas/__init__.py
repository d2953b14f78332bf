"""Release specs of tsqa: one YAML per release, and the JSON Schema of the report."""
