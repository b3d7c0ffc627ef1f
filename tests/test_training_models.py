"""Classifier builders: every neuron kind trains end to end; readouts match their definitions."""
from __future__ import annotations

import pytest
import torch

from spikes.models.classifiers import build_classifier
from spikes.neurons import ALIF, IF, LIF, PLIF, CubaLIF

KINDS = {"lif": LIF, "if": IF, "plif": PLIF, "cuba": CubaLIF, "alif": ALIF}


@pytest.mark.parametrize("name", ["conv_snn", "mlp_snn"])
@pytest.mark.parametrize("neuron", sorted(KINDS))
def test_builds_runs_and_has_gradients(name, neuron):
    model = build_classifier(name, (2, 8, 8), 3, width=4, neuron=neuron)
    assert {type(m) for m in model.modules() if isinstance(m, tuple(KINDS.values()))} == {KINDS[neuron]}
    x = (torch.rand(4, 2, 2, 8, 8) < 0.5).float()                        # (T, B, C, H, W)
    logits = model(x)
    assert logits.shape == (2, 3)
    assert torch.all(logits == logits.round()) and logits.min() >= 0 and logits.max() <= 4   # spike counts
    logits.sum().backward()
    first = next(p for p in model.parameters() if p.dim() > 1)
    assert first.grad is not None and first.grad.shape == first.shape


def test_membrane_readout_is_mean_of_head_current():
    model = build_classifier("mlp_snn", (2, 4, 4), 5, width=6, readout="membrane")
    x = (torch.rand(3, 2, 2, 4, 4) < 0.5).float()
    with torch.no_grad():
        current = model.head(model.features(x))                          # (T, B, K)
        assert torch.allclose(model(x), current.sum(0) / 3)
    assert model.output is None


def test_same_seed_same_init_and_clear_errors():
    torch.manual_seed(5)
    a = build_classifier("conv_snn", (2, 8, 8), 3)
    torch.manual_seed(5)
    b = build_classifier("conv_snn", (2, 8, 8), 3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    with pytest.raises(ValueError, match="unknown model 'resnet'"):
        build_classifier("resnet", (2, 8, 8), 3)
    with pytest.raises(ValueError, match="unknown neuron kind 'hh'"):
        build_classifier("mlp_snn", (2, 8, 8), 3, neuron="hh")
    with pytest.raises(ValueError, match=r"needs input \(T, B, C, H, W\)"):
        a(torch.zeros(2, 8, 8))
