"""``w2s benchmark freeze``: fill a suite file's fingerprints and split hashes from the data (for suite authors)."""

from __future__ import annotations

from pathlib import Path

from ..config import load_yaml
from ..errors import W2SError
from .content import load, observe
from .suite import parse_suite


def freeze(path: str | Path, root: str | Path | None = None) -> str:
    """The suite file's YAML with ``fingerprint``, ``examples`` and ``split_ids`` recorded for every task
    that loads here (others keep what they had). Comments are not kept: the content hash ignores them."""
    import yaml

    data = load_yaml(path)
    suite = parse_suite(data, path)
    notes = []
    for raw, t in zip(data["tasks"], suite.tasks):
        try:
            got = observe(t, load(t, root, suite), suite.seeds)
        except W2SError as e:
            notes.append(f"# {t.label}: not loadable here, left as it was: {str(e).splitlines()[0]}")
            continue
        raw.update(fingerprint=got["fingerprint"], examples=got["examples"], split_ids=got["split_ids"])
    frozen = parse_suite(data, path)
    head = [f"# {frozen.title}; content hash {frozen.hash} (w2s benchmark freeze)", *notes]
    return "\n".join(head) + "\n" + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
