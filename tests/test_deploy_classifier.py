"""A classifier trained in torch keeps its accuracy after Loihi 2 quantisation, on sim and lava-fixed."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from spikes.deploy.classify import predict
from spikes.deploy.digits_task import digits_split, encode
from spikes.graph import capture
from spikes.deploy.network import lower
from spikes.deploy.quantize import quantize
from spikes.layers import TimeDistributed
from spikes.neurons import LIF


def _train_torch_classifier():
    xtr, ytr, xte, yte = digits_split()
    model = nn.Sequential(TimeDistributed(nn.Linear(64, 48, bias=False)), LIF(alpha=0.9, reset="zero"),
                          TimeDistributed(nn.Linear(48, 10, bias=False)), LIF(alpha=0.9, reset="zero"))
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    for epoch in range(3):
        xe = torch.as_tensor(encode(xtr, seed=epoch))
        for i in range(0, len(ytr), 50):
            loss = nn.functional.cross_entropy(model(xe[:, i:i + 50]).sum(0), torch.as_tensor(ytr[i:i + 50]))
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model, encode(xte, seed=99), yte


@pytest.mark.slow
def test_quantised_classifier_keeps_accuracy_on_sim_and_lava_fixed():
    torch.set_num_threads(2)
    model, x, y = _train_torch_classifier()
    with torch.no_grad():
        acc_torch = float((model(torch.as_tensor(x)).sum(0).argmax(1).numpy() == y).mean())
    assert acc_torch > 0.8                                    # the task was learnt
    graph = capture(model, (64,))
    q = quantize(lower(graph))
    pred_sim = predict(q, x, "sim")
    acc_sim = float((pred_sim == y).mean())
    assert abs(acc_sim - acc_torch) <= 0.01, (acc_torch, acc_sim)
    # lava-fixed on the first 4 test samples (one Lava run): the same predictions as sim
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pred_lava = predict(q, x[:, :4], "lava-fixed")
    assert np.array_equal(pred_lava, pred_sim[:4])
