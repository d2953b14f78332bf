"""tsqa-serve.yaml is validated like the specs: a mistake names the file, line and field, and `tsqa serve` exits 2."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from serve_support import SUBMIT_TOKEN, sha, small_release, write_config

from qa.app.cli import main
from qa.app.serve.config import ConfigError, load_config
from qa.app.serve.security import match_token


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_release(tmp_path_factory.mktemp("config") / "release", cases=1, faults=())


def test_a_valid_config_loads_with_paths_relative_to_its_folder(tmp_path: Path, release: Path) -> None:
    (tmp_path / "conf").mkdir()
    path = write_config(tmp_path / "conf" / "tsqa-serve.yaml", {"v2": release}, Path("state"), jobs=2)
    config = load_config(path)
    assert config.data == tmp_path / "conf" / "state" and config.host == "127.0.0.1" and config.port == 8787
    assert config.roots["v2"].path == release and config.jobs == 2 and not config.roots["v2"].is_zip


@pytest.mark.parametrize("change,where", [
    (lambda d: d["roots"]["v2"].update(pth="x"), "roots.v2.pth: Extra inputs are not permitted"),
    (lambda d: d["tokens"][0].update(token_sha256="abc"), "tokens.0.token_sha256: String should match pattern"),
    (lambda d: d["tokens"][0].update(role="admin"), "tokens.0.role: Input should be 'read' or 'submit'"),
    (lambda d: d.update(port=70000), "port: Input should be less than or equal to 65535"),
    (lambda d: d.update(roots={"Bad Id": d["roots"]["v2"]}), "roots.Bad Id.[key]: String should match pattern"),
    (lambda d: d["tokens"].append(dict(d["tokens"][0])), "tokens: two tokens have the same name"),
])
def test_a_mistake_names_the_line_and_field(tmp_path: Path, release: Path, change, where: str) -> None:
    data = {"roots": {"v2": {"path": str(release)}}, "data": str(tmp_path / "data"),
            "tokens": [{"name": "ci", "role": "submit", "token_sha256": sha(SUBMIT_TOKEN)}]}
    change(data)
    path = tmp_path / "tsqa-serve.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:") and where in message, message
    assert message.split(":")[1].isdigit(), "the line of the problem"


def test_a_root_that_does_not_exist_or_holds_the_data_folder_is_refused(tmp_path: Path, release: Path) -> None:
    missing = write_config(tmp_path / "a.yaml", {"v2": tmp_path / "nowhere"}, tmp_path / "data")
    with pytest.raises(ConfigError, match="roots.v2: .* does not exist"):
        load_config(missing)
    inside = write_config(tmp_path / "b.yaml", {"v2": release}, release / "tsqa-data")
    with pytest.raises(ConfigError, match="is inside root v2; tsqa never writes into the data it checks"):
        load_config(inside)


def test_tsqa_serve_with_a_bad_config_exits_2_with_one_line(tmp_path: Path, capsys) -> None:
    path = tmp_path / "tsqa-serve.yaml"
    path.write_text("roots: {v2: /nowhere}\ndata: /tmp/x\ntokens: []\n")
    assert main(["serve", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"tsqa: error: {path}:3: tokens:")


def test_tsqa_serve_needs_exactly_one_of_its_modes(capsys) -> None:
    assert main(["serve"]) == 2
    assert main(["serve", "--demo", "--new-token", "x"]) == 2
    assert "one of --config FILE, --demo or --new-token NAME" in capsys.readouterr().err


def test_new_token_prints_a_token_and_the_config_line_that_admits_it(tmp_path: Path, release: Path, capsys) -> None:
    assert main(["serve", "--new-token", "ci", "--role", "submit"]) == 0
    out = capsys.readouterr().out.splitlines()
    token = out[0].rsplit(" ", 1)[1]
    entry = yaml.safe_load(out[2].strip().removeprefix("- "))
    assert entry["name"] == "ci" and entry["role"] == "submit" and token not in "\n".join(out[1:])
    path = tmp_path / "tsqa-serve.yaml"
    path.write_text(yaml.safe_dump({"roots": {"v2": str(release)}, "data": str(tmp_path / "d"), "tokens": [entry]}))
    config = load_config(path)
    assert match_token(config, token).name == "ci" and match_token(config, token + "x") is None
