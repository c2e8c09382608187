"""Import a SpeechBrain ECAPA-TDNN (`speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN`) into the
project's EcapaTdnn: every tensor of its `embedding_model.ckpt` state dict mapped by name, the
architecture's differences set as EcapaConfig options (no dense sums, no mean normalisation
inside the model, variance floor 1e-12, reflect padding, BN after the MFA, no BN after fc).

A SpeechBrain model folder (as `speechbrain/spkrec-ecapa-voxceleb` ships it) holds
`hyperparams.yaml` (HyperPyYAML: its `embedding_model: !new:...ECAPA_TDNN` entry gives the
constructor arguments) and `embedding_model.ckpt` (the state dict). The mapping is checked by
tests/test_speechbrain_import.py against SpeechBrain's own class.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from slimaudio.errors import DataError
from slimaudio.models.ecapa import EcapaConfig, EcapaTdnn

SB_STD_EPS = 1e-12  # AttentiveStatisticsPooling's default eps (a floor on the variance)


def config_from_hparams(h: Mapping[str, Any]) -> EcapaConfig:
    """EcapaConfig from the ECAPA_TDNN constructor arguments (hyperparams.yaml's
    embedding_model entry): input_size, channels, kernel_sizes, dilations,
    attention_channels, lin_neurons, res2net_scale, se_channels."""
    ch = list(h.get("channels", [512, 512, 512, 512, 1536]))
    ks = list(h.get("kernel_sizes", [5, 3, 3, 3, 1]))
    dil = list(h.get("dilations", [1, 2, 3, 4, 1]))
    if len(ch) != 5 or len(set(ch[:4])) != 1 or ks[0] != 5 or len(set(ks[1:4])) != 1:
        raise DataError(f"speechbrain ECAPA: unsupported layout channels={ch} kernel_sizes={ks}")
    return EcapaConfig(n_mels=int(h.get("input_size", 80)), channels=ch[0], mfa_channels=ch[4],
                       attention_channels=int(h.get("attention_channels", 128)),
                       embedding_dim=int(h.get("lin_neurons", 192)),
                       scale=int(h.get("res2net_scale", 8)),
                       se_bottleneck=int(h.get("se_channels", 128)), kernel_size=ks[1],
                       dilations=tuple(dil[1:4]), dense_sums=False, input_cmn=False,
                       std_eps=SB_STD_EPS, padding_mode="reflect", mfa_bn=True, fc_bn=False)


# (SpeechBrain name pattern, ours); \1 is a block number 1..3, \2 a Res2Net branch.
_RULES: tuple[tuple[str, str], ...] = (
    (r"blocks\.0\.conv\.conv\.(.+)", r"conv_in.0.\1"),
    (r"blocks\.0\.norm\.norm\.(.+)", r"conv_in.2.\1"),
    (r"blocks\.([123])\.tdnn1\.conv\.conv\.(.+)", r"block\1.conv1.0.\2"),
    (r"blocks\.([123])\.tdnn1\.norm\.norm\.(.+)", r"block\1.conv1.2.\2"),
    (r"blocks\.([123])\.res2net_block\.blocks\.(\d+)\.conv\.conv\.(.+)", r"block\1.res2.convs.\2.0.\3"),
    (r"blocks\.([123])\.res2net_block\.blocks\.(\d+)\.norm\.norm\.(.+)", r"block\1.res2.convs.\2.2.\3"),
    (r"blocks\.([123])\.tdnn2\.conv\.conv\.(.+)", r"block\1.conv2.0.\2"),
    (r"blocks\.([123])\.tdnn2\.norm\.norm\.(.+)", r"block\1.conv2.2.\2"),
    (r"blocks\.([123])\.se_block\.conv1\.conv\.(.+)", r"block\1.se.fc1.\2"),
    (r"blocks\.([123])\.se_block\.conv2\.conv\.(.+)", r"block\1.se.fc2.\2"),
    (r"mfa\.conv\.conv\.(.+)", r"conv_mfa.0.\1"),
    (r"mfa\.norm\.norm\.(.+)", r"conv_mfa.2.\1"),
    (r"asp\.tdnn\.conv\.conv\.(.+)", r"asp.attention.0.\1"),
    (r"asp\.tdnn\.norm\.norm\.(.+)", r"asp.attention.2.\1"),
    (r"asp\.conv\.conv\.(.+)", r"asp.attention.4.\1"),
    (r"asp_bn\.norm\.(.+)", r"bn_asp.\1"),
    (r"fc\.conv\.(.+)", r"fc.\1"),
)


def map_name(name: str) -> str | None:
    for pat, repl in _RULES:
        if re.fullmatch(pat, name):
            return re.sub(pat, repl, name)
    return None


def import_state_dict(sb: Mapping[str, torch.Tensor], cfg: EcapaConfig,
                      source: str = "checkpoint") -> EcapaTdnn:
    """Our model with every tensor of `sb`; one-line DataError naming a tensor that is
    unknown, missing or of the wrong shape."""
    model = EcapaTdnn(cfg)
    ours = model.state_dict()
    mapped: dict[str, torch.Tensor] = {}
    for name, t in sb.items():
        if name.endswith("num_batches_tracked"):
            continue  # a training counter, not a weight
        target = map_name(name)
        if target is None:
            raise DataError(f"{source}: tensor {name!r} has no place in the ECAPA-TDNN")
        if target.startswith("fc.weight"):
            t = t.squeeze(-1)  # SpeechBrain's fc is a k=1 Conv1d; ours a Linear
        if target not in ours or ours[target].shape != t.shape:
            want = tuple(ours[target].shape) if target in ours else "nothing"
            raise DataError(f"{source}: tensor {name!r} has shape {tuple(t.shape)}, the model "
                            f"expects {want} (check the hyperparams)")
        mapped[target] = t
    missing = sorted(k for k in set(ours) - set(mapped) if not k.endswith("num_batches_tracked"))
    if missing:
        raise DataError(f"{source}: missing tensor for {missing[0]} ({len(missing)} missing)")
    model.load_state_dict(mapped, strict=False)  # only the counters are left out
    return model.eval()


CHECKPOINT = "embedding_model.ckpt"
HPARAMS = "hyperparams.yaml"


def read_hparams(path: str | Path) -> dict[str, Any]:
    """The ECAPA_TDNN constructor arguments of a SpeechBrain hyperparams.yaml, with `!ref <key>`
    references to top-level keys resolved; the other HyperPyYAML tags are read as plain data."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
        if isinstance(node, yaml.MappingNode):
            return loader.construct_mapping(node, deep=True)
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node, deep=True)
        value = loader.construct_scalar(node)
        return ("!ref", value) if suffix == "ref" else value

    Loader.add_multi_constructor("!", tagged)
    try:
        doc = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=Loader)
    except (OSError, yaml.YAMLError) as e:
        raise DataError(f"{path}: cannot read SpeechBrain hyperparams ({e})".replace("\n", " ")) from None
    emb = doc.get("embedding_model") if isinstance(doc, dict) else None
    if not isinstance(emb, dict):
        raise DataError(f"{path}: no `embedding_model` entry (a SpeechBrain ECAPA-TDNN's "
                        "hyperparams.yaml has `embedding_model: !new:...ECAPA_TDNN`)")
    return {k: _resolve(v, doc, path) for k, v in emb.items()}


def _resolve(value: Any, doc: Mapping[str, Any], path: str | Path) -> Any:
    if isinstance(value, tuple) and value[:1] == ("!ref",):
        key = str(value[1]).strip().strip("<>")
        if key not in doc:
            raise DataError(f"{path}: `!ref <{key}>` names no top-level key")
        return _resolve(doc[key], doc, path)
    return value


def load_folder(folder: str | Path) -> EcapaTdnn:
    """Our EcapaTdnn from a SpeechBrain model folder (hyperparams.yaml + embedding_model.ckpt)."""
    from slimaudio.speaker.train import load_weights

    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder (expected a SpeechBrain model folder with "
                        f"{HPARAMS} and {CHECKPOINT})")
    for name in (HPARAMS, CHECKPOINT):
        if not (folder / name).is_file():
            raise DataError(f"{folder / name}: missing (a SpeechBrain ECAPA-TDNN folder has "
                            f"{HPARAMS} and {CHECKPOINT})")
    cfg = config_from_hparams(read_hparams(folder / HPARAMS))
    state = load_weights(folder / CHECKPOINT)
    if not isinstance(state, Mapping):
        raise DataError(f"{folder / CHECKPOINT}: not a state dict")
    return import_state_dict(state, cfg, str(folder / CHECKPOINT))
