"""Sweep YAML → RunConfigs: pairs i <= j, explicit pairs, shared defaults, errors naming the field."""

from __future__ import annotations

import pytest

from w2sgen.errors import W2SError
from w2sgen.sweep.grid import expand, load_sweep, model_pairs, parse_sweep


def test_pairs_i_le_j_counted():
    assert model_pairs(["a", "b", "c"]) == [("a", "a"), ("a", "b"), ("a", "c"), ("b", "b"), ("b", "c"), ("c", "c")]
    assert model_pairs(["a", "b", "c"], exclude_self=True) == [("a", "b"), ("a", "c"), ("b", "c")]
    assert len(model_pairs([str(i) for i in range(5)])) == 15  # n (n + 1) / 2


def test_expand_grid_with_shared_defaults(tmp_path):
    f = tmp_path / "sweep.yaml"
    f.write_text("tasks: [t1, {task: t2, data_dir: /data/t2}]\nmodels: [a, b, c]\nexclude_self: true\n"
                 "methods: [xent, logconf]\nmodes: [probe, finetune]\nseeds: [0, 1]\n"
                 "splits: {n_test: 10}\nprobe: {epochs: 3}\nout: res\n")
    runs = expand(load_sweep(f))
    assert len(runs) == 2 * 3 * 2 * 2  # tasks x pairs x modes x seeds; methods stay inside each run
    assert all(r.methods == ["xent", "logconf"] and len(r.seeds) == 1 for r in runs)
    assert all(r.splits.n_test == 10 and r.probe.epochs == 3 and r.out == "res" for r in runs)
    assert {r.data_dir for r in runs if r.task == "t2"} == {"/data/t2"}
    assert {r.data_dir for r in runs if r.task == "t1"} == {None}
    assert {(r.weak, r.strong) for r in runs} == {("a", "b"), ("a", "c"), ("b", "c")}
    assert {r.out for r in expand(load_sweep(f), out="elsewhere")} == {"elsewhere"}


def test_explicit_pairs_and_single_task():
    spec = parse_sweep({"task": "t", "pairs": [["big", "small"]], "seeds": [3]})
    (run,) = expand(spec)
    assert (run.weak, run.strong, run.seeds, run.mode) == ("big", "small", [3], "probe")


@pytest.mark.parametrize("data,needle", [
    ({"task": "t", "models": ["a", "b"], "methds": ["xent"]}, "unknown field 'methds'. Did you mean: methods"),
    ({"task": "t", "models": ["a", "b"], "pairs": [["a", "b"]]}, "exactly one of 'models'"),
    ({"task": "t"}, "exactly one of 'models'"),
    ({"models": ["a", "b"]}, "exactly one of 'tasks'"),
    ({"task": "t", "models": ["a"], "exclude_self": True}, "gives no pair"),
    ({"task": "t", "pairs": [["a"]]}, "pairs[0]: expected [weak, strong]"),
    ({"task": "t", "weak": "a", "models": ["a"]}, "'weak' is not a sweep field"),
    ({"task": "t", "models": ["a"], "probe": {"epoch": 3}}, "unknown field 'epoch'"),
    ({"task": "t", "models": ["a"], "seeds": []}, "'seeds' is empty"),
    ({"tasks": [{"data_dir": "x"}], "models": ["a"]}, "tasks[0]: expected a name or a mapping"),
])
def test_errors_name_the_field(data, needle):
    with pytest.raises(W2SError) as e:
        parse_sweep(data, "my.yaml")
    assert needle in str(e.value) and "my.yaml" in str(e.value)
