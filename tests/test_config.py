from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from slimaudio import config
from slimaudio.config import Field
from slimaudio.errors import ParamError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def params_copy(tmp_path: Path) -> Path:
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    shutil.copytree(REPO / "profiles", tmp_path / "profiles")
    return tmp_path / "params.yaml"


def _edit(path: Path, fn) -> None:
    data = yaml.safe_load(path.read_text())
    fn(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def test_repo_params_validate_for_every_profile(params_copy: Path) -> None:
    for prof in sorted(p.stem for p in (REPO / "profiles").glob("*.yaml")):
        _edit(params_copy, lambda d, p=prof: d.__setitem__("profile", p))
        merged = config.resolve(params_copy)
        assert merged["profile"] == prof


def test_unknown_key_names_key_and_suggests(params_copy: Path) -> None:
    _edit(params_copy, lambda d: d["base"].__setitem__("sed", 1))
    with pytest.raises(ParamError, match=r"unknown key 'base\.sed' \(did you mean 'seed'\?\)"):
        config.resolve(params_copy)


def test_unknown_section(params_copy: Path) -> None:
    _edit(params_copy, lambda d: d.__setitem__("bse", {}))
    with pytest.raises(ParamError, match=r"unknown section 'bse' \(did you mean 'base'\?\)"):
        config.resolve(params_copy)


def test_wrong_type_and_range(params_copy: Path) -> None:
    _edit(params_copy, lambda d: d["base"].__setitem__("seed", "abc"))
    with pytest.raises(ParamError, match=r"base\.seed = 'abc' has the wrong type"):
        config.resolve(params_copy)
    _edit(params_copy, lambda d: d["base"].__setitem__("seed", -3))
    with pytest.raises(ParamError, match=r"base\.seed = -3 is below the minimum"):
        config.resolve(params_copy)
    _edit(params_copy, lambda d: d["base"].__setitem__("seed", 1))
    _edit(params_copy, lambda d: d["base"].__setitem__("on_bad_audio", "ignore"))
    with pytest.raises(ParamError, match=r"base\.on_bad_audio = 'ignore' is not one of"):
        config.resolve(params_copy)


def test_missing_key(params_copy: Path) -> None:
    _edit(params_copy, lambda d: d["base"].pop("threads"))
    with pytest.raises(ParamError, match=r"missing key 'base\.threads'"):
        config.resolve(params_copy)


def test_unknown_profile_and_bad_overlay(params_copy: Path) -> None:
    _edit(params_copy, lambda d: d.__setitem__("profile", "huge"))
    with pytest.raises(ParamError, match="profile = 'huge' has no"):
        config.resolve(params_copy)
    (params_copy.parent / "profiles" / "bad.yaml").write_text("base: {sead: 1}\n")
    _edit(params_copy, lambda d: d.__setitem__("profile", "bad"))
    with pytest.raises(ParamError, match=r"unknown key 'base\.sead'"):
        config.resolve(params_copy)


def test_overlay_merges_deeply(params_copy: Path) -> None:
    (params_copy.parent / "profiles" / "t.yaml").write_text("base: {threads: 2}\n")
    _edit(params_copy, lambda d: d.__setitem__("profile", "t"))
    merged = config.resolve(params_copy)
    assert merged["base"]["threads"] == 2
    assert merged["base"]["seed"] == yaml.safe_load((REPO / "params.yaml").read_text())["base"]["seed"]


def test_invalid_yaml_is_one_line(params_copy: Path) -> None:
    params_copy.write_text("base: [unclosed\n")
    with pytest.raises(ParamError) as info:
        config.resolve(params_copy)
    assert "\n" not in str(info.value) and "not valid YAML" in str(info.value)


def test_params_object_guards_undeclared_sections(params_copy: Path) -> None:
    p = config.load_params(params_copy, ["base"])
    assert p["base"]["sample_rate"] == 16000
    assert "base.seed" in p.flat()
    with pytest.raises(ParamError, match="did not declare"):
        p["prepare_sounds"]


def test_field_rules() -> None:
    Field(float, lo=0).check("k", 3)  # ints pass as floats
    with pytest.raises(ParamError):
        Field(int).check("k", True)  # bools are not ints
    with pytest.raises(ParamError):
        Field(int).check("k", 2.5)
    Field(int, nullable=True).check("k", None)
    with pytest.raises(ParamError, match="must not be null"):
        Field(int).check("k", None)
    with pytest.raises(ParamError, match=r"k\[1\] = 'x'"):
        Field(list, item=Field(int)).check("k", [1, "x"])
    with pytest.raises(ParamError, match="at least 2"):
        Field(list, min_len=2).check("k", [1])
