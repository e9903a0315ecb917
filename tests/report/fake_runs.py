"""Results directories written by hand (run.json + predictions + labels), no training.

Each stage's test predictions are drawn so that its accuracy is close to a target; the student
copies the weak model's mistakes with probability ``imitate``.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from w2sgen import metrics
from w2sgen.store.results import run_dir_name

SPLIT_SIZES = {"transfer": 200, "val": 50, "test": 400}


def _probs(rng: np.random.Generator, labels: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Binary probabilities whose argmax is the label where ``right``, the other class elsewhere."""
    conf = rng.uniform(0.55, 0.98, size=len(labels))
    pred = np.where(right, labels, 1 - labels)
    p1 = np.where(pred == 1, conf, 1 - conf)
    return np.stack([1 - p1, p1], axis=1)


def write_run(out: Path, task: str = "toy", weak: str = "small", strong: str = "large", seed: int = 0,
              weak_acc: float = 0.65, ceiling_acc: float = 0.85, students: dict[str, float] | None = None,
              imitate: float = 0.5, sizes: dict[str, int] | None = None, with_labels: bool = True,
              epochs: int = 8, group_size: int | None = None, with_stats: bool = False,
              ground_truth: tuple[str, ...] = (), early_stop: dict[str, dict] | None = None,
              mode: str = "probe", task_kind: str | None = None) -> Path:
    """Write one run folder with the layout of ``w2sgen.run``; returns the folder.

    By default the layout of runs written before issue 14 (no ``stats`` block, labels without
    groups); ``group_size`` adds groups of that many consecutive examples to labels.parquet and
    ``with_stats`` the ``stats`` block ``w2sgen.run`` now writes; ``ground_truth`` names students
    that declare ``uses_ground_truth``; ``early_stop`` maps a student to its
    ``train.early_stop.selected`` record; ``task_kind`` is written to run.json when given (runs written
    before generation tasks have none)."""
    students = students or {"xent": 0.72, "logconf": 0.76}
    sizes = sizes or SPLIT_SIZES
    rng = np.random.default_rng(zlib.crc32(f"{task}|{weak}|{strong}|{seed}".encode()))
    ids, labels = {}, {}
    for s, n in sizes.items():
        ids[s] = np.array([f"{s}-{i}" for i in range(n)])
        labels[s] = rng.integers(0, 2, size=n)
    preds: dict[str, dict[str, np.ndarray]] = {"weak": {}, "ceiling": {}, **{f"student-{m}": {} for m in students}}
    for s in sizes:
        y = labels[s]
        w_right = rng.random(len(y)) < weak_acc
        preds["weak"][s] = _probs(rng, y, w_right)
        preds["ceiling"][s] = _probs(rng, y, rng.random(len(y)) < ceiling_acc)
        for m, acc in students.items():
            # keep the weak model's answer (right or wrong) w.p. imitate, else right w.p. acc'
            free = rng.random(len(y)) >= imitate
            p_free = np.clip((acc - imitate * weak_acc) / max(1e-9, 1 - imitate), 0, 1)
            s_right = np.where(free, rng.random(len(y)) < p_free, w_right)
            preds[f"student-{m}"][s] = _probs(rng, y, s_right)
    y = labels["test"]

    def block(stage: str) -> dict:
        p = preds[stage]
        losses = list(np.round(0.7 * np.exp(-np.arange(epochs) / 3) + 0.3, 4))
        return {"key": f"{stage}-{seed}", "cached": False, "wall_s": 0.1,
                "val": metrics.summarize(labels["val"], p["val"]), "test": metrics.summarize(y, p["test"]),
                "train": {"steps": epochs * 4}, "losses": [float(x) for x in losses], "final_loss": float(losses[-1])}

    st = {"weak": block("weak"), "ceiling": block("ceiling"), "students": {}}
    for m in students:
        b = block(f"student-{m}")
        w, c = st["weak"]["test"], st["ceiling"]["test"]
        b["pgr_acc"] = metrics.pgr(w["acc"], b["test"]["acc"], c["acc"])
        b["pgr_auroc"] = metrics.pgr(w["auroc"], b["test"]["auroc"], c["auroc"])
        b["test"].update(metrics.agreement_split(y, preds["weak"]["test"], preds[f"student-{m}"]["test"]))
        if m in ground_truth:
            b["uses_ground_truth"] = True
        if early_stop and m in early_stop:
            b["train"]["early_stop"] = {"selected": early_stop[m]}
        st["students"][m] = b
    cfg = {"task": task, "weak": weak, "strong": strong, "methods": list(students), "seeds": [seed],
           "mode": mode, "probe": {"epochs": epochs, "lr": 0.003}}
    rec = {"config": cfg, "seed": seed, "split_seed": seed, "mode": mode,
           "task": {"name": task, "fingerprint": "f" * 16, "examples": sum(sizes.values()), "num_classes": 2,
                    "label_names": ["false", "true"], "sizes": dict(sizes)},
           "weak": {"name": weak}, "strong": {"name": strong}, "stages": st, "versions": {"python": "3"},
           "wall_s": 1.0, "created": "2026-01-01T00:00:00+0000", **({"task_kind": task_kind} if task_kind else {})}
    groups = {s: (np.arange(n) // group_size).astype(str) if group_size else ids[s] for s, n in sizes.items()}
    if with_stats:
        from w2sgen.aggregate import gap_stats

        rec["stats"] = gap_stats(y, groups["test"], preds["weak"]["test"], preds["ceiling"]["test"], ids["test"],
                                 students={m: preds[f"student-{m}"]["test"] for m in students})
        for b in st["students"].values():
            b.pop("pgr_auroc")
            if rec["stats"]["flagged"]:
                b["pgr_acc"] = None
    d = Path(out) / run_dir_name(task, weak, strong, mode, seed)
    (d / "predictions").mkdir(parents=True, exist_ok=True)
    for stage, per in preds.items():
        rows = [pd.DataFrame({"id": ids[s], "split": s, "prob_0": p[:, 0].astype(np.float32),
                              "prob_1": p[:, 1].astype(np.float32)}) for s, p in per.items()]
        pd.concat(rows, ignore_index=True).to_parquet(d / "predictions" / f"{stage}.parquet", index=False)
    if with_labels:
        pd.concat([pd.DataFrame({"id": ids[s], "split": s, "label": labels[s],
                                 **({"group": groups[s]} if group_size else {})}) for s in sizes],
                  ignore_index=True).to_parquet(d / "labels.parquet", index=False)
    (d / "run.json").write_text(json.dumps(rec, indent=1))
    return d


def write_results(out: Path, seeds: tuple[int, ...] = (0, 1, 2), tasks: tuple[str, ...] = ("toy", "toy2"),
                  pairs: tuple[tuple[str, str], ...] = (("small", "large"), ("small", "xl"), ("medium", "xl")),
                  **kw) -> Path:
    """A results directory with every (task, pair, seed); strong 'xl' has a higher ceiling."""
    ceil = {"large": 0.82, "xl": 0.9}
    weak = {"small": 0.64, "medium": 0.7}
    for t in tasks:
        for w, s in pairs:
            for seed in seeds:
                gain = ceil[s] - weak[w]
                write_run(out, t, w, s, seed, weak_acc=weak[w], ceiling_acc=ceil[s],
                          students={"xent": weak[w] + 0.3 * gain, "logconf": weak[w] + 0.5 * gain}, **kw)
    return Path(out)
