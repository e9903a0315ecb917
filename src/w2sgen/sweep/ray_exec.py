"""The Ray executor: each sweep run is one Ray task, on a local Ray or on a cluster.

Each task declares what it needs (``num_gpus=1`` when the cluster has GPUs, else ``num_cpus=1``)
and calls ``api.run(..., index=False)``: workers write run folders and stage-cache entries (atomic
renames and file locks, as with the local executor) but never ``OUT/runs.sqlite`` — SQLite locking
is unsafe on network filesystems — so the driver indexes each folder as its task returns and syncs
the index at the end. Every run.json records where it ran (``"executor"``: kind ray, pid, node id,
worker id).

On a cluster, the results directory and the stage cache must be one shared filesystem seen at the
same path by the driver and every node (``--out`` and ``--cache-dir`` / ``W2S_CACHE_DIR``), and
every node needs w2sgen installed. Ray is imported only here, only when used.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from ..config import RunConfig, to_dict
from ..errors import W2SError
from .local import MethodFiles, SweepResult, load_method_files, raise_failures, reporter, sync_outs
from .progress import SweepProgress, Tracker

log = logging.getLogger("w2sgen")

ENV_PASSED = ("HF_HUB_OFFLINE", "HF_HOME", "TRANSFORMERS_OFFLINE", "TOKENIZERS_PARALLELISM", "W2S_CACHE_DIR",
              "W2S_MODELS_DIR", "W2S_DATA_DIR", "W2S_PROGRESS")
"""Environment variables handed to the workers (runtime_env), when set in the driver."""


def import_ray() -> Any:
    """``import ray``, or a W2SError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise W2SError("--executor ray: Ray is not installed; install it with pip install 'w2sgen[ray]' "
                       "(or use --executor local --workers N)") from None
    return ray


def _ray_task(cfg_dict: dict[str, Any], cache_dir: str | None, verbose: bool, cwd: str,
              method_files: MethodFiles = ()) -> dict[str, Any]:
    """One run, inside a Ray worker: ``api.run`` without indexing; errors come back as text.
    ``method_files`` are loaded (registered) first, each with the content the driver loaded.

    The worker moves to the driver's directory (when it exists there) so that relative paths in the
    config (results, data files, local models) mean what they mean to the driver, names unchanged."""
    import ray

    from .. import api
    from ..config import RunConfig, from_dict
    from ..log import setup_logging

    setup_logging(verbose)
    if os.path.isdir(cwd):
        os.chdir(cwd)
    ctx = ray.get_runtime_context()
    info = {"kind": "ray", "pid": os.getpid(), "node": ctx.get_node_id(), "worker": ctx.get_worker_id()}
    t0 = time.time()
    try:
        load_method_files(method_files)
        res = api.run(from_dict(RunConfig, cfg_dict), cache_dir=cache_dir, index=False, executor_info=info)
    except W2SError as e:
        return {"dir": None, "s": time.time() - t0, "error": str(e), "executor": info}
    return {"dir": res.runs[0]["_dir"], "s": time.time() - t0, "error": None, "executor": info}


def resources(cfg: RunConfig, gpus: float) -> dict[str, float]:
    """What one run's task asks Ray for: a GPU when the cluster has any (both modes run backbones), else a CPU."""
    if gpus > 0 and cfg.mode in ("probe", "finetune"):
        return {"num_gpus": 1, "num_cpus": 1}
    return {"num_cpus": 1}


def _init(ray: Any, address: str | None, num_cpus: int | None, verbose: bool) -> bool:
    """Connect to (``address``) or start a local Ray; False when one was already initialized."""
    if ray.is_initialized():
        return False
    env = {k: os.environ[k] for k in ENV_PASSED if k in os.environ}
    kw: dict[str, Any] = dict(log_to_driver=verbose, runtime_env={"env_vars": env} if env else None)
    try:
        if address:
            ray.init(address=address, **kw)
        else:
            if num_cpus is not None and num_cpus < 1:
                raise W2SError(f"--workers {num_cpus}: give at least 1")
            ray.init(num_cpus=num_cpus, include_dashboard=False, **kw)
    except (ConnectionError, RuntimeError, ValueError) as e:
        where = f"--ray-address {address}" if address else "--executor ray (local Ray)"
        hint = ("start the cluster (`ray start --head`) or check the address" if address
                else "check `ray status`, or pass --ray-address for a running cluster")
        raise W2SError(f"{where}: could not start or connect to Ray: {e}; {hint}") from None
    return True


def run_ray(runs: list[RunConfig], *, cache_dir: str | Path | None, address: str | None = None,
            num_cpus: int | None = None, verbose: bool = False,
            progress: SweepProgress | None = None, method_files: MethodFiles = ()) -> SweepResult:
    """Run every run of a sweep as a Ray task; the driver indexes the results.

    ``address``: a Ray cluster (``auto``, ``ray://host:10001``, ...); none starts a local Ray with
    ``num_cpus`` CPUs (default: all). A Ray started here is shut down at the end. A failed run does
    not stop the others; failures are raised together as one W2SError, as with the local executor.
    ``method_files``: method files the runs name, loaded in each task before its run (their paths
    must be readable at the same place on every node).
    """
    ray = import_ray()
    t0 = time.time()
    cache = str(Path(cache_dir).resolve()) if cache_dir is not None else None
    outs = sorted({Path(c.out) for c in runs})
    result = SweepResult(outs)
    n = len(runs)
    started = _init(ray, address, num_cpus, verbose)
    refs: dict[Any, int] = {}
    try:
        cluster = ray.cluster_resources()
        gpus = float(cluster.get("GPU", 0))
        task = ray.remote(_ray_task)
        if progress is not None:
            per = "GPU" if gpus > 0 else "CPU"
            progress.slots = max(1, min(n, int(cluster.get(per, 1))))
        for out in outs:
            out.mkdir(parents=True, exist_ok=True)
        refs = {task.options(**resources(cfg, gpus)).remote(to_dict(cfg), cache, verbose, os.getcwd(),
                                                            list(method_files)): i
                for i, cfg in enumerate(runs)}
        log.info("sweep: %d runs submitted to Ray (%s)", n,
                 ", ".join(f"{k} {v:g}" for k, v in sorted(cluster.items()) if k in ("CPU", "GPU")))
        with Tracker(progress) as tracker:
            report = reporter(runs, result, tracker)
            tracker.fill()
            pending = list(refs)
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                for ref in ready:
                    i = refs.pop(ref)
                    try:
                        r = ray.get(ref)
                    except Exception as e:  # the task died (worker crash, out of memory, a bug)
                        report(i, None, 0.0, f"{type(e).__name__}: {e}")
                        continue
                    if r["error"] is None:
                        _index(Path(runs[i].out), Path(r["dir"]))
                    report(i, r["dir"], r["s"], r["error"])
        sync_outs(outs)
    finally:
        for ref in refs:  # interrupted: cancel what has not run
            try:
                ray.cancel(ref, force=True)
            except Exception:  # best effort
                pass
        if started:
            ray.shutdown()
    result.wall_s = time.time() - t0
    raise_failures(result, n)
    return result


def _index(out: Path, run_dir: Path) -> None:
    """Index one run folder in ``OUT/runs.sqlite`` (the driver is the only writer)."""
    from ..store.db import index_run

    index_run(out, run_dir)
