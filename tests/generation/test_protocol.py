"""The weak-to-strong protocol on a generation task, end to end on tiny random decoders: stages,
scoring by the checker, the run folder, the stage cache and the refusals."""

from __future__ import annotations

import pandas as pd
import pytest
from generation.fixtures import CITIES, gen_config, write_task

import w2sgen
from w2sgen.config import FinetuneConfig, GenConfig, RunConfig
from w2sgen.errors import W2SError
from w2sgen.generation.run import with_defaults


def test_end_to_end_run_folder_and_cache(tmp_path, tiny_decoders, cache_dir):
    weak, strong = tiny_decoders
    task = write_task(tmp_path / "cities.jsonl")
    cfg = gen_config(task, weak, strong, tmp_path / "out")
    cfg.mode, cfg.methods = RunConfig().mode, RunConfig().methods  # left unset: the API chooses as the CLI does
    res = w2sgen.run(cfg, cache_dir=cache_dir)
    (rec,) = res.runs
    assert rec["task_kind"] == "generation" and rec["task"]["checker"] == "exact" and rec["gen"]["lora"] is True
    assert rec["mode"] == "finetune" and rec["config"]["methods"] == ["xent", "zero_shot"]
    st = rec["stages"]
    assert set(st["students"]) == {"xent", "zero_shot"}
    for b in [st["weak"], st["ceiling"], *st["students"].values()]:
        assert 0 <= b["test"]["acc"] <= 1 and not b["cached"]
    assert st["weak"]["train"]["generate"]["test"]["n"] == 20 and st["weak"]["train"]["generate"]["test"]["tokens_per_s"] > 0
    assert st["students"]["xent"]["n_train"] == 40 and st["students"]["zero_shot"]["n_train"] == 0
    assert st["students"]["xent"]["analysis"]["train_targets"]["acc"] == pytest.approx(st["weak"]["transfer"]["acc"])
    assert {"gap_acc", "gap_acc_lo", "gap_acc_hi", "flagged"} <= set(rec["stats"]) and rec["stats"]["majority_acc"] is None
    d = tmp_path / "out" / rec["_dir"].split("/")[-1]
    gens = pd.read_parquet(d / "generations" / "weak.parquet")
    assert set(gens["split"]) == {"transfer", "val", "test"} and len(gens) == 80
    test = gens[gens["split"] == "test"]
    assert test["right"].mean() == pytest.approx(st["weak"]["test"]["acc"])
    assert (test["gold"] == test["prompt"].map(dict((f"the city of {c} is in ?", k) for c, k in CITIES))).all()
    preds = pd.read_parquet(d / "predictions" / "student-xent.parquet")
    assert set(preds["split"]) == {"val", "test"}
    assert set((d / "generations").glob("*.parquet")) == {d / "generations" / f"{s}.parquet" for s in
                                                           ("weak", "ceiling", "student-xent", "student-zero_shot")}
    loaded = w2sgen.load_results(tmp_path / "out")  # the results table and summary read generation runs
    assert set(loaded.table["task_kind"]) == {"generation"} and set(loaded.table["method"]) == {"xent", "zero_shot"}
    summary = loaded.summary()
    row = summary.set_index("method").loc["xent"]
    assert row["weak_acc"] == pytest.approx(st["weak"]["test"]["acc"])
    assert {"gap_acc", "gap_acc_lo", "gap_acc_hi", "pgr_acc", "flagged"} <= set(summary.columns)
    # every entry records how it decoded (greedy on raw logits), and only a student keeps its training set
    import json

    from w2sgen.generation.protocol import DECODING

    assert {p.parent.parent.name for p in cache_dir.glob("**/inputs.json")} >= {"floor", "ceiling", "student"}
    for p in cache_dir.glob("**/inputs.json"):
        stage, inputs = p.parent.parent.name, json.loads(p.read_text())
        if stage in ("floor", "ceiling", "student"):
            assert inputs["decoding"] == DECODING, p
            # a trained student keeps its training set (weak answers); the floor and ceiling (gold) keep none
            assert (p.parent / "train.parquet").is_file() == (stage == "student" and "train" in inputs), p
    again = w2sgen.run(cfg, cache_dir=cache_dir).runs[0]["stages"]
    assert all(b["cached"] for b in [again["weak"], again["ceiling"], *again["students"].values()])
    assert again["students"]["xent"]["test"]["acc"] == st["students"]["xent"]["test"]["acc"]


def test_answer_length_is_in_the_keys_and_the_checker_is_not(tmp_path, tiny_decoders, cache_dir):
    weak, strong = tiny_decoders
    task = write_task(tmp_path / "cities.jsonl")
    cfg = gen_config(task, weak, strong, tmp_path / "out", methods=["zero_shot"])
    first = w2sgen.run(cfg, cache_dir=cache_dir).runs[0]["stages"]
    cfg.gen.checker = "numeric"  # scoring runs after the stages: the same entries, other verdicts
    numeric = w2sgen.run(cfg, cache_dir=cache_dir).runs[0]
    assert numeric["stages"]["weak"]["cached"] and numeric["stages"]["weak"]["key"] == first["weak"]["key"]
    assert numeric["task"]["checker"] == "numeric" and numeric["stages"]["weak"]["test"]["acc"] == 0
    cfg.gen.checker = None
    cfg.gen.max_new_tokens = 2
    short = w2sgen.run(cfg, cache_dir=cache_dir).runs[0]["stages"]
    assert not short["weak"]["cached"] and short["weak"]["key"] != first["weak"]["key"]
    assert short["students"]["zero_shot"]["key"] != first["students"]["zero_shot"]["key"]
    cfg.finetune.lr = 1e-2  # the prompted student trains nothing: its entry serves any training section
    lr = w2sgen.run(cfg, cache_dir=cache_dir).runs[0]["stages"]
    assert not lr["weak"]["cached"] and lr["students"]["zero_shot"]["cached"]
    cfg.gen.lora = False  # all weights: the finetuned stages only
    full = w2sgen.run(cfg, cache_dir=cache_dir).runs[0]["stages"]
    assert not full["weak"]["cached"] and full["weak"]["train"]["lora"] is False and full["students"]["zero_shot"]["cached"]


@pytest.mark.parametrize("change, match", [
    ({"methods": ["generative"]}, "'generative' does not apply to generation tasks.*xent, zero_shot"),
    ({"methods": ["logconf"]}, "'logconf' does not apply to generation tasks"),
    ({"methods": ["xentt"]}, "unknown method 'xentt'.*xent"),
    ({"weak_labels": "w.parquet"}, "--weak-labels"),
    ({"gen": GenConfig(max_new_tokens=0)}, "gen.max_new_tokens"),
    ({"gen": GenConfig(template="Q: A:")}, "gen.template.*prompt"),
    ({"weak": "ENCODER"}, "--weak .* is an encoder; a generation task needs decoders"),
    ({"finetune": FinetuneConfig(lora=True)}, r"'finetune.lora' = True does not apply.*gen.lora=true"),
    ({"finetune": FinetuneConfig(checkpoint_every=5)}, "'finetune.checkpoint_every' = 5 does not apply"),
    ({"finetune": FinetuneConfig(head_lr=1e-3)}, "'finetune.head_lr' = 0.001 does not apply.*no classification head"),
])
def test_refusals_name_the_fix(tmp_path, tiny_decoders, tiny_encoders, change, match):
    weak, strong = tiny_decoders
    if change.get("weak") == "ENCODER":
        change = {"weak": str(tiny_encoders[0])}
    cfg = gen_config(write_task(tmp_path / "cities.jsonl"), weak, strong, tmp_path / "out")
    for k, v in change.items():
        setattr(cfg, k, v)
    with pytest.raises(W2SError, match=match):
        w2sgen.run(cfg, cache_dir=tmp_path / "cache")


def test_the_api_chooses_finetune_and_the_generation_methods_when_left_unset(tmp_path):
    task = str(write_task(tmp_path / "cities.jsonl"))
    cfg = with_defaults(RunConfig(task=task, weak="w", strong="s"))
    assert cfg.mode == "finetune" and cfg.methods == ["xent", "zero_shot"]
    own = RunConfig(task=task, weak="w", strong="s", mode="finetune", methods=["zero_shot"])
    assert with_defaults(own) is own
    assert with_defaults(RunConfig(task=task, weak="w", strong="s"), given=["mode", "methods"]).mode == "probe"


@pytest.mark.parametrize("change, match", [
    ({"mode": "probe"}, r"config field 'mode' is 'probe'.*generation task.*finetune mode.*--mode finetune.*unset"),
    ({"methods": ["xent", "logconf"]}, "'logconf' does not apply to generation tasks.*xent, zero_shot"),
])
def test_explicit_choices_in_a_dict_config_are_refused_with_the_fix(tmp_path, change, match):
    """A dict config says which fields its user set: RunConfig's defaults written out are choices, checked
    before any model is loaded (the models named here do not exist)."""
    config = {"task": str(write_task(tmp_path / "cities.jsonl")), "weak": "w", "strong": "s", **change}
    with pytest.raises(W2SError, match=match):
        w2sgen.run(config, cache_dir=tmp_path / "cache")
