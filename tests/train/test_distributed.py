"""Finetuning under 2 CPU processes (torchrun, gloo) matches one process: losses, probabilities, metrics,
also after a crash and a resume from a checkpoint; ``accelerate launch`` of the CLI writes one run.

The training set (45) and the evaluation sets (21, 7) are not divisible by the world size, and a
micro-batch of 1 leaves one rank with an empty shard every micro-batch.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import build_tiny_model, toy_texts

pytestmark = pytest.mark.integration

WORKER = textwrap.dedent('''
    """Run the cases of test_distributed in this process (one of several under torchrun) and save them."""
    import sys

    import numpy as np

    sys.path[:0] = [sys.argv[1], sys.argv[1] + "/.."]  # tests/train, tests (conftest)
    from test_distributed import CASES, run_case

    from w2sgen.train.distributed import rank

    out = {}
    for name in CASES:
        res = run_case(name, sys.argv[2])
        out[f"{name}/losses"] = np.array(res.losses)
        for k, v in res.probs.items():
            out[f"{name}/probs/{k}"] = v
        out[f"{name}/world"] = np.array(res.info["world_size"])
        out[f"{name}/tokens"] = np.array(res.info["tokens"])

    def crash(step):  # both processes stop after step 5 (a checkpoint was written at step 3)
        if step == 5:
            raise KeyboardInterrupt

    try:
        run_case("bert-full", sys.argv[2], checkpoint_dir=f"{sys.argv[3]}/ck", checkpoint_every=3, on_step=crash)
    except KeyboardInterrupt:
        pass
    res = run_case("bert-full", sys.argv[2], checkpoint_dir=f"{sys.argv[3]}/ck", checkpoint_every=3)
    out["resume/losses"] = np.array(res.losses)
    out["resume/probs/test"] = res.probs["test"]
    out["resume/from"] = np.array(res.info.get("resumed_from_step", -1))
    np.savez(f"{sys.argv[3]}/rank{rank()}.npz", **out)
    from w2sgen.train.distributed import shutdown

    shutdown()
''')

# name -> (family, FinetuneConfig kwargs)
CASES = {
    "bert-full": ("bert", dict(lr=3e-3, epochs=2, batch_size=8, micro_batch_size=3, eval_batch_size=4)),
    "llama-lora-micro1": ("llama", dict(lr=3e-3, max_steps=4, batch_size=5, micro_batch_size=1, lora=True,
                                        lora_rank=4, eval_batch_size=5)),
}


toy = toy_texts


def run_case(name: str, models: str, checkpoint_dir: str | None = None, checkpoint_every: int | None = None,
             on_step=None):
    """Finetune case ``name`` on the tiny model under ``models``/<family> (a batch-level loss: logconf)."""
    from w2sgen.config import FinetuneConfig
    from w2sgen.models.registry import resolve_model
    from w2sgen.train.finetune import finetune
    from w2sgen.train.losses import logconf

    family, kw = CASES[name]
    tr_x, tr_y = toy(45, 0)
    te_x, _ = toy(21, 1)
    target = np.eye(2, dtype=np.float32)[tr_y] * 0.8 + 0.1

    def loss(lg, t, s, T, window=None):
        return logconf(lg, t, alpha=0.5, window=window)

    loss.needs_window = True

    return finetune(resolve_model(f"{models}/{family}"), tr_x, target, loss,
                    FinetuneConfig(**kw, checkpoint_every=checkpoint_every), seed=0,
                    num_classes=2, pooling="mean" if family == "bert" else "last", layer=-1,
                    eval_sets={"test": te_x, "val": te_x[:7]}, checkpoint_dir=checkpoint_dir, on_step=on_step)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_match_one(tmp_path):
    from w2sgen import metrics

    models = tmp_path / "models"
    for family in {f for f, _ in CASES.values()}:
        build_tiny_model(models / family, family)
    (tmp_path / "worker.py").write_text(WORKER)
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT")}
    env.update(HF_HUB_OFFLINE="1", W2S_PROGRESS="0", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(free_port()), str(tmp_path / "worker.py"), os.path.dirname(__file__), str(models),
           str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    ranks = [dict(np.load(tmp_path / f"rank{r}.npz")) for r in range(2)]
    for name in CASES:
        one = run_case(name, str(models))
        assert one.info["world_size"] == 1
        for got in ranks:
            assert int(got[f"{name}/world"]) == 2
            assert int(got[f"{name}/tokens"]) == one.info["tokens"]
            np.testing.assert_allclose(got[f"{name}/losses"], one.losses, rtol=0, atol=1e-4, err_msg=name)
            for split in ("test", "val"):
                p2 = got[f"{name}/probs/{split}"]
                assert p2.shape == one.probs[split].shape  # no duplicated or dropped examples
                np.testing.assert_allclose(p2, one.probs[split], rtol=0, atol=1e-4, err_msg=f"{name}/{split}")
        y = (np.arange(21) % 2)
        m1 = metrics.summarize(y, one.probs["test"])
        m2 = metrics.summarize(y, ranks[0][f"{name}/probs/test"])
        assert m1["acc"] == m2["acc"] and abs(m1["auroc"] - m2["auroc"]) < 1e-6
        if name == "bert-full":  # a 2-process run stopped after step 5 resumed from its step-3 checkpoint
            for got in ranks:
                assert int(got["resume/from"]) == 3
                np.testing.assert_allclose(got["resume/losses"], one.losses, rtol=0, atol=1e-4)
                np.testing.assert_allclose(got["resume/probs/test"], one.probs["test"], rtol=0, atol=1e-4)


def test_cli_under_accelerate_launch_matches_one_process(tmp_path):
    """``accelerate launch --multi_gpu --num_processes 2 -m w2sgen.cli run --mode finetune`` on CPU
    (no GPU here: --multi_gpu selects accelerate's torchrun launcher; the processes use gloo):
    rank 0 alone writes the run folder and the stage cache, with the predictions of one process."""
    import pandas as pd
    from conftest import write_toy_task

    import w2sgen
    from w2sgen.config import FinetuneConfig, RunConfig, SplitConfig

    build_tiny_model(tmp_path / "weak", "bert", 0)
    build_tiny_model(tmp_path / "strong", "llama", 1)
    task = write_toy_task(tmp_path / "toy.jsonl", 120)
    ft = dict(max_steps=3, batch_size=8, micro_batch_size=3, checkpoint_every=2)
    sp = dict(n_weak_train=21, n_transfer=35, n_val=9, n_test=31, min_val=9, min_test=31)
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT")}
    env.update(HF_HUB_OFFLINE="1", W2S_PROGRESS="0", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false",
               W2S_CACHE_DIR=str(tmp_path / "cache2"))
    accelerate = os.path.join(os.path.dirname(sys.executable), "accelerate")
    cmd = [accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port()),
           "-m", "w2sgen.cli", "run", "--mode", "finetune", "--task", str(task), "--weak", str(tmp_path / "weak"),
           "--strong", str(tmp_path / "strong"), "--methods", "xent,logconf", "--out", str(tmp_path / "out2"),
           *[f"--set=finetune.{k}={v}" for k, v in ft.items()], *[f"--set=splits.{k}={v}" for k, v in sp.items()]]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    assert proc.stdout.count("PGR [95%]") == 1  # one table: rank 0 prints

    one = w2sgen.run(RunConfig(task=str(task), weak=str(tmp_path / "weak"), strong=str(tmp_path / "strong"),
                               methods=["xent", "logconf"], mode="finetune", out=str(tmp_path / "out1"),
                               finetune=FinetuneConfig(**ft), splits=SplitConfig(**sp)),
                     cache_dir=tmp_path / "cache1")
    d1 = Path(one.runs[0]["_dir"])
    runs2 = list((tmp_path / "out2").glob("*/run.json"))
    assert len(runs2) == 1
    d2 = runs2[0].parent
    assert not list((tmp_path / "out2").glob(".*"))  # no temporary folders left behind
    rec = json.loads(runs2[0].read_text())
    assert rec["stages"]["ceiling"]["train"]["world_size"] == 2
    for stage in ("floor", "ceiling", "student"):  # checkpoints were deleted once the entries existed
        assert not any((tmp_path / "cache2" / "checkpoints" / stage).glob("*"))
    files1 = sorted(p.relative_to(d1) for p in d1.rglob("*.parquet"))
    assert files1 == sorted(p.relative_to(d2) for p in d2.rglob("*.parquet"))
    for f in files1:
        a, b = pd.read_parquet(d1 / f), pd.read_parquet(d2 / f)
        assert a.shape == b.shape and list(a.columns) == list(b.columns)
        num = a.select_dtypes("number").columns
        np.testing.assert_allclose(b[num].to_numpy(), a[num].to_numpy(), rtol=0, atol=1e-4, err_msg=str(f))
