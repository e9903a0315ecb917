"""Suite files: loading, validation (errors name the file and field), the content hash, the shipped suites."""

from __future__ import annotations

import copy

import pytest
import yaml

from w2sgen.benchmark.suite import (
    content_hash,
    load_suite,
    parse_suite,
    run_configs,
    shipped,
    to_data,
)
from w2sgen.errors import W2SError

BASE = {"name": "s", "version": 1, "mode": "probe", "seeds": [0, 1, 2], "pairs": [["minilm-l6", "mpnet-base"]],
        "tasks": [{"task": "cities", "source": "generated", "splits": {"n_test": 500}},
                  {"task": "sst2", "source": "local", "data": "sst2", "splits": {"n_test": 500}}]}


def test_the_shipped_suites_load():
    assert {"cpu-v1", "paper-nlp-v1"} <= set(shipped())
    for name in shipped():
        s = load_suite(name)
        assert s.name == name and len(s.hash) == 64
        assert set(s.quick_tasks) <= {t.task for t in s.tasks} and set(s.quick_seeds) <= set(s.seeds)


def test_cpu_v1_is_offline_probe_on_packaged_models():
    from w2sgen.models import MODELS

    s = load_suite("cpu-v1")
    assert s.mode == "probe" and len(s.seeds) == 5 and len(s.quick_seeds) == 2
    assert len(s.quick_tasks) < len(s.tasks)
    assert all(MODELS.get(m).resolve is not None for p in s.pairs for m in p)  # packaged: offline
    for t in s.tasks:
        assert t.source in ("generated", "local") and t.fingerprint and sorted(t.split_ids) == s.seeds


def test_paper_nlp_v1_holds_the_papers_22_tasks_from_the_hub_as_registered():
    from w2sgen.tasks import TASKS

    s = load_suite("paper-nlp-v1")
    assert s.mode == "finetune" and len(s.tasks) == 22
    for t in s.tasks:
        spec = TASKS.get(t.task)
        assert t.source == "hub" and t.fingerprint is None  # recorded by the first run
        assert t.hub == {"id": spec.hub_id, "config": spec.hub_config, "revision": spec.hub_revision}
    assert all(m.startswith("qwen2.5-") for p in s.pairs for m in p)


def test_hash_is_the_content_not_the_layout(tmp_path):
    a = parse_suite(copy.deepcopy(BASE))
    text = "# a comment\n" + yaml.safe_dump(dict(reversed(list(copy.deepcopy(BASE).items()))))
    (tmp_path / "s.yaml").write_text(text)
    assert load_suite(tmp_path / "s.yaml").hash == a.hash
    assert content_hash(to_data(a)) == a.hash
    for change in (lambda d: d.update(seeds=[0, 1]), lambda d: d["tasks"][0]["splits"].update(n_test=400),
                   lambda d: d.update(settings={"probe": {"epochs": 10}}), lambda d: d.update(version=2),
                   lambda d: d["pairs"].append(["minilm-l6", "smollm2-135m"])):
        d = copy.deepcopy(BASE)
        change(d)
        assert parse_suite(d).hash != a.hash


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(seed=[0]), "unknown field 'seed'"),
    (lambda d: d.pop("pairs"), "field 'pairs' is missing"),
    (lambda d: d.update(mode="prob"), "field 'mode'"),
    (lambda d: d.update(seeds=[0, 0]), "a seed appears twice"),
    (lambda d: d.update(settings={"splits": {}}), "settings.splits"),
    (lambda d: d.update(settings={"probe": {"epoch": 3}}), "epoch"),
    (lambda d: d["tasks"][0].update(source="web"), "field 'source'"),
    (lambda d: d["tasks"][1].pop("data"), "field 'data' is missing"),
    (lambda d: d["tasks"][0]["splits"].update(split_seed=3), "drop split_seed"),
    (lambda d: d["tasks"][0].update(fingerprint="ab"), "field 'fingerprint'"),
    (lambda d: d["tasks"][0].update(fingerprint="a" * 64, split_ids={0: "x"}), "every seed"),
    (lambda d: d.update(quick={"tasks": ["boolq"]}), "quick.tasks"),
    (lambda d: d.update(quick={"seeds": [7]}), "quick.seeds"),
])
def test_bad_suites_name_the_field(change, message, tmp_path):
    d = copy.deepcopy(BASE)
    change(d)
    f = tmp_path / "bad.yaml"
    f.write_text(yaml.safe_dump(d))
    with pytest.raises(W2SError, match="bad.yaml") as e:
        load_suite(f)
    assert message in str(e.value)


def test_unknown_suite_name_suggests():
    with pytest.raises(W2SError, match="cpu-v1"):
        load_suite("cpu-v2")


def test_run_configs_follow_the_suite(tmp_path):
    (tmp_path / "sst2").mkdir()
    s = parse_suite(copy.deepcopy(BASE) | {"settings": {"probe": {"epochs": 7}}})
    runs = run_configs(s, ["xent", "logconf"], tmp_path / "out", tmp_path)
    assert len(runs) == 2 * 1 * 3
    assert {(r.task, r.seeds[0]) for r in runs} == {(t, k) for t in ("cities", "sst2") for k in (0, 1, 2)}
    sst2 = [r for r in runs if r.task == "sst2"][0]
    assert sst2.data_dir == str(tmp_path / "sst2") and sst2.probe.epochs == 7 and sst2.splits.n_test == 500
    assert sst2.methods == ["xent", "logconf"] and sst2.out == str(tmp_path / "out")
    quick = run_configs(s, ["xent"], tmp_path / "q", tmp_path, quick=True)
    assert {r.seeds[0] for r in quick} == {0, 1}
    with pytest.raises(W2SError, match="not under the data root"):
        run_configs(s, ["xent"], tmp_path / "out", tmp_path / "elsewhere")


@pytest.mark.integration
def test_cpu_v1_matches_the_data_it_was_frozen_on():
    from conftest import require_data

    from w2sgen.benchmark.content import verify

    root = require_data("sst2").parent
    s = load_suite("cpu-v1")
    got = verify(s, s.tasks, s.seeds, root, {})  # raises on any fingerprint or split mismatch
    for t in s.tasks:
        assert got[t.task]["fingerprint"] == t.fingerprint and got[t.task]["split_ids"] == t.split_ids
        assert got[t.task]["examples"] == t.examples

