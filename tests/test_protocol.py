"""The protocol on tiny random models: caches, determinism, bring-your-own weak labels."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import write_toy_task

import w2sgen
from w2sgen.config import RunConfig, SplitConfig
from w2sgen.errors import W2SError


def config(task, weak, strong, out, **kw) -> RunConfig:
    base = dict(task=str(task), weak=str(weak), strong=str(strong), out=str(out), methods=["xent", "logconf"],
                seeds=[0], splits=SplitConfig(n_weak_train=40, n_transfer=40, n_val=20, n_test=20, min_val=20, min_test=20))
    base.update(kw)
    cfg = RunConfig(**base)
    cfg.probe.epochs = 30
    cfg.probe.lr = 1e-2
    return cfg


@pytest.fixture
def toy(tmp_path):
    return write_toy_task(tmp_path / "toy.jsonl")


class Counter:
    """Counts calls of a wrapped function (and the texts passed to extract)."""

    def __init__(self, fn):
        self.fn, self.calls, self.texts = fn, 0, 0

    def __call__(self, *a, **kw):
        self.calls += 1
        if len(a) > 1 and isinstance(a[1], list):
            self.texts += len(a[1])
        return self.fn(*a, **kw)


def test_run_writes_records_and_table(toy, tiny_encoders, tmp_path, cache_dir):
    weak, strong = tiny_encoders
    res = w2sgen.run(config(toy, weak, strong, tmp_path / "out"), cache_dir=cache_dir)
    table = res.table
    assert list(table["method"]) == ["logconf", "xent"]
    for col in ("weak_acc", "ceiling_acc", "w2s_acc", "weak_auroc", "ceiling_auroc", "w2s_auroc"):
        assert table[col].between(0, 1).all(), col
    run_dirs = list((tmp_path / "out").glob("*/run.json"))
    assert len(run_dirs) == 1
    rec = json.loads(run_dirs[0].read_text())
    assert rec["task"]["sizes"] == {"weak_train": 40, "transfer": 40, "val": 20, "test": 20}
    assert rec["versions"]["torch"] and rec["task"]["fingerprint"]
    assert set(rec["stages"]) >= {"weak", "ceiling", "students"}
    preds = sorted(p.name for p in (run_dirs[0].parent / "predictions").iterdir())
    assert preds == ["ceiling.parquet", "student-logconf.parquet", "student-xent.parquet", "weak.parquet"]
    f = pd.read_parquet(run_dirs[0].parent / "predictions" / "weak.parquet")
    assert set(f["split"]) == {"transfer", "val", "test"} and len(f) == 80
    np.testing.assert_allclose(f[["prob_0", "prob_1"]].sum(axis=1), 1.0, atol=1e-5)
    loaded = w2sgen.load_results(tmp_path / "out").table
    pd.testing.assert_frame_equal(loaded, table)


def test_second_run_trains_nothing_and_new_method_trains_only_itself(toy, tiny_encoders, tmp_path, cache_dir,
                                                                    monkeypatch):
    import w2sgen.train.probe as probe

    weak, strong = tiny_encoders
    first = w2sgen.run(config(toy, weak, strong, tmp_path / "a"), cache_dir=cache_dir)
    counter = Counter(probe.train_heads)
    monkeypatch.setattr(probe, "train_heads", counter)
    second = w2sgen.run(config(toy, weak, strong, tmp_path / "b"), cache_dir=cache_dir)
    assert counter.calls == 0
    st = second.runs[0]["stages"]
    assert st["weak"]["cached"] and st["ceiling"]["cached"]
    assert all(s["cached"] for s in st["students"].values())
    pd.testing.assert_frame_equal(first.table, second.table)
    third = w2sgen.run(config(toy, weak, strong, tmp_path / "c", methods=["xent", "logconf", "product"]),
                       cache_dir=cache_dir)
    assert counter.calls == 1  # only the product student
    assert not third.runs[0]["stages"]["students"]["product"]["cached"]


def test_activation_cache_new_seed_embeds_nothing(toy, tiny_encoders, tmp_path, cache_dir, monkeypatch):
    import w2sgen.train.activations as act

    weak, strong = tiny_encoders
    counter = Counter(act.extract)
    monkeypatch.setattr(act, "extract", counter)
    w2sgen.run(config(toy, weak, strong, tmp_path / "a", seeds=[0]), cache_dir=cache_dir)
    assert counter.calls == 2  # weak and strong, once each
    # a new training seed on the same split: nothing embedded
    before = counter.calls
    cfg = config(toy, weak, strong, tmp_path / "b", seeds=[1])
    cfg.splits.split_seed = 0
    w2sgen.run(cfg, cache_dir=cache_dir)
    assert counter.calls == before
    # a new split: only texts never seen before are embedded
    n_before = counter.texts
    w2sgen.run(config(toy, weak, strong, tmp_path / "c", seeds=[5]), cache_dir=cache_dir)
    new_texts = counter.texts - n_before
    assert new_texts < 80  # far fewer than the 120 texts a cold run of the strong model needs


def test_same_seed_same_numbers(toy, tiny_encoders, tmp_path):
    weak, strong = tiny_encoders
    a = w2sgen.run(config(toy, weak, strong, tmp_path / "a"), cache_dir=tmp_path / "c1").table
    b = w2sgen.run(config(toy, weak, strong, tmp_path / "b"), cache_dir=tmp_path / "c2").table
    pd.testing.assert_frame_equal(a, b)
    assert a["ceiling_acc"].iloc[0] > 0.6  # the toy task is learnable: the numbers are not all chance


def test_weak_labels_from_file(toy, tiny_encoders, tmp_path, cache_dir):
    from w2sgen.cli import main

    weak, strong = tiny_encoders
    first = w2sgen.run(config(toy, weak, strong, tmp_path / "a"), cache_dir=cache_dir)
    run_dir = first.runs[0]["_dir"]
    labels = tmp_path / "labels.csv"
    assert main(["export-labels", run_dir, "-o", str(labels)]) == 0
    head = labels.read_text().splitlines()
    assert head[0] == "id,split,prob" and len(head) == 81
    second = w2sgen.run(config(toy, weak, strong, tmp_path / "b", weak_labels=str(labels)), cache_dir=cache_dir)
    t1, t2 = first.table, second.table
    np.testing.assert_allclose(t1["weak_acc"], t2["weak_acc"])  # test labels came along
    np.testing.assert_allclose(t1["w2s_acc"], t2["w2s_acc"], atol=1e-6)
    assert second.runs[0]["stages"]["weak"]["source"] == "file"

    # a file missing transfer examples is refused, naming the count and an id
    lines = labels.read_text().splitlines()
    partial = tmp_path / "partial.csv"
    partial.write_text("\n".join([lines[0]] + [ln for ln in lines[1:] if ",transfer," not in ln][:5]) + "\n")
    with pytest.raises(W2SError, match="transfer examples have no label"):
        w2sgen.run(config(toy, weak, strong, tmp_path / "c", weak_labels=str(partial)), cache_dir=cache_dir)
    bad = tmp_path / "bad.csv"
    bad.write_text("id,prob\nx,1.5\n")
    with pytest.raises(W2SError, match=r"bad.csv:2: field 'prob'"):
        w2sgen.run(config(toy, weak, strong, tmp_path / "d", weak_labels=str(bad)), cache_dir=cache_dir)


def test_students_are_rebuilt_when_only_the_weak_labels_on_val_or_test_change(toy, tiny_encoders, tmp_path,
                                                                             cache_dir):
    """Students choose their heads (probe grid) and early_stop its checkpoint by the weak labels on
    val, and labels methods carry val/test supervision: a given labels file that changes only there
    rebuilds every student (a stale one would come back from the cache otherwise)."""
    weak, strong = tiny_encoders
    first = w2sgen.run(config(toy, weak, strong, tmp_path / "a", methods=["xent", "early_stop"]),
                       cache_dir=cache_dir)
    labels = tmp_path / "labels.csv"
    from w2sgen.cli import main

    assert main(["export-labels", first.runs[0]["_dir"], "-o", str(labels)]) == 0
    run = lambda out, f: w2sgen.run(config(toy, weak, strong, tmp_path / out, methods=["xent", "early_stop"],  # noqa: E731
                                           weak_labels=str(f)), cache_dir=cache_dir).runs[0]["stages"]
    base = run("b", labels)
    assert all(base["students"][m]["cached"] is False for m in ("xent", "early_stop"))  # a new supervisor
    assert all(run("c", labels)["students"][m]["cached"] for m in ("xent", "early_stop"))
    for split in ("val", "test"):
        lines = labels.read_text().splitlines()
        flipped = [ln if f",{split}," not in ln else ln.rsplit(",", 1)[0] + f",{1 - float(ln.rsplit(',', 1)[1]):.6f}"
                   for ln in lines[1:]]
        changed = tmp_path / f"labels_{split}.csv"
        changed.write_text("\n".join([lines[0]] + flipped) + "\n")
        st = run(f"d_{split}", changed)
        assert st["ceiling"]["cached"] is True
        assert all(st["students"][m]["cached"] is False for m in ("xent", "early_stop")), split


def test_damaged_cache_entry_is_rebuilt(toy, tiny_encoders, tmp_path, cache_dir):
    weak, strong = tiny_encoders
    w2sgen.run(config(toy, weak, strong, tmp_path / "a"), cache_dir=cache_dir)
    entry = next((cache_dir / "stages" / "ceiling").iterdir())
    (entry / "predictions.parquet").write_bytes(b"garbage")
    res = w2sgen.run(config(toy, weak, strong, tmp_path / "b"), cache_dir=cache_dir)
    assert res.runs[0]["stages"]["ceiling"]["cached"] is False
    assert res.runs[0]["stages"]["weak"]["cached"] is True


def test_interrupted_stage_leaves_no_entry(toy, tiny_encoders, tmp_path, cache_dir, monkeypatch):
    import w2sgen.train.probe as probe

    weak, strong = tiny_encoders

    def boom(*a, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(probe, "train_heads", boom)
    with pytest.raises(KeyboardInterrupt):
        w2sgen.run(config(toy, weak, strong, tmp_path / "a"), cache_dir=cache_dir)
    stages = cache_dir / "stages"
    assert not stages.exists() or not any(p.is_dir() for d in stages.iterdir() for p in d.iterdir())
    assert not (tmp_path / "a").exists() or not list((tmp_path / "a").glob("*/run.json"))


def test_heads_are_chosen_by_ground_truth_for_floor_and_ceiling_and_weak_labels_for_students(toy, tiny_encoders,
                                                                                             tmp_path, cache_dir):
    """Weak labels given in a file: the ground truth on transfer and test, the truth flipped on val. The
    student then trains the very heads of the ceiling (same features, targets and seed), but must keep
    the one that agrees best with the flipped val labels (agreement = 1 − accuracy), not the best one."""
    from w2sgen.store.labels import write_labels

    weak, strong = tiny_encoders
    grid = [1e-3, 1e4]  # two heads of different val accuracies on the toy task
    first = w2sgen.run(config(toy, weak, strong, tmp_path / "a", methods=["xent"]), cache_dir=cache_dir)
    rec = first.runs[0]
    lab = pd.read_parquet(f"{rec['_dir']}/labels.parquet")
    y = np.where(lab["split"] == "val", 1 - lab["label"], lab["label"])
    labels = tmp_path / "weak.csv"
    write_labels(labels, lab["id"].tolist(), lab["split"].tolist(), np.eye(2, dtype=np.float32)[y])
    cfg = config(toy, weak, strong, tmp_path / "b", methods=["xent"], weak_labels=str(labels))
    cfg.probe.weight_decay = grid
    st = w2sgen.run(cfg, cache_dir=cache_dir).runs[0]["stages"]
    ceiling, student = st["ceiling"]["train"]["grid"], st["students"]["xent"]["train"]["grid"]
    assert ceiling["reference"] == "ground truth" and student["reference"] == "weak labels"
    assert ceiling["weight_decay"] == grid and ceiling["select"] == "agreement"
    acc = ceiling["val_scores"]  # the heads' val accuracies
    assert acc[0] != acc[1], "the test needs heads of different val accuracies"
    assert student["val_scores"] == pytest.approx([1 - a for a in acc])
    best = int(np.argmax(acc))
    assert ceiling["chosen"] == best and student["chosen"] == 1 - best  # the student keeps the worse head
    assert st["ceiling"]["val"]["acc"] == pytest.approx(acc[best])
    assert st["students"]["xent"]["val"]["acc"] == pytest.approx(acc[1 - best])

    floor = rec["stages"]["weak"]["train"]["grid"]  # the first run's floor: ground truth too
    assert floor["reference"] == "ground truth" and floor["val_scores"][floor["chosen"]] == max(floor["val_scores"])
    assert rec["stages"]["weak"]["val"]["acc"] == pytest.approx(max(floor["val_scores"]))


def test_head_selection_never_reads_test_labels(tmp_path, tiny_encoders):
    """The same task with every test label flipped: every stage keeps the same head, with the same val
    scores, and predicts the same probabilities."""
    from w2sgen.tasks import load_task

    weak, strong = tiny_encoders
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    plain = write_toy_task(tmp_path / "a" / "toy.jsonl")
    first = w2sgen.run(config(plain, weak, strong, tmp_path / "out-a"), cache_dir=tmp_path / "cache-a").runs[0]
    test_ids = set(pd.read_parquet(f"{first['_dir']}/labels.parquet").query("split == 'test'")["id"])
    frame = load_task(str(plain)).frame
    flip = set(frame.loc[frame["id"].isin(test_ids), "text"])
    rows = [json.loads(line) for line in plain.read_text().splitlines()]
    flipped = tmp_path / "b" / "toy.jsonl"
    flipped.write_text("".join(json.dumps(dict(r, label=1 - r["label"]) if r["text"] in flip else r) + "\n"
                               for r in rows))
    second = w2sgen.run(config(flipped, weak, strong, tmp_path / "out-b"), cache_dir=tmp_path / "cache-b").runs[0]
    a, b = first["stages"], second["stages"]
    assert a["ceiling"]["test"]["acc"] == pytest.approx(1 - b["ceiling"]["test"]["acc"]), "test labels flipped"
    blocks = [("weak", a["weak"], b["weak"]), ("ceiling", a["ceiling"], b["ceiling"])] + [
        (f"student-{m}", a["students"][m], b["students"][m]) for m in a["students"]]
    for name, x, z in blocks:
        assert x["train"]["grid"] == z["train"]["grid"], name
        pa = pd.read_parquet(f"{first['_dir']}/predictions/{name}.parquet").filter(like="prob_").to_numpy()
        pb = pd.read_parquet(f"{second['_dir']}/predictions/{name}.parquet").filter(like="prob_").to_numpy()
        np.testing.assert_array_equal(pa, pb, err_msg=name)


def test_run_records_the_majority_class_accuracy(toy, tiny_encoders, tmp_path, cache_dir):
    res = w2sgen.run(config(toy, weak=tiny_encoders[0], strong=tiny_encoders[1], out=tmp_path / "a"),
                     cache_dir=cache_dir)
    rec = json.loads((tmp_path / "a" / res.runs[0]["_dir"].split("/")[-1] / "run.json").read_text())
    lab = pd.read_parquet(f"{res.runs[0]['_dir']}/labels.parquet")
    for s in ("val", "test"):
        counts = lab[lab["split"] == s]["label"].value_counts()
        assert rec["stages"]["majority_acc"][s] == pytest.approx(counts.max() / counts.sum())
