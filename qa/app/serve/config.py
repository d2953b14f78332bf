"""tsqa-serve.yaml: the roots that may be checked, where the jobs and reports live, and the API tokens (hashed)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator, model_validator

from qa.report.model import FailOn
from qa.rules.spec import SpecError, builtin_spec_names, load_spec
from qa.rules.yamlfile import YamlFileError, line_of, read_yaml

Role = Literal["read", "submit"]
RootId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
ZIP_SUFFIX = ".zip"
DB_FILE = "jobs.sqlite3"
REPORTS = "reports"


class ConfigError(ValueError):
    """A config that cannot be read or does not validate; one line naming the file, line and field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def hash_token(token: str) -> str:
    """What the config stores of a token: its SHA-256 in hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Root(_Strict):
    """A release (a folder, or a .zip file) that checks may name, with the spec its checks use by default."""

    path: Path = Field(description="Absolute, or relative to the config file's folder.")
    spec: str | None = Field(None, description="The spec its checks use when a request names none (default: "
                                               "detected from the release).")

    @model_validator(mode="before")
    @classmethod
    def _path_alone(cls, value: object) -> object:
        return {"path": value} if isinstance(value, str | Path) else value

    @property
    def is_zip(self) -> bool:
        return self.path.suffix.lower() == ZIP_SUFFIX and not self.path.is_dir()


class Token(_Strict):
    """An API token: a name for the logs, a role, and the SHA-256 of the token (the token itself is never stored)."""

    name: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")
    role: Role = Field(description="read: look at checks and reports; submit: also start and cancel checks.")
    token_sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="`tsqa serve --new-token NAME` prints one.")


class ServeConfig(_Strict):
    """What `tsqa serve` serves, and how."""

    roots: dict[RootId, Root] = Field(min_length=1, description="Root id -> release folder or .zip file.")
    data: Path = Field(description="The job database and the reports folder.")
    host: str = Field("127.0.0.1", description="The address to bind; 127.0.0.1 keeps the service on this machine.")
    port: int = Field(8787, ge=0, le=65535)
    jobs: int = Field(1, ge=1, le=256, description="Worker processes of each check.")
    parallel_checks: int = Field(1, ge=1, le=64, description="Checks running at once (one per root at most).")
    fail_on: FailOn = Field("error", description="The severity at which a check's verdict is FAIL.")
    tokens: list[Token] = Field(min_length=1)
    specs: list[Path] = Field([], description="Spec YAML files offered beside the built-in specs.")
    max_request_bytes: int = Field(65_536, ge=1024, le=16 << 20, description="Larger request bodies are refused.")
    cors_origins: list[str] = Field([], description="Origins allowed to call the API from a browser (none by "
                                                    "default).")
    session_hours: float = Field(12.0, gt=0, le=24 * 30, description="How long a UI sign-in lasts.")

    @field_validator("tokens")
    @classmethod
    def _tokens_unique(cls, value: list[Token]) -> list[Token]:
        for what, keys in (("name", [t.name for t in value]), ("token", [t.token_sha256 for t in value])):
            if len(set(keys)) != len(keys):
                raise ValueError(f"two tokens have the same {what}")
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        bad = [o for o in value if not re.fullmatch(r"https?://[A-Za-z0-9.-]+(:\d{1,5})?", o)]
        if bad:
            raise ValueError(f"not an origin like https://host:port: {', '.join(bad)}")
        return value

    @property
    def db(self) -> Path:
        return self.data / DB_FILE

    @property
    def reports(self) -> Path:
        return self.data / REPORTS

    def spec_names(self) -> list[str]:
        """Every spec a check may name: the built-in ones, then the config's files by their ids."""
        return builtin_spec_names() + [load_spec(str(p)).id for p in self.specs]

    def spec_path(self, name: str) -> str:
        """What load_spec takes for a spec name a request gave (checked against spec_names first)."""
        for path in self.specs:
            if load_spec(str(path)).id == name:
                return str(path)
        return name

    def token_names(self) -> dict[str, Token]:
        return {t.name: t for t in self.tokens}


def _resolve(config: ServeConfig, base: Path) -> ServeConfig:
    """Paths relative to the config file's folder made absolute, so that the service never depends on its cwd."""
    roots = {k: r.model_copy(update={"path": (base / r.path).absolute()}) for k, r in config.roots.items()}
    return config.model_copy(update={"roots": roots, "data": (base / config.data).absolute(),
                                     "specs": [(base / p).absolute() for p in config.specs]})


def check_places(config: ServeConfig) -> None:
    """What the file system must hold for the config to make sense; ConfigError names the field."""
    data = config.data.resolve()
    for key, root in config.roots.items():
        where = f"roots.{key}"
        if not root.path.exists():
            raise ConfigError(f"{where}: {root.path} does not exist")
        if not root.path.is_dir() and not (root.path.is_file() and root.is_zip):
            raise ConfigError(f"{where}: {root.path} is neither a folder nor a .zip file")
        if data.is_relative_to(root.path.resolve()):
            raise ConfigError(f"data: {config.data} is inside root {key}; tsqa never writes into the data it checks")
    names = builtin_spec_names()
    for k, path in enumerate(config.specs):
        try:
            spec = load_spec(str(path))
        except SpecError as exc:
            raise ConfigError(f"specs.{k}: {exc}") from exc
        if spec.id in names:
            raise ConfigError(f"specs.{k}: spec id {spec.id} is taken by another spec")
        names.append(spec.id)
    for key, root in config.roots.items():
        if root.spec is not None and root.spec not in names:
            raise ConfigError(f"roots.{key}.spec: unknown spec {root.spec!r}; known: {', '.join(names)}")


def parse_config(data: object, origin: str, base: Path, tree: yaml.Node | None = None) -> ServeConfig:
    """Validate config data; ConfigError says where (the YAML line when `tree` is given) and what is wrong."""
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: a config is a mapping with roots:, data: and tokens:")
    try:
        config = ServeConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        line = line_of(tree, first["loc"]) if tree is not None else None
        where = f"{origin}:{line}" if line is not None else origin
        field = ".".join(str(p) for p in first["loc"]) or "(top level)"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"{where}: {field}: {message}{more}") from exc
    config = _resolve(config, base)
    try:
        check_places(config)
    except ConfigError as exc:
        raise ConfigError(f"{origin}: {exc}") from exc
    return config


def load_config(path: Path) -> ServeConfig:
    """Read and validate tsqa-serve.yaml; ConfigError names the file, line and field of the first problem."""
    try:
        data, tree = read_yaml(path, "config")
    except YamlFileError as exc:
        raise ConfigError(str(exc)) from exc
    return parse_config(data, str(path), path.parent.absolute(), tree)
