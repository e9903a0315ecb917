"""Random and mutated run configs, --set overrides, CLI argv and model directories."""

from __future__ import annotations

import json
import os

import pytest
import yaml
from fuzzing import FUZZ, JSONS, SCALARS, TEXTS, assert_empty, mutate, user_error_only
from hypothesis import given
from hypothesis import strategies as st

from w2sgen.config import RunConfig, apply_overrides, load_config

FIELDS = ["task", "weak", "strong", "methods", "mode", "seeds", "out", "data_dir", "weak_labels", "text_col",
          "label_col", "group_col", "trust_remote_code", "splits", "embed", "probe", "method_args", "sede"]
SUB = {"splits": ["n_weak_train", "n_transfer", "n_val", "n_test", "split_seed", "balance", "max_examples", "x"],
       "embed": ["batch_size", "max_length", "dtype", "weak_layer", "strong_layer", "pooling", "device"],
       "probe": ["head", "hidden", "lr", "weight_decay", "epochs", "batch_size", "schedule", "standardize",
                 "skip_nonfinite", "select", "solver", "max_iter", "tol"]}
KEYS = [*FIELDS, *(f"{s}.{k}" for s, ks in SUB.items() for k in ks), "logconf.alpha_max", "product.beta",
        "xent.x", "logconf", "a.b.c", "probe.lr.x", "", ".", "method_args.logconf"]


@st.composite
def config_dicts(draw) -> dict:
    out = {}
    for key in draw(st.lists(st.sampled_from(FIELDS), max_size=6, unique=True)):
        if key in SUB:
            out[key] = draw(st.one_of(st.dictionaries(st.sampled_from(SUB[key]), SCALARS, max_size=3), SCALARS))
        elif key == "method_args":
            out[key] = draw(st.one_of(st.dictionaries(st.sampled_from(["logconf", "product", "xent", "zz"]),
                                                      st.one_of(st.dictionaries(st.sampled_from(["alpha_max", "beta", "warmup", "q"]), SCALARS, max_size=2), SCALARS), max_size=2), SCALARS))
        elif key in ("methods", "seeds"):
            out[key] = draw(st.one_of(st.lists(st.one_of(st.sampled_from(["xent", "logconf", "0", 1, -2]), SCALARS), max_size=3), SCALARS))
        else:
            out[key] = draw(JSONS)
    return out


@FUZZ
@given(data=config_dicts(), how=st.sampled_from(["dump", "dump", "mutate", "noise", "tag"]), seed=st.integers(0, 2**32))
def test_fuzz_run_config_yaml(tmp_path_factory, empty_cache, data, how, seed):
    if seed % 2:  # half the cases start from a valid config, so field checks are reached
        data = {"task": "cities", "weak": "minilm-l6", "strong": "mpnet-base", **data}
    text = yaml.safe_dump(data, allow_unicode=True)
    if how == "mutate":
        text = mutate(text.encode(), seed, 1 + seed % 6).decode("utf-8", "replace")
    elif how == "noise":
        text = mutate(b"task: a\nweak: b\n", seed, 12).decode("latin-1")
    elif how == "tag":
        text = "task: !!python/object/apply:os.system ['touch /tmp/w2s-pwned']\n"
    path = tmp_path_factory.mktemp("cfg") / "run.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")

    def load():
        cfg = load_config(path)
        assert isinstance(cfg, RunConfig)
        return cfg.validate()

    user_error_only("config.load_config", load)
    assert not os.path.exists("/tmp/w2s-pwned")
    assert_empty(empty_cache)


@FUZZ
@given(items=st.lists(st.one_of(
    st.builds(lambda k, v: f"{k}={v}", st.sampled_from(KEYS), st.one_of(TEXTS, st.sampled_from(
        ["[1, 2]", "{a: 1}", "[", "!!python/name:os.system", "1e-3", "-1", "true", "null", "0.5", "x,y"]))),
    TEXTS), max_size=4))
def test_fuzz_overrides(empty_cache, items):
    base = RunConfig(task="cities", weak="minilm-l6", strong="mpnet-base")
    user_error_only("config.apply_overrides", lambda: apply_overrides(base, items).validate())
    assert_empty(empty_cache)


class Reached(Exception):
    """The CLI got past every check and would have started the (patched) heavy work."""


VOCAB = ["run", "demo", "results", "export-labels", "list", "doctor", "cache", "info", "prune", "tasks",
         "models", "methods", "--task", "--weak", "--strong", "--methods", "--mode", "--seeds", "--out",
         "--data-dir", "--weak-labels", "--text-col", "--label-col", "--group-col", "--max-examples",
         "--split-seed", "--balance", "--cache-dir", "--set", "--format", "--summary", "-o", "--splits",
         "--older-than", "--max-size", "--unused-by", "--dry-run", "--no-hub", "-v", "--help",
         "cities", "citis", "sst2", "minilm-l6", "mpnet-base", "org/model", "xent", "xent,logconf", "probe",
         "finetune", "0", "0,1", "-1", "x", "json", "csv", "table", "30d", "10G", "abc", "probe.lr=1e-3",
         "probe.lr=abc", "splits.n_test=-5", "logconf.alpha_max=2", "=", "DIR", "FILE", "CFG", "BADCFG",
         "task.jsonl", "task.yaml", "labels.csv", "../../etc/passwd", "/", ""]


COMMANDS = {
    "run": ["--task", "--weak", "--strong", "--methods", "--mode", "--seeds", "--out", "--data-dir",
            "--weak-labels", "--text-col", "--label-col", "--group-col", "--max-examples", "--split-seed",
            "--balance", "--cache-dir", "--set"],
    "results": ["--format", "--summary"], "export-labels": ["-o", "--splits"], "list": [],
    "cache": ["--older-than", "--max-size", "--unused-by", "--dry-run", "--cache-dir"], "demo": ["--seeds", "--out"],
}
VALUES = st.one_of(st.sampled_from(VOCAB[40:]), TEXTS)


@st.composite
def argvs(draw) -> list[str]:
    """Half structured (a command, its positionals, flags with values), half free word salad."""
    if draw(st.booleans()):
        return draw(st.lists(st.one_of(st.sampled_from(VOCAB), TEXTS), max_size=8))
    cmd = draw(st.sampled_from(sorted(COMMANDS)))
    argv = [cmd]
    if cmd == "run":
        argv += draw(st.sampled_from([[], ["CFG"], ["BADCFG"], ["task.yaml"]]))
        argv += ["--task", draw(st.sampled_from(["cities", "FILE", "citis", "task.yaml", "x.csv", "sst2"])),
                 "--weak", draw(st.sampled_from(["minilm-l6", "org/model", "DIR", "nope", ""])),
                 "--strong", draw(st.sampled_from(["mpnet-base", "org/model", "DIR", "../x"]))]
    elif cmd in ("results", "export-labels"):
        argv.append(draw(st.sampled_from(["DIR", "/nonexistent", "FILE", "."])))
    elif cmd == "list":
        argv.append(draw(st.sampled_from(["tasks", "models", "methods", "x"])))
    elif cmd == "cache":
        argv.append(draw(st.sampled_from(["info", "prune", "x"])))
    for flag in draw(st.lists(st.sampled_from(COMMANDS[cmd] or ["-v"]), max_size=4)):
        argv.append(flag)
        if flag not in ("--balance", "--summary", "--dry-run", "-v"):
            argv.append(draw(VALUES))
    return argv


@FUZZ
@given(argv=argvs())
def test_fuzz_cli_argv(tmp_path_factory, empty_cache, monkeypatch, capsys, argv):
    import w2sgen.api
    import w2sgen.models.packaged as packaged
    from w2sgen import cli

    d = tmp_path_factory.mktemp("cli")
    monkeypatch.chdir(d)
    (d / "DIR").mkdir()
    (d / "task.jsonl").write_text('{"text": "a", "label": 1}\n{"text": "b", "label": 0}\n')
    (d / "CFG").write_text("task: cities\nweak: minilm-l6\nstrong: mpnet-base\n")
    (d / "BADCFG").write_text("task: [\n")

    def reached(*a, **kw):
        raise Reached

    monkeypatch.setattr(w2sgen.api, "run", reached)
    monkeypatch.setattr(packaged, "mpnet_base_path", reached)  # never unpack 400 MB in a fuzz case
    monkeypatch.setattr(cli, "cmd_setup_models", reached)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("W2S_DEBUG", raising=False)
    argv = [a.replace("FILE", str(d / "task.jsonl")) for a in argv]

    def call():
        try:
            rc = cli.main(argv)
        except SystemExit as e:  # argparse: usage errors exit 2, --help exits 0
            assert e.code in (0, 2), e.code
            return e
        except Reached:
            return "reached"
        assert rc in (0, 2), rc
        return rc

    user_error_only("cli.main", call)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert_empty(empty_cache)


MODEL_FILES = ["config.json", "model.safetensors", "pytorch_model.bin", "tokenizer.json", "vocab.txt",
               "model.gguf", "tokenizer_config.json", "special_tokens_map.json", "README.md", "sub/config.json"]


@st.composite
def model_dirs(draw) -> dict[str, bytes]:
    files = {}
    for name in draw(st.lists(st.sampled_from(MODEL_FILES), max_size=6, unique=True)):
        if name.endswith(".json"):
            content = draw(st.one_of(
                st.builds(lambda d: json.dumps(d).encode(), JSONS),
                st.sampled_from([b'{"model_type": "bert", "architectures": ["BertModel"]}',
                                 b'{"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]}',
                                 b'{"architectures": "x"}', b'{"architectures": [1, null]}', b"{", b"\xff\xfe"]),
                st.binary(max_size=40)))
        elif name.endswith(".safetensors"):
            content = draw(st.one_of(st.binary(max_size=40), st.sampled_from([
                b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ", b"\xff" * 8 + b"{}", b"\x02\x00\x00\x00\x00\x00\x00\x00{}"])))
        else:
            content = draw(st.binary(max_size=40))
        files[name] = content
    return files


@FUZZ
@given(files=model_dirs(), as_file=st.booleans())
def test_fuzz_model_dirs(tmp_path_factory, empty_cache, files, as_file):
    from w2sgen.models.backbone import check_model_dir, fingerprint, local_dir
    from w2sgen.models.registry import detect_kind, resolve_model

    d = tmp_path_factory.mktemp("model")
    for name, content in files.items():
        (d / name).parent.mkdir(parents=True, exist_ok=True)
        (d / name).write_bytes(content)
    target = d / "config.json" if as_file and files else d

    def check():
        model = resolve_model(str(target))
        check_model_dir(target)
        path = local_dir(model)
        detect_kind(path)
        return fingerprint(path)

    user_error_only("models.backbone.check_model_dir/local_dir", check)
    assert_empty(empty_cache)


@pytest.mark.parametrize("argv", [["run", "--task", "cities", "--weak", "nope", "--strong", "mpnet-base"],
                                  ["results", "/nonexistent"]])
def test_debug_shows_traceback(argv, monkeypatch, capsys):
    """W2S_DEBUG=1 re-raises the W2SError (the traceback shows); otherwise one line, exit 2."""
    from w2sgen.cli import main
    from w2sgen.errors import W2SError

    monkeypatch.delenv("W2S_DEBUG", raising=False)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    monkeypatch.setenv("W2S_DEBUG", "1")
    with pytest.raises(W2SError):
        main(argv)
