"""The API's OpenAPI document as committed in schemas/openapi.json: `python -m qa.app.serve.openapi` writes it."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from qa.app.serve.app import create_app
from qa.app.serve.config import parse_config


def api_document() -> dict:
    """The document every service serves at /api/v1/openapi.json; it does not depend on the config, so a throwaway
    one (an empty root, a token nobody holds) builds it."""
    with tempfile.TemporaryDirectory() as scratch:
        base = Path(scratch)
        (base / "root").mkdir()
        config = parse_config({"roots": {"root": str(base / "root")}, "data": str(base / "data"),
                               "tokens": [{"name": "none", "role": "read", "token_sha256": "0" * 64}]},
                              "the OpenAPI document's config", base)
        return create_app(config, worker=False).openapi()


def api_text() -> str:
    return json.dumps(api_document(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    sys.stdout.write(api_text())
