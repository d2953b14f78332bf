"""Fixtures of the service tests: a store of releases (a small one, a slow one, a canary outside), configs and
clients that run the app in-process with its real worker process."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from serve_support import Canary, config_data, need_serve, slow_release, small_release

need_serve()

from fastapi.testclient import TestClient  # noqa: E402

from qa.app.serve.app import create_app  # noqa: E402
from qa.app.serve.config import ServeConfig, parse_config  # noqa: E402


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dataset store, read only by the tests: small/ (2 cases, one fault) and slow/ (seconds to check)."""
    root = tmp_path_factory.mktemp("store")
    small_release(root / "small")
    slow_release(root / "slow")
    return root


@pytest.fixture
def canary(tmp_path: Path) -> Canary:
    return Canary.make(tmp_path / "outside" / "canary")


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., ServeConfig]:
    def made(roots: dict[str, object], **extra: object) -> ServeConfig:
        return parse_config(config_data(roots, tmp_path / "data", **extra), "test config", tmp_path)

    return made


@pytest.fixture
def config(make_config, store: Path) -> ServeConfig:
    return make_config({"store": store, "other": store / "small"})


@pytest.fixture
def client(config: ServeConfig) -> Iterator[TestClient]:
    """The app in-process, its worker process running beside it (the lifespan starts and stops it)."""
    with TestClient(create_app(config)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def idle_client(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The app without a worker, shared by a module's tests that start no check (tokens, limits, headers)."""
    folder = tmp_path_factory.mktemp("idle")
    config = parse_config(config_data({"store": store}, folder / "data"), "test config", folder)
    with TestClient(create_app(config, worker=False)) as test_client:
        yield test_client
