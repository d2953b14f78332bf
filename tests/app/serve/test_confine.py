"""A check reads only a configured root and a folder inside it: every way out is refused with a 4xx, no job is made,
and the canary release outside the root is never read, at submission or when the job starts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from serve_support import SUBMIT_TOKEN, Canary, bearer, config_data, small_release
from support import report_data

from qa.app.serve.app import create_app
from qa.app.serve.config import ServeConfig, parse_config
from qa.app.serve.confine import Refused, resolve_target
from qa.app.serve.store import JobStore
from qa.app.serve.worker import run_job
from qa.synth.archive import zip_release

SUBMIT = bearer(SUBMIT_TOKEN)


@pytest.fixture(scope="module")
def place(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Canary]:
    """root/ with a release, a file, a link inside and a link out to the canary beside root/."""
    base = tmp_path_factory.mktemp("confine")
    canary = Canary.make(base / "outside" / "canary")
    root = base / "root"
    small_release(root / "small")
    (root / "file.txt").write_text("not a folder")
    (root / "link-out").symlink_to(canary.root, target_is_directory=True)
    (root / "link-in").symlink_to(root / "small", target_is_directory=True)
    (root / "small" / "up").symlink_to("../../outside/canary", target_is_directory=True)
    return root, canary


@pytest.fixture(scope="module")
def confined(place, tmp_path_factory) -> Iterator[tuple[TestClient, ServeConfig, Canary]]:
    """The app with its worker: a job that slipped through would run and read the canary."""
    root, canary = place
    folder = tmp_path_factory.mktemp("confined")
    config = parse_config(config_data({"root": root}, folder / "data"), "test config", folder)
    with TestClient(create_app(config)) as client:
        yield client, config, canary


WAYS_OUT = {
    "dot-dot": "..",
    "dot-dot-to-canary": "../outside/canary",
    "dot-dot-inside-then-out": "small/../../outside/canary",
    "dot-slash-dot-dot": "small/./../../outside/canary",
    "absolute": "{canary}",
    "double-slash": "//outside/canary",
    "home": "~/canary",
    "link-out": "link-out",
    "under-link-out": "link-out/s0000",
    "nested-link-out": "small/up",
    "encoded-dot-dot": "%2e%2e/outside/canary",
    "encoded-upper": "%2E%2E%2Foutside%2Fcanary",
    "encoded-slash": "small%2F..%2F..%2Foutside",
    "double-encoded": "%252e%252e/outside",
    "nul": "small\x00/../../outside",
    "newline": "small\n",
    "backslashes": "small\\..\\..\\outside",
    "fullwidth-dots": "\uff0e\uff0e/outside/canary",
    "a-file": "file.txt",
    "missing": "missing",
}


@pytest.mark.parametrize("way", WAYS_OUT, ids=list(WAYS_OUT))
def test_a_path_leaving_the_root_is_refused_and_nothing_is_read(confined, way: str) -> None:
    client, config, canary = confined
    path = WAYS_OUT[way].format(canary=canary.root)
    response = client.post("/api/v1/checks", json={"root": "root", "path": path}, headers=SUBMIT)
    assert 400 <= response.status_code < 500, response.text
    assert str(canary.root) not in response.text and "Traceback" not in response.text
    assert JobStore(config.db).jobs() == []
    assert canary.untouched()


@pytest.mark.parametrize("root", ["../root", "root/..", "ROOT", "", "root/small"])
def test_a_root_that_is_not_configured_is_refused(confined, root: str) -> None:
    client, config, canary = confined
    response = client.post("/api/v1/checks", json={"root": root}, headers=SUBMIT)
    assert response.status_code == 404
    assert JobStore(config.db).jobs() == [] and canary.untouched()


@pytest.mark.parametrize("path", ["", ".", "small", "small/", "./small", "link-in"])
def test_folders_inside_the_root_are_accepted(place, tmp_path: Path, path: str) -> None:
    root, _ = place
    config = parse_config(config_data({"root": root}, tmp_path / "data"), "test config", tmp_path)
    target = resolve_target(config, "root", path)
    assert target.real.is_relative_to(root.resolve()) and target.real.is_dir()


def test_the_path_is_confined_again_when_the_job_starts(tmp_path: Path) -> None:
    """Accepted at submission, then the folder became a link out before the worker took the job: refused then."""
    canary = Canary.make(tmp_path / "outside" / "canary")
    root = tmp_path / "root"
    small_release(root / "part")
    config = parse_config(config_data({"root": root}, tmp_path / "data"), "test config", tmp_path)
    assert resolve_target(config, "root", "part").path == "part"
    store = JobStore(config.db)
    job = store.submit("root", "part", None, "deep", True, "ci")
    assert store.claim().id == job.id
    (root / "part").rename(tmp_path / "moved")
    (root / "part").symlink_to(canary.root, target_is_directory=True)
    run_job(config, job.id)
    done = store.get(job.id)
    assert done.state == "failed" and done.reason.startswith("refused when it started: part leaves root root")
    assert canary.untouched()
    assert not config.reports.exists() or not any(config.reports.rglob("report.json"))


def test_a_zip_root_is_checked_whole_in_place_and_a_file_that_is_no_zip_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "incoming.zip"
    zip_release(small_release(tmp_path / "release"), archive, top_folder="Totalsegmentator_dataset_v201")
    (tmp_path / "fake.zip").write_text("not an archive")
    config = parse_config(config_data({"incoming": archive, "fake": tmp_path / "fake.zip"}, tmp_path / "data"),
                          "test config", tmp_path)
    assert config.roots["incoming"].is_zip
    with pytest.raises(Refused, match="check it whole"):
        resolve_target(config, "incoming", "sub")
    store = JobStore(config.db)
    job = store.submit("incoming", "", None, "quick", True, "ci")
    store.claim()
    run_job(config, job.id)
    done = store.get(job.id)
    assert done.state == "finished" and done.counts["by_code"]["GEOM_AFFINE_MISMATCH"] == 1
    report = report_data(config.reports / done.run / "report.json")
    assert (report["archive"]["name"], report["archive"]["top_folder"]) == ("incoming.zip",
                                                                         "Totalsegmentator_dataset_v201")
    fake = store.submit("fake", "", None, "quick", True, "ci")
    store.claim()
    run_job(config, fake.id)
    assert store.get(fake.id).state == "failed" and "not a zip archive" in store.get(fake.id).reason
