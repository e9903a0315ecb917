"""Keys by construction: every config field a stage reads is in its key (recorded on every method and
composition kind), and mutating a field rebuilds exactly the stages that read it.

How it works (see ``w2sgen.reads``): every stage reads the run config through a tracked copy that
records the dotted paths read into the open scopes (a student's whole pipeline is one scope, each
cache entry's build another). A build fails with ``StageKeyError`` before anything is written if a
scope read a field that its key does not cover. These tests run every registered method on tiny
models with that check on, and then mutate fields one at a time against the same cache:

- a stage whose baseline reads touch the field is rebuilt (its key changed);
- a stage that did not read it comes from the cache, or was rebuilt only because data it trains on
  changed upstream (its key differs from the baseline's only in data hashes);
- an inner stage (fold model, rung, extra floor, ...) that read the field is never served from the
  cache under its old key.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import build_tiny_encoder, build_tiny_lm, toy_config, write_toy_task

import w2sgen
from w2sgen import reads
from w2sgen.config import FinetuneConfig, RunConfig
from w2sgen.methods import METHODS
from w2sgen.store.cache import StageCache, stage_key

DATA = {"train", "weak", "predict", "task", "lm_texts", "prompts", "texts", "student", "lm", "finetuned",
        "weak_eval", "select_ref"}  # weak labels on val/test; the val labels a probe grid's head is chosen by
"""Key entries that hash data, not config: targets, weak labels, ids, prompt texts, or an upstream
entry's key (``student``: the student a generative inner stage serves; ``lm``, ``finetuned``: the
LM-finetuned or ladder-finetuned weights); they change when an upstream stage's output changes."""

RESOLVED = {"radius"}
"""Settings that ``prepare`` resolves from the weak labels (window's ``midweak`` radius): data too."""

COMPOSED = ["ensemble+knn_filter+logconf+early_stop", "bootstrap+topo_filter+confidence_filter+s2s",
            "knn_filter+logreg_filter+entropy"]


def base_args(mid: str) -> dict[str, dict[str, Any]]:
    """Method settings small enough for tiny models (each field is still mutated below)."""
    return {"bootstrap": {"models": [mid], "folds": 2}, "early_stop": {"every": 2},
            "generative": {"steps": 2, "batch_size": 4, "max_length": 16}, "probe_ladder": {"ft_steps": 2},
            "knn_filter": {"k": 5, "folds": 2}, "logreg_filter": {"folds": 2, "max_iter": 50},
            "topo_filter": {"k": 3}, "s2s": {"folds": 2}, "confidence_filter": {"radius": 1e-4}, "ensemble": {"seeds": [1], "models": [mid]},
            "zero_shot": {"max_length": 64}, "few_shot": {"shots": 2, "max_length": 128}}


def mutations(strong: str) -> dict[str, Any]:
    """A new value for every field of every registered method (a method or field added without an
    entry here fails ``test_every_method_field_has_a_mutation``)."""
    return {
        "logconf.alpha_max": 0.75, "logconf.warmup_frac": 0.1, "product.alpha": 0.5, "product.beta": 2.0,
        "entropy.alpha_max": 0.3, "entropy.warmup_frac": 0.5, "window.radius": 0.05, "adaptconf.temperature": 1.0,
        "bootstrap.models": [], "bootstrap.folds": 3, "bootstrap.rung_loss": "logconf",
        "early_stop.every": 1, "early_stop.eval_steps": 2, "early_stop.select": "weak_xent",
        "generative.steps": 3, "generative.lr": 2e-4, "generative.lora": False, "generative.lora_rank": 4,
        "generative.batch_size": 2, "generative.max_length": 12,
        "probe_ladder.ft_steps": 3, "probe_ladder.ft_lr": 1e-3, "probe_ladder.lora": True,
        "knn_filter.k": 4, "knn_filter.folds": 3, "knn_filter.action": "relabel", "knn_filter.drop_frac": 0.2,
        "logreg_filter.C": 0.5, "logreg_filter.folds": 3, "logreg_filter.max_iter": 60,
        "logreg_filter.action": "relabel", "logreg_filter.drop_frac": 0.2,
        "topo_filter.k": 4, "topo_filter.zeta": 0.6, "topo_filter.action": "relabel",
        "confidence_filter.radius": 2e-4, "s2s.iterations": 2, "s2s.folds": 3,
        "ensemble.models": [], "ensemble.seeds": [], "ensemble.combine": "confidence",
        "zero_shot.model": strong, "zero_shot.template": "{text}\nLabel:", "zero_shot.label_words": ["bad", "good"],
        "zero_shot.batch_size": 8, "zero_shot.max_length": 48,
        "few_shot.shots": 3, "few_shot.source": "weak", "few_shot.model": strong, "few_shot.template": "{text}\nIt is",
        "few_shot.label_words": ["bad", "good"], "few_shot.batch_size": 8, "few_shot.max_length": 96,
    }


# probe: weight_decay, which every head reads. The probe section is keyed whole, so a solver's own
# fields (lr, epochs, batch_size, schedule: Adam; max_iter, tol: L-BFGS) also rebuild the heads of
# the other solver, which do not read them: an over-inclusion that costs cache reuse, never a stale entry.
SECTIONS = {"probe.weight_decay": [0.5], "embed.max_length": 32, "embed.weak_layer": -2, "embed.pooling": "cls",
            "splits.n_test": 24, "finetune.lr": 2e-3, "finetune.dtype": "bf16", "out": "elsewhere",
            "seeds": [0, 7]}
"""One field of each config section (and run-level fields that change no stage)."""


# --------------------------------------------------------------------------- logging a run


@dataclass
class Log:
    """What one run built and read: student scopes' reads, each built entry (its enclosing student
    scope, stage, key, reads) and every cache lookup that hit."""

    students: dict[str, frozenset[str]] = field(default_factory=dict)
    builds: list[tuple[str, str, str, frozenset[str]]] = field(default_factory=list)
    hits: set[tuple[str, str]] = field(default_factory=set)

    def on_scope(self, sc: reads.Scope) -> None:
        if sc.name.startswith("student "):
            self.students[sc.name[len("student "):]] = frozenset(sc.reads)
        elif "/" in sc.name and not sc.name.startswith("side "):
            stage, key = sc.name.split("/", 1)
            outer = [s.name[len("student "):] for s in reads._stack() if s.name.startswith("student ")]
            self.builds.append((outer[-1] if outer else "", stage, key, frozenset(sc.reads)))


def run_logged(cfg: RunConfig, cache: Path, monkeypatch) -> tuple[Log, dict[str, Any]]:
    log = Log()
    get_or_build, get = StageCache.get_or_build, StageCache.get

    def logged_get_or_build(self, stage, inputs, build):
        entry, hit = get_or_build(self, stage, inputs, build)
        if hit:
            log.hits.add((stage, stage_key(inputs)))
        return entry, hit

    def logged_get(self, stage, key):
        entry = get(self, stage, key)
        if entry is not None:
            log.hits.add((stage, key))
        return entry

    with monkeypatch.context() as m, reads.listening(log.on_scope):
        m.setattr(StageCache, "get_or_build", logged_get_or_build)
        m.setattr(StageCache, "get", logged_get)
        res = w2sgen.run(cfg, cache_dir=cache, index=False)
    return log, res.runs[0]


def inputs_of(cache: Path, stage: str, key: str) -> dict[str, Any]:
    return json.loads((cache / "stages" / stage / key / "inputs.json").read_text())


def data_only(a: Any, b: Any, path: str = "") -> bool:
    """Whether two key dicts differ only in data entries (leaf names in DATA). A stage on weights that
    an upstream entry produced (``lm``, ``finetuned``) has that side's key as ``features``: data too."""
    if path in DATA:
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        derived = "lm" in a or "finetuned" in a
        return all(data_only(a.get(k), b.get(k), k) or (derived and k == "features") for k in set(a) | set(b))
    return a == b or path in DATA or path in RESOLVED


def touched(paths: frozenset[str], field_path: str) -> bool:
    return any(reads.touches(p, field_path) for p in paths)


def mutate(cfg: RunConfig, path: str, value: Any) -> RunConfig:
    new = copy.deepcopy(cfg)
    head, _, rest = path.partition(".")
    if head in METHODS:
        new.method_args.setdefault(head, {})[rest] = value
    elif rest:
        setattr(getattr(new, head), rest, value)
    else:
        setattr(new, head, value)
    return new


def check_mutation(base: Log, base_rec: dict[str, Any], log: Log, rec: dict[str, Any], cache: Path,
                   path: str, inner: bool = True) -> None:
    """The three rules of the module docstring for one mutated field ``path``.

    Stages are compared by key, not by the ``cached`` flag: two methods may share a stage (probe_ladder's
    lp(weak) is the xent student), so a reader's new key may already be in the cache."""
    method_path = f"method_args.{path}" if path.split(".")[0] in METHODS else path
    problems = []
    # students (their own reads: the whole pipeline), floor and ceiling
    stages = {f"student {m}": (base.students[m], base_rec["stages"]["students"][m], rec["stages"]["students"][m])
              for m in rec["stages"]["students"]}
    for name, stage in (("weak", "floor"), ("ceiling", "ceiling")):
        r = [b[3] for b in base.builds if b[1] == stage and b[2] == base_rec["stages"][name]["key"]]
        stages[stage] = (r[0] if r else frozenset(), base_rec["stages"][name], rec["stages"][name])
    for name, (read, old, new) in stages.items():
        stage = "student" if name.startswith("student ") else name
        changed = new["key"] != old["key"]
        if touched(read, method_path) and not changed:
            problems.append(f"{name} read {method_path} but kept its key (a stale result)")
        if not touched(read, method_path) and changed and \
                not data_only(inputs_of(cache, stage, old["key"]), inputs_of(cache, stage, new["key"])):
            problems.append(f"{name} did not read {method_path} but its key changed beyond its data")
    if not inner:
        assert not problems, "\n".join(problems)
        return
    # inner stages: a reader is never served under its old key ...
    for scope, stage, key, read in base.builds:
        if scope and touched(read, method_path) and (stage, key) in log.hits:
            problems.append(f"inner stage {stage}/{key} of {scope} read {method_path} but was served from the cache")
    # ... and, in a pipeline that did not read the field at all, a stage is rebuilt only when its data
    # changed (a reader's pipeline may rebuild its inner stages: the field reaches them through it)
    for scope, stage, key, read in log.builds:
        if not scope or touched(read, method_path) or touched(base.students.get(scope, frozenset()), method_path):
            continue
        olds = [k for s, st, k, _ in base.builds if s == scope and st == stage]
        new_inputs = inputs_of(cache, stage, key)
        if not any(data_only(inputs_of(cache, stage, k), new_inputs) for k in olds):
            problems.append(f"inner stage {stage}/{key} of {scope} did not read {method_path} but was rebuilt")
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("models")
    return {"weak": str(build_tiny_encoder(root / "weak", 0)), "mid": str(build_tiny_encoder(root / "mid", 2)),
            "strong": str(build_tiny_lm(root / "strong", "llama", 1))}


def all_methods() -> list[str]:
    """xent first: probe_ladder's lp(weak) is the xent student (the same stage), and the baseline must
    record each student's own reads (a stage a method finds cached records none)."""
    return ["xent", *[m for m in METHODS.names() if m != "xent"], *COMPOSED]


def make_cfg(tmp: Path, models: dict[str, str], mode: str, methods: list[str]) -> RunConfig:
    toy = write_toy_task(tmp / "toy.jsonl")
    cfg = toy_config(toy, models["weak"], models["strong"], tmp / "out", methods=methods, mode=mode,
                     method_args=base_args(models["mid"]),
                     finetune=FinetuneConfig(max_steps=2, batch_size=8, lr=1e-3))
    return cfg


@pytest.fixture(scope="module")
def probe_baseline(tmp_path_factory, models):
    tmp = tmp_path_factory.mktemp("keys-probe")
    cfg = make_cfg(tmp, models, "probe", all_methods())
    mp = pytest.MonkeyPatch()
    try:
        log, rec = run_logged(cfg, tmp / "cache", mp)
    finally:
        mp.undo()
    return cfg, tmp / "cache", log, rec


# --------------------------------------------------------------------------- (1) recording


def test_every_method_and_composition_kind_runs_with_recording_on(probe_baseline):
    """Every registered method and a composition of each kind ran with the check on (a stage that read
    an uncovered field would have failed the run), and the recording is live: the students' scopes
    recorded the fields they read."""
    cfg, _, log, rec = probe_baseline
    assert set(rec["stages"]["students"]) == set(all_methods())
    assert "method_args.logconf" in log.students["logconf"] and "probe.lr" in log.students["logconf"]
    assert "method_args.logconf" not in log.students["xent"]
    assert "finetune.lr" in log.students["probe_ladder"] or "finetune" in log.students["probe_ladder"]
    assert any(p.startswith("@side:") for p in log.students["bootstrap"])  # the rung's model
    for m in rec["stages"]["students"]:
        assert log.students[m], m


def test_finetune_mode_runs_every_method_with_recording_on(tmp_path, models, monkeypatch):
    cfg = make_cfg(tmp_path, models, "finetune", all_methods())
    log, rec = run_logged(cfg, tmp_path / "cache", monkeypatch)
    assert set(rec["stages"]["students"]) == set(all_methods())
    # the filters read the frozen strong model's probe-mode features: embed.* is in their keys now
    assert "embed.max_length" in log.students["knn_filter"]


def test_a_method_that_reads_an_undeclared_field_cannot_write_its_student(tmp_path, models, monkeypatch):
    """The check itself: a method whose key misses a field it reads (here bootstrap's rung loss
    settings, without its key_fn) fails before its student entry is written."""
    m = METHODS.get("bootstrap")
    monkeypatch.setattr(m, "key_fn", lambda cfg, env: {"rungs": [env.model_key(x) for x in cfg.models]})
    cfg = make_cfg(tmp_path, models, "probe", ["bootstrap"])
    cfg.method_args["bootstrap"]["rung_loss"] = "logconf"
    with pytest.raises(reads.StageKeyError, match="method_args.logconf"):
        w2sgen.run(cfg, cache_dir=tmp_path / "cache", index=False)
    assert not list((tmp_path / "cache" / "stages").glob("student/*/manifest.json"))


def test_every_method_field_has_a_mutation(models):
    import dataclasses

    want = {f"{n}.{f.name}" for n in METHODS.names() for f in dataclasses.fields(METHODS.get(n).config_cls)}
    assert want == set(mutations(models["strong"]))


# --------------------------------------------------------------------------- (2) mutations


def _method_field(path: str, cfg: RunConfig, cache: Path, base: Log, base_rec: dict[str, Any], models,
                  monkeypatch, methods: list[str]) -> None:
    new = mutate(cfg, path, mutations(models["strong"])[path])
    new.methods = methods
    log, rec = run_logged(new, cache, monkeypatch)
    check_mutation(base, base_rec, log, rec, cache, path)
    owner = path.split(".")[0]
    # by key, not by the cached flag: another test of this module may have built the mutated student already
    old = base_rec["stages"]["students"]
    assert any(st["key"] != old[n]["key"] for n, st in rec["stages"]["students"].items() if owner in n.split("+"))


@pytest.mark.parametrize("path", sorted(mutations("S")))
def test_mutating_a_method_field_rebuilds_exactly_its_readers(path, probe_baseline, models, monkeypatch):
    """Each method field, against the baseline's cache: the runs of that method (alone and in every
    composition) and of xent (a control that must come from the cache)."""
    cfg, cache, base, base_rec = probe_baseline
    owner = path.split(".")[0]
    methods = [m for m in all_methods() if owner in m.split("+")] + (["xent"] if owner != "xent" else [])
    _method_field(path, cfg, cache, base, base_rec, models, monkeypatch, methods)


@pytest.mark.slow
@pytest.mark.parametrize("path", sorted(mutations("S")))
def test_mutating_a_method_field_rebuilds_exactly_its_readers_among_all_methods(path, probe_baseline, models,
                                                                              monkeypatch):
    """The full matrix: every method runs on every mutation (all but the readers from the cache)."""
    cfg, cache, base, base_rec = probe_baseline
    _method_field(path, cfg, cache, base, base_rec, models, monkeypatch, all_methods())


@pytest.mark.parametrize("path", sorted(SECTIONS))
def test_mutating_a_section_field_rebuilds_exactly_its_readers(path, probe_baseline, monkeypatch):
    cfg, cache, base, base_rec = probe_baseline
    log, rec = run_logged(mutate(cfg, path, SECTIONS[path]), cache, monkeypatch)
    check_mutation(base, base_rec, log, rec, cache, path, inner=path != "seeds")  # a new seed's stages are new
    if path in ("out", "seeds"):  # run-level: nothing of seed 0 is rebuilt
        assert rec["stages"]["weak"]["cached"] and rec["stages"]["ceiling"]["cached"]
        assert all(st["cached"] for st in rec["stages"]["students"].values())


def test_finetune_mode_embed_fields_rebuild_the_filters_only(tmp_path, models, monkeypatch):
    """Issue 13's third stale case: in finetune mode the filters read embed.* (frozen features)."""
    methods = ["xent", "logconf", "knn_filter", "topo_filter", "confidence_filter"]
    cfg = make_cfg(tmp_path, models, "finetune", methods)
    base, base_rec = run_logged(cfg, tmp_path / "cache", monkeypatch)
    log, rec = run_logged(mutate(cfg, "embed.max_length", 32), tmp_path / "cache", monkeypatch)
    check_mutation(base, base_rec, log, rec, tmp_path / "cache", "embed.max_length")
    st = rec["stages"]["students"]
    old = base_rec["stages"]["students"]
    assert st["knn_filter"]["key"] != old["knn_filter"]["key"] and st["topo_filter"]["key"] != old["topo_filter"]["key"]
    assert st["xent"]["cached"] and st["logconf"]["cached"] and st["confidence_filter"]["cached"]


def test_issue_13_stale_students_are_rebuilt(tmp_path, models, monkeypatch):
    """The stale cases of issue 13, rerun as described: bootstrap's rung loss settings, and
    probe_ladder's finetune.* in a probe run, now change their students' keys."""
    cfg = make_cfg(tmp_path, models, "probe", ["xent", "bootstrap", "probe_ladder"])
    cfg.method_args["bootstrap"]["rung_loss"] = "logconf"
    _, first = run_logged(cfg, tmp_path / "cache", monkeypatch)
    _, again = run_logged(mutate(cfg, "logconf.alpha_max", 0.95), tmp_path / "cache", monkeypatch)
    st = again["stages"]["students"]
    assert st["bootstrap"]["key"] != first["stages"]["students"]["bootstrap"]["key"] and not st["bootstrap"]["cached"]
    assert st["xent"]["cached"] and st["probe_ladder"]["cached"]
    _, third = run_logged(mutate(cfg, "finetune.lr", 3e-3), tmp_path / "cache", monkeypatch)
    st = third["stages"]["students"]
    assert st["probe_ladder"]["key"] != first["stages"]["students"]["probe_ladder"]["key"]
    assert st["xent"]["cached"] and st["bootstrap"]["key"] == first["stages"]["students"]["bootstrap"]["key"]
