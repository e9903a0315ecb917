"""Run configuration: dataclasses whose fields carry their docs, YAML loading, ``key=value`` overrides."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import W2SError, did_you_mean

Size = typing.Union[int, float, None]  # noqa: UP007 - a runtime alias on Python 3.10


@dataclass
class SplitConfig:
    n_weak_train: Size = None
    """Examples in A (weak model's ground-truth training set): a count, a fraction of the
    training pool, or None for half of what is left after val (and test, when carved)."""
    n_transfer: Size = None
    """Examples in B (the strong model's training set; weak labels are made on it).
    Same forms as n_weak_train; a count larger than what is left is cut to what is left."""
    n_val: Size = None
    """Validation examples (weak labels are made on them too). None: 10% of the training pool, at most
    1,000, at least min_val."""
    n_test: Size = None
    """Test examples. None: the task's own test split if it has one, else 20% of the pool, at most 5,000,
    at least min_test."""
    min_test: int = 200
    """Fewest test examples a run accepts: a smaller test split (an explicit smaller n_test included) is an
    error before any training. Lower it knowingly for tiny experiments: accuracy on fewer is too noisy."""
    min_val: int = 100
    """Fewest val examples a run accepts (as min_test). Every split must also hold at least two classes."""
    split_seed: int | None = None
    """Seed of the split draw; None uses each run's training seed."""
    balance: bool = False
    """Downsample each split to a 50/50 label balance (binary tasks), as in the paper."""
    max_examples: int | None = None
    """Subsample the task to about this many examples (whole groups) before splitting. The test and val
    sizes at this budget (n_test and n_val, or the defaults at least min_test and min_val) are reserved
    first: a task with its own test pool gives test from that pool and the rest from the training pool;
    otherwise test is carved from the subsample. weak_train and transfer share what is left."""
    pool_seed: int | None = None
    """Seed of the max_examples subsample alone: with it, every seed draws its splits from the same
    subsample (so they share texts and the activation cache); None: the split seed draws both. Also
    the seed of the strong_pool sample (None: 0)."""
    strong_pool: int | None = None
    """Draw transfer and val (and test, unless the task has its own test pool) from one fixed sample of
    about this many training-pool examples (whole groups, drawn by pool_seed), the same for every seed;
    each seed partitions that sample its own way and draws weak_train from the rest of the training
    pool. The strong model, the costly one, then embeds the same texts for every seed (probe mode),
    while the weak model still trains on a different draw per seed. Defaults inside the sample: test
    20% of it (at least min_test), val 10% (at least min_val), transfer what is left; weak_train all
    of the rest of the training pool unless n_weak_train says less. Fractions change meaning with it:
    n_transfer, n_val and a carved n_test are fractions of the sample, n_weak_train of the training
    pool outside it. Not with max_examples."""


@dataclass
class EmbedConfig:
    """How frozen backbones turn text into features (probe mode)."""

    batch_size: int = 64
    """Texts per forward pass (batches are grouped by length, padding is dynamic)."""
    max_length: int = 256
    """Token limit; longer inputs are truncated."""
    dtype: str = "auto"
    """Compute dtype: auto (bf16 autocast where a short probe measured bf16 ≥ 1.2× faster than fp32 on
    this device; w2s doctor shows it), fp32, bf16."""
    weak_layer: int | None = None
    """Hidden layer probed on the weak model (negative counts from the top); None: the model's default."""
    strong_layer: int | None = None
    """Hidden layer probed on the strong model; None: the model's default."""
    pooling: str | None = None
    """mean, cls or last (last non-pad token); None: the model's default (mean for encoders, last for decoders)."""
    device: str = "auto"
    """cpu, cuda, cuda:N or auto."""


@dataclass
class ProbeConfig:
    """The heads trained on cached activations (the same recipe for weak, ceiling and students).

    Each stage trains one head per ``weight_decay`` value, together as one batched model, and keeps
    the one that ``select`` prefers on val: floors and ceilings against the val ground truth, students
    and every stage trained on weak or derived labels against their supervision's labels on val."""

    head: str = "linear"
    """linear or mlp (one hidden layer)."""
    hidden: int = 256
    """Hidden width of the mlp head."""
    weight_decay: list[float] = field(default_factory=lambda: [1e-3, 1e-2, 1e-1, 1.0, 10.0])
    """L2 strengths λ, one head each: a head minimises mean loss + (λ/2)·‖W‖² (weights only, on
    standardized features). One value: no selection. 0 only with the adam solver (L-BFGS needs a
    penalty for the optimum to exist). The default spans what the benchmarks chose
    (bench/heads.py): ~1e-2 for large clean training sets, up to 1 for noisy or weak labels, more for
    small imbalanced ones."""
    select: str = "agreement"
    """How a stage picks its head on val: agreement (highest fraction of val examples whose argmax
    matches the reference's: accuracy for ground truth) or xent (lowest cross-entropy to the
    reference's soft labels). Ties go to the larger weight decay. Test labels are never read."""
    solver: str = "auto"
    """lbfgs (full-batch L-BFGS to the regularised optimum; only for losses that are a fixed mean of
    per-example terms, i.e. xent), adam (minibatches: lr, epochs, batch_size, schedule below; what
    logconf and the other batch- or step-dependent losses need, and what early_stop watches) or auto
    (lbfgs for linear heads with xent, adam otherwise)."""
    max_iter: int = 300
    """lbfgs: iterations at most per head."""
    tol: float = 1e-4
    """lbfgs: a head stops when no entry of its objective's gradient exceeds this, in the preconditioned
    coordinates it is solved in (train.probe: U = M V, b = √K β)."""
    lr: float = 3e-3
    """adam: peak learning rate."""
    epochs: int = 50
    """adam: passes over the training set."""
    batch_size: int = 64
    """adam: minibatch size (also the batch in which logconf matches positive rates)."""
    schedule: str = "cosine"
    """adam: learning-rate schedule over all steps: cosine (decays to 0) or constant."""
    standardize: bool = True
    """Standardize features with the mean/std of the stage's own training set."""
    skip_nonfinite: bool = False
    """On a NaN or inf loss: False stops the stage with an error naming the stage and step; True skips
    that batch for that head (adam: no update), counts it in the stage's train.json (``skipped_steps``),
    and fails only if every step is skipped (lbfgs: drops a head whose loss is non-finite at the start)."""

    def __post_init__(self) -> None:
        if isinstance(self.weight_decay, (int, float)):  # one value, from Python
            self.weight_decay = [float(self.weight_decay)]
        if not self.weight_decay or any(not 0 <= float(v) < float("inf") for v in self.weight_decay):
            raise W2SError(f"config field 'probe.weight_decay': {self.weight_decay!r}; give one or more numbers "
                           ">= 0, e.g. probe.weight_decay=[0.001,0.01,0.1]")
        for name, allowed in (("select", ("agreement", "xent")), ("solver", ("auto", "lbfgs", "adam"))):
            if getattr(self, name) not in allowed:
                raise W2SError(f"config field 'probe.{name}': {getattr(self, name)!r}; use {', '.join(allowed)}")

    def zero_decay_error(self) -> W2SError:
        """The error for a weight decay of 0 where the L-BFGS solver would fit it (config validation and
        ``train.probe.train_heads`` both raise it)."""
        return W2SError(f"config field 'probe.weight_decay': {self.weight_decay!r} holds 0, which the L-BFGS "
                        "solver (the xent heads of floors, ceilings and students) cannot fit: without a penalty, "
                        "features that separate the classes (N <= D always do) have no optimum. Use a small "
                        "value such as 1e-4, or probe.solver=adam")


@dataclass
class FinetuneConfig:
    """Full or LoRA finetuning of the backbone with a classification head (``mode: finetune``)."""

    lr: float | None = None
    """Peak learning rate; None: the model's default at batch 32, scaled linearly with batch_size."""
    head_lr: float | None = None
    """Learning rate of the (small-initialised) head; None: max(10 × lr, 1e-3), so it leaves zero fast."""
    epochs: float = 1.0
    """Passes over the training set (fractions allowed)."""
    max_steps: int | None = None
    """Cap on optimizer steps (for quick runs); None: epochs decide."""
    batch_size: int = 32
    """Effective batch size (examples per optimizer step)."""
    micro_batch_size: int | None = None
    """Examples per forward/backward; None: the whole effective batch (no accumulation). Set it
    smaller to save memory: gradients then accumulate to batch_size."""
    warmup_frac: float = 0.05
    """Fraction of steps of linear warmup before the cosine decay."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    max_grad_norm: float = 1.0
    """Gradient clipping (0 turns it off)."""
    lora: bool = False
    """Train LoRA adapters (peft) instead of all weights."""
    lora_rank: int = 8
    """LoRA rank r."""
    lora_alpha: float = 16.0
    """LoRA scaling alpha."""
    lora_targets: list[str] | None = None
    """LoRA target module names; None: the family's defaults."""
    grad_checkpointing: bool | None = None
    """Recompute activations in backward to save memory; None: the model's default."""
    dtype: str = "auto"
    """Compute dtype: auto (bf16 autocast where a short probe measured bf16 ≥ 1.2× faster than fp32 on
    this device), fp32 or bf16."""
    weights_dtype: str | None = None
    """Weight dtype: fp32 or bf16; None: the model's default (bf16 for large models)."""
    max_length: int = 256
    """Token limit per example (longer inputs are truncated)."""
    eval_batch_size: int = 64
    """Examples per forward pass at evaluation."""
    dropout: bool = False
    """Keep the model's dropout (off by default, as in the paper, for determinism)."""
    checkpoint_every: int | None = None
    """Optimizer steps between checkpoints (weights, optimizer, schedule, RNG, data position); a
    crashed stage resumes from its latest one with the same result. None: off. Not in stage keys."""


@dataclass
class GenConfig:
    """Generation tasks (``task_kind: generation``): how answers are prompted, written and trained on."""

    max_new_tokens: int | None = None
    """Most tokens an answer may have (generation also stops at end-of-sequence or a newline); None:
    the task's default (cities_gen 8, arithmetic 8, sciq_gen 12, gsm8k 256, data files 32)."""
    batch_size: int = 32
    """Prompts per generation batch (left-padded, with a KV cache)."""
    template: str = "{prompt}\nAnswer:"
    """The prompt every model sees: ``{prompt}`` is the example's prompt; the answer follows after a space."""
    lora: bool | None = None
    """Supervised finetuning of LoRA adapters (rank finetune.lora_rank) instead of all weights; None: LoRA
    on a CPU, all weights on a GPU. Of the finetune.* fields, generation SFT uses lr, epochs, max_steps,
    batch_size, micro_batch_size, warmup_frac, weight_decay, max_grad_norm, lora_rank, lora_alpha,
    lora_targets, grad_checkpointing (None: off), dtype, weights_dtype, max_length and dropout;
    finetune.lora, head_lr and checkpoint_every are refused; eval_batch_size does not apply (decoding
    batches are gen.batch_size)."""
    checker: str | None = None
    """How an answer is scored: exact (normalised exact match: case, punctuation, articles) or numeric
    (the last number in the answer); None: the task's own checker (exact for data files)."""
    task_args: dict[str, Any] = field(default_factory=dict)
    """Settings of a generated task, e.g. arithmetic's ``--set 'gen.task_args={steps: 3, digits: 3}'``
    (w2s show-task NAME lists them); they change the task itself, hence its fingerprint."""


@dataclass
class RunConfig:
    """One experiment: a task, a weak and a strong model, methods and seeds."""

    task: str = ""
    """Registered task name, a task YAML, or a data file (.jsonl, .csv, .tsv, .parquet)."""
    weak: str = ""
    """Weak model: short name, hub id or local directory."""
    strong: str = ""
    """Strong model: short name, hub id or local directory."""
    methods: list[str] = field(default_factory=lambda: ["xent", "logconf"])
    """Student training methods (registry names)."""
    mode: str = "probe"
    """probe: frozen backbones, heads trained on cached activations; finetune: full or LoRA finetuning."""
    seeds: list[int] = field(default_factory=lambda: [0])
    """Training seeds; each gives one run (python, numpy, torch and data order)."""
    out: str = "w2s-results"
    """Results directory (one folder per run, with run.json and predictions)."""
    data_dir: str | None = None
    """Local directory with the task's original files (instead of the hub)."""
    weak_labels: str | None = None
    """Bring your own weak labels: a file of example id -> probability (replaces the weak stage)."""
    text_col: str = "text"
    """Text column of a data-file task."""
    label_col: str = "label"
    """Label column of a data-file task."""
    group_col: str | None = None
    """Group column of a data-file task (default: 'group' if present)."""
    trust_remote_code: bool = False
    """Allow model repositories to run their own code (off unless you ask)."""
    splits: SplitConfig = field(default_factory=SplitConfig)
    embed: EmbedConfig = field(default_factory=EmbedConfig)
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    gen: GenConfig = field(default_factory=GenConfig)
    method_args: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per-method settings, e.g. {'logconf': {'alpha_max': 0.75}} (``--set logconf.alpha_max=0.75``)."""

    def validate(self) -> RunConfig:
        for name in ("task", "weak", "strong"):
            if not getattr(self, name):
                raise W2SError(f"config field {name!r} is required (e.g. --{name} ...)")
        if self.mode not in ("probe", "finetune"):
            raise W2SError(f"config field 'mode': {self.mode!r}; use probe or finetune")
        if not self.methods:
            raise W2SError("config field 'methods' is empty; name at least one, e.g. xent")
        if not self.seeds:
            raise W2SError("config field 'seeds' is empty; give at least one seed, e.g. 0")
        probe = self.probe
        if (self.mode == "probe" and probe.solver in ("auto", "lbfgs") and probe.head == "linear"
                and any(float(v) == 0 for v in probe.weight_decay)):
            raise probe.zero_decay_error()
        return self


# --------------------------------------------------------------------------- loading


def _field_docs(cls: type) -> dict[str, str]:
    """Docstrings written under each field (read from the source, for ``--help`` and errors)."""
    import ast
    import inspect
    import textwrap

    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError):
        return {}
    docs: dict[str, str] = {}
    body = tree.body[0].body  # type: ignore[attr-defined]
    for a, b in zip(body, body[1:]):
        if isinstance(a, ast.AnnAssign) and isinstance(b, ast.Expr) and isinstance(b.value, ast.Constant):
            docs[a.target.id] = " ".join(str(b.value.value).split())  # type: ignore[union-attr]
    return docs


def _coerce(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, where)
            except W2SError as e:
                errors.append(str(e))
        raise W2SError(f"{where}: {value!r} does not fit {tp}")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise W2SError(f"{where}: expected a mapping of fields, got {value!r}")
        return from_dict(tp, value, where)
    if origin is list:
        if isinstance(value, str):
            value = [v for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            value = [value]
        return [_coerce(v, args[0] if args else Any, where) for v in value]
    if origin is dict:
        if not isinstance(value, dict):
            raise W2SError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "false", "no", "0"):
            return value.lower() in ("true", "yes", "1")
        raise W2SError(f"{where}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise W2SError(f"{where}: expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
        raise W2SError(f"{where}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, bool):
            raise W2SError(f"{where}: expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise W2SError(f"{where}: expected a number, got {value!r}") from None
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise W2SError(f"{where}: expected a string, got {value!r}")
    return value


def from_dict(cls: type, data: dict[str, Any], where: str = "config") -> Any:
    """Build dataclass ``cls`` from a mapping; unknown or ill-typed fields raise W2SError."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            raise W2SError(f"{where}: unknown field {key!r}.{did_you_mean(str(key), names)}")
        kwargs[key] = _coerce(value, hints[key], f"{where}.{key}")
    return cls(**kwargs)


def to_dict(cfg: Any) -> dict[str, Any]:
    """A config dataclass as plain dicts (a tracked config records that all of it was read)."""
    from .reads import read_all

    return dataclasses.asdict(read_all(cfg))


def parse_value(text: str) -> Any:
    """Parse the right-hand side of ``key=value`` as a YAML scalar or list (safely)."""
    import yaml

    try:
        return yaml.safe_load(text) if text != "" else ""
    except yaml.YAMLError:
        return text


def apply_overrides(cfg: RunConfig, overrides: list[str]) -> RunConfig:
    """Apply ``key=value`` overrides (dotted keys: ``probe.lr=3e-4``, ``logconf.alpha_max=0.75``)."""
    from .methods import METHODS

    data = to_dict(cfg)
    for item in overrides:
        if "=" not in item:
            raise W2SError(f"--set {item!r}: expected key=value, e.g. --set probe.lr=3e-4")
        key, _, raw = item.partition("=")
        parts = key.strip().split(".")
        value = parse_value(raw)
        if parts[0] in METHODS and parts[0] not in data:
            if len(parts) != 2:
                raise W2SError(f"--set {item!r}: method settings are METHOD.FIELD=value")
            data["method_args"].setdefault(parts[0], {})[parts[1]] = value
            continue
        node = data
        for p in parts[:-1]:
            if p not in node or not isinstance(node[p], dict):
                raise W2SError(f"--set {item!r}: unknown section {p!r}.{did_you_mean(p, [k for k, v in node.items() if isinstance(v, dict)] + METHODS.names())}")
            node = node[p]
        if parts[-1] not in node:
            raise W2SError(f"--set {item!r}: unknown field {parts[-1]!r}.{did_you_mean(parts[-1], node)}")
        node[parts[-1]] = value
    return from_dict(RunConfig, data)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping safely (no python tags); errors name the file and line."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise W2SError(f"{path}: cannot read ({e.strerror})") from None
    except UnicodeDecodeError:
        raise W2SError(f"{path}: not UTF-8 text; save it as UTF-8 YAML") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise W2SError(f"{path}{line}: invalid YAML: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise W2SError(f"{path}: expected a mapping of config fields at the top level")
    return data


def load_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    cfg = from_dict(RunConfig, load_yaml(path), where=str(path))
    return apply_overrides(cfg, overrides or [])
