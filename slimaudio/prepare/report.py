"""data_report: metrics and figures from data/speakers/info.json and data/sounds/info.json."""

from __future__ import annotations

from typing import Any


def data_metrics(spk: dict[str, Any], snd: dict[str, Any]) -> dict[str, Any]:
    """The corpus numbers people compare across runs (reports/data/metrics.json)."""
    sc = spk["counts"]
    speakers: dict[str, Any] = {
        "corpus": spk["corpus"]["kind"], "utterances": sc["utterances"], "speakers": sc["speakers"],
        "hours": sc["hours"], "trials": sc["trials"], "target_trials": sc["target_trials"],
        "nontarget_trials": sc["nontarget_trials"], "trials_source": spk["corpus"]["trials"],
        "skipped": {"total": spk["skipped"]["total"], **spk["skipped"]["by_reason"]},
    }
    for name, part in spk["splits"].items():
        d = part["duration_s"]
        speakers[name] = {"speakers": part["speakers"], "utterances": part["utterances"],
                          "hours": part["hours"], "frames": part["frames"],
                          "min_duration_s": d["min"], "mean_duration_s": d["mean"],
                          "max_duration_s": d["max"], "masked": part["masked"],
                          "arousal": part["arousal"], "speakers_per_group": part["groups"]}
    c, cc, classes = snd["counts"], snd["class_counts"], snd["classes"]
    sounds: dict[str, Any] = {
        "corpus": snd["corpus"]["kind"], "classes": len(classes), "clips": c["clips"],
        "frames_before_undersampling": {**c["frames_before"], "total": sum(c["frames_before"].values())},
        "frames_after_undersampling": {**c["frames_after"], "total": sum(c["frames_after"].values())},
        "undersample_cap": snd["undersample"]["cap"],
        "train_frames_per_class": {name: {"before": cc["before"]["train"][i],
                                          "after": cc["after"]["train"][i]}
                                   for i, name in enumerate(classes)},
        "clip_duration_s": {s: {k: d[k] for k in ("min", "mean", "max")}
                            for s, d in snd["durations"].items() if d["n"]},
        "silent_frames_dropped": snd["framing"].get("silent_frames_dropped", 0),
        "short_clips_padded": snd["framing"].get("short_clips_padded", 0),
        "skipped": {"total": snd["skipped"]["total"], **snd["skipped"]["by_reason"]},
    }
    return {"speakers": speakers, "sounds": sounds}


def plot_undersampling(snd: dict[str, Any]):
    """The sound paper's Fig. 1: train frames per class, original (left) vs undersampled (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    classes = snd["classes"]
    before = np.asarray(snd["class_counts"]["before"]["train"])
    after = np.asarray(snd["class_counts"]["after"]["train"])
    width = max(8.0, 0.32 * len(classes) * 2)
    fig, axes = plt.subplots(1, 2, figsize=(width, 4.2), sharey=True)
    cap = snd["undersample"]["cap"]
    for ax, counts, title in ((axes[0], before, "original"),
                              (axes[1], after, f"after undersampling (cap {cap})")):
        order = np.argsort(-before, kind="stable")
        ax.bar(range(len(classes)), counts[order], color="#4C72B0" if title == "original" else "#DD8452")
        ax.set_xticks(range(len(classes)), [classes[i] for i in order], rotation=90, fontsize=7)
        ax.set_title(f"{title}: {int(counts.sum())} frames")
        ax.grid(axis="y", alpha=0.3)
    if cap is not None:
        for ax in axes:
            ax.axhline(cap, color="k", lw=0.8, ls="--")
    axes[0].set_ylabel("train frames per class")
    fig.suptitle("Dataset distribution: the original (left), after undersampling (right)")
    fig.tight_layout()
    return fig


def plot_durations(spk: dict[str, Any], snd: dict[str, Any]):
    """Utterance durations per speaker split and clip durations per sound split."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for ax, parts, title in ((axes[0], {k: v["duration_hist"] for k, v in spk["splits"].items()},
                              f"speaker utterances ({spk['corpus']['kind']})"),
                             (axes[1], {k: v["hist"] for k, v in snd["durations"].items()},
                              f"sound clips ({snd['corpus']['kind']})")):
        for name, h in parts.items():
            if not h["counts"]:
                continue
            edges = np.asarray(h["edges"])
            ax.stairs(h["counts"], edges, label=f"{name} ({sum(h['counts'])})", lw=1.5)
        ax.set_xlabel("duration (s)")
        ax.set_ylabel("count")
        ax.set_title(title)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
