from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from slimaudio import compose as composer
from slimaudio import config
from slimaudio.config import Field
from slimaudio.errors import ParamError

REPO = Path(__file__).resolve().parents[1]


PROFILES = sorted(p.stem for p in (REPO / "conf" / "profile").glob("*.yaml"))


@pytest.fixture
def params_copy(tmp_path: Path) -> Path:
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    return tmp_path / "params.yaml"


def _edit(path: Path, fn) -> None:
    data = yaml.safe_load(path.read_text())
    fn(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _committed_params() -> dict:
    """params.yaml as committed (the workspace copy changes with every `dvc exp run -S`)."""
    shown = subprocess.run(["git", "show", "HEAD:params.yaml"], cwd=REPO, capture_output=True,
                           text=True, check=False)
    return yaml.safe_load(shown.stdout) if shown.returncode == 0 else config.read_yaml(REPO / "params.yaml")


def test_committed_params_are_the_composed_default() -> None:
    """params.yaml is what `dvc exp run` / `make params` composes from conf/, never edited."""
    assert _committed_params() == composer.compose([])


def test_a_yaml_error_in_conf_names_file_and_line(tmp_path: Path) -> None:
    shutil.copytree(REPO / "conf", tmp_path / "conf")
    with (tmp_path / "conf" / "profile" / "tiny.yaml").open("a") as fh:
        fh.write("ecapa:\n  train: [unclosed\n")
    with pytest.raises(ParamError) as info:
        composer.compose(["profile=tiny"], tmp_path / "conf")
    assert str(info.value).startswith(f"{tmp_path / 'conf' / 'profile' / 'tiny.yaml'}:"), info.value
    assert "not valid YAML" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("override, message", [
    ("ecapa.train.snr_db=[20,0]", r"ecapa\.train\.snr_db\[0\] = 20 must not exceed ecapa\.train\.snr_db\[1\] = 0"),
    ("base.sample_rate=8000", r"prepare_speakers\.features\.f_max = 7600\.0 must not exceed base\.sample_rate / 2"),
    ("prepare_speakers.synthetic.min_dur_s=0.1", r"min_dur_s = 0\.1 is below the minimum 0\.2"),
])
def test_rules_across_keys_and_sections(override: str, message: str) -> None:
    with pytest.raises(ParamError, match=message):
        config.validate(composer.compose([override]))


@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_composes_validates_and_names_itself(profile: str) -> None:
    composed = composer.compose([f"profile={profile}"])
    config.validate(composed)
    assert composed["profile"] == profile


def test_profile_values_are_the_effective_params() -> None:
    default, tiny, paper = (composer.compose([f"profile={p}"]) for p in ("default", "tiny", "paper"))
    assert tiny["ecapa"]["train"]["steps"] == 4 < default["ecapa"]["train"]["steps"]
    assert paper["ecapa"]["model"]["channels"] == 1024
    assert len(paper["distill_grid"]["students"]) == 144          # students: full
    assert len(default["distill_grid"]["students"]) == 10          # students: fractional


def test_user_value_wins_over_the_profile() -> None:
    composed = composer.compose(["profile=tiny", "ecapa.train.steps=100"])
    assert composed["ecapa"]["train"]["steps"] == 100
    assert composed["ecapa"]["model"]["channels"] == 16           # the rest of tiny still holds


def test_bad_user_values_stop_with_one_line() -> None:
    with pytest.raises(ParamError, match=r"prepare_sounds\.undersample\.cap = 'abc' has the wrong type"):
        composer.compose(["profile=tiny", "prepare_sounds.undersample.cap=abc"])
    for bad, what in ((["ecapa.train.stpes=3"], "ecapa.train.stpes"),
                      (["profile=huge"], "profile/huge")):
        with pytest.raises(ParamError) as info:
            composer.compose(bad)
        assert what in str(info.value) and "\n" not in str(info.value)


def test_min_above_max_names_both_keys(params_copy: Path) -> None:
    _edit(params_copy, lambda d: d["prepare_speakers"]["synthetic"].__setitem__("min_dur_s", 9.0))
    with pytest.raises(ParamError, match=r"prepare_speakers\.synthetic\.min_dur_s = 9\.0 must not "
                                         r"exceed prepare_speakers\.synthetic\.max_dur_s = 8\.0"):
        config.resolve(params_copy)
    _edit(params_copy, lambda d: d["prepare_speakers"]["synthetic"].__setitem__("min_dur_s", 2.0))
    _edit(params_copy, lambda d: d["prepare_sounds"]["features"].__setitem__("f_min", 9000.0))
    with pytest.raises(ParamError, match=r"prepare_sounds\.features\.f_min = 9000\.0 must be below "
                                         r"prepare_sounds\.features\.f_max"):
        config.resolve(params_copy)


def test_missing_section_names_the_params_file(params_copy: Path) -> None:
    _edit(params_copy, lambda d: d.pop("ptq_layerwise"))
    with pytest.raises(ParamError, match=r"missing section 'ptq_layerwise' in params\.yaml"):
        config.resolve(params_copy)


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


def test_invalid_yaml_is_one_line_with_file_and_line(params_copy: Path) -> None:
    params_copy.write_text("profile: default\nbase:\n  seed: 1\n  sample_rate: [16000\n")
    with pytest.raises(ParamError) as info:
        config.resolve(params_copy)
    msg = str(info.value)
    assert "\n" not in msg and "not valid YAML" in msg
    assert msg.startswith(f"{params_copy}:5:"), msg    # the line where the parser gave up


def test_params_object_guards_undeclared_keys(params_copy: Path) -> None:
    p = config.load_params(params_copy, ["base.seed", "ecapa.model"])
    assert p["base"]["seed"] == 20240521 and "channels" in p["ecapa"]["model"]
    assert set(p.flat()) >= {"base.seed", "ecapa.model.channels"}
    assert "base.threads" not in p.flat()
    with pytest.raises(ParamError, match=r"reads 'base\.threads' that it did not declare"):
        p["base"]["threads"]
    with pytest.raises(ParamError, match=r"reads 'ecapa\.train' that it did not declare"):
        p["ecapa"]["train"]
    with pytest.raises(ParamError, match=r"missing key 'distill_grid\.students\.s999'"):
        config.load_params(params_copy, ["distill_grid.students.s999"])


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
