import pytest

from w2sgen.config import RunConfig, apply_overrides, load_config
from w2sgen.errors import W2SError


def test_overrides_nested_and_method_fields():
    cfg = apply_overrides(RunConfig(task="t", weak="w", strong="s"),
                          ["probe.lr=3e-4", "splits.n_test=500", "logconf.alpha_max=0.75", "seeds=0,1,2",
                           "methods=xent,product", "splits.n_val=0.25"])
    assert cfg.probe.lr == pytest.approx(3e-4)
    assert cfg.splits.n_test == 500 and cfg.splits.n_val == 0.25
    assert cfg.method_args == {"logconf": {"alpha_max": 0.75}}
    assert cfg.seeds == [0, 1, 2] and cfg.methods == ["xent", "product"]


@pytest.mark.parametrize("item,match", [
    ("probe.lrr=1", r"unknown field 'lrr'.*Did you mean: lr"),
    ("prob.lr=1", r"unknown section 'prob'.*Did you mean: probe"),
    ("probe.epochs=many", r"probe.epochs: expected an integer"),
    ("noequals", r"expected key=value"),
])
def test_bad_overrides(item, match):
    with pytest.raises(W2SError, match=match):
        apply_overrides(RunConfig(), [item])


def test_yaml_config(tmp_path):
    p = tmp_path / "run.yaml"
    p.write_text("task: cities\nweak: minilm-l6\nstrong: mpnet-base\nseeds: [0, 1]\nprobe:\n  epochs: 5\n")
    cfg = load_config(p, ["probe.head=mlp"])
    assert cfg.seeds == [0, 1] and cfg.probe.epochs == 5 and cfg.probe.head == "mlp"


def test_yaml_errors_name_file_and_line(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("task: cities\nweak: [unclosed\n")
    with pytest.raises(W2SError, match=r"bad.yaml:\d+: invalid YAML"):
        load_config(p)
    p.write_text("task: cities\nweek: minilm-l6\n")
    with pytest.raises(W2SError, match=r"unknown field 'week'.*Did you mean: weak"):
        load_config(p)


def test_yaml_python_tags_are_refused_not_run(tmp_path):
    marker = tmp_path / "pwned"
    p = tmp_path / "evil.yaml"
    p.write_text(f"task: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(W2SError, match="invalid YAML"):
        load_config(p)
    assert not marker.exists()


def test_validate_requires_names():
    with pytest.raises(W2SError, match="'task' is required"):
        RunConfig().validate()
