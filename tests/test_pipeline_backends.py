"""Deploying a classifier for the comparison: chip-side synops and firing rates against independent counts."""
import numpy as np
import pytest
import torch

from spikes.metrics import SpikeProbe
from spikes.models.classifiers import build_classifier
from spikes.pipeline.backends import deploy_classifier


def _model_and_data(seed=0):
    torch.manual_seed(seed)
    model = build_classifier("conv_snn", (2, 8, 8), 3, width=2, neuron="plif", gain=12.0).eval()
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(6, 5, 2, 8, 8, generator=g) < 0.3).float()    # (T, B, C, H, W) spikes
    y = np.array([0, 1, 2, 0, 1])
    return model, x, y


def test_sim_rows_match_the_torch_probe_and_hand_counts():
    model, x, y = _model_and_data()
    res = deploy_classifier(model, x.numpy(), y, backends=("sim",), progress=False)["sim"]
    assert res.samples == 5 and [r["layer"] for r in res.per_layer] == ["features.1", "features.4", "output"]
    with torch.no_grad(), SpikeProbe(model) as probe:
        out = model(x)
    torch_rows = {r["layer"]: r for r in probe.summary_rows()}
    first = res.per_layer[0]
    # input -> conv1 projection: every input event reaches C_out * (kernel taps inside the image) synapses;
    # the probe computes the same count independently (autograd of a unit-weight conv) -> equal
    assert first["synops"] == pytest.approx(torch_rows["features.0"]["synops"])
    assert (first["neurons"], first["steps"]) == (2 * 8 * 8, 6)
    # the first population sees the same input current as torch up to weight quantisation: rates agree closely
    assert first["firing_rate"] == pytest.approx(torch_rows["features.1"]["firing_rate"], abs=0.05)
    # accuracy is argmax of the output population's spike counts
    assert 0.0 <= res.metric <= 1.0
    assert out.shape == (5, 3)


def test_fan_out_of_all_ones_input_is_hand_computed():
    model, x, y = _model_and_data()
    ones = torch.ones(1, 1, 2, 8, 8)
    res = deploy_classifier(model, ones.numpy(), np.array([0]), backends=("sim",), progress=False)["sim"]
    # 128 input events; each reaches 2 output channels x (taps inside the image); per axis the 8 positions
    # reach 2,3,3,3,3,3,3,2 = 22 output positions, so 22*22 per input channel, x 2 in x 2 out channels.
    assert res.per_layer[0]["synops"] == pytest.approx(2 * 22 * 22 * 2)
    # pool -> flatten -> Linear(16 -> 3) fold into one projection: each features.4 spike reaches the 3 outputs
    model, x, y = _model_and_data()
    rows = deploy_classifier(model, x.numpy(), y, backends=("sim",), progress=False)["sim"].per_layer
    spikes4 = rows[1]["firing_rate"] * rows[1]["neurons"] * rows[1]["steps"]
    assert spikes4 > 0 and rows[2]["synops"] == pytest.approx(3 * spikes4)


@pytest.mark.lava
@pytest.mark.slow
def test_lava_fixed_rows_equal_sim_rows():
    pytest.importorskip("lava")
    model, x, y = _model_and_data(1)
    res = deploy_classifier(model, x[:, :2].numpy(), y[:2], backends=("sim", "lava-fixed"), progress=False)
    assert res["sim"].per_layer == res["lava-fixed"].per_layer        # sim is bit-exact with lava-fixed
    assert res["sim"].metric == res["lava-fixed"].metric
    assert any(r["firing_rate"] > 0 for r in res["sim"].per_layer)


def test_layer_rows_of_a_recurrent_network_with_a_graded_readout_by_hand():
    from spikes.graph import capture
    from spikes.deploy.network import lower
    from spikes.models.rsnn import RSNN, RSNNConfig
    from spikes.pipeline.backends import layer_rows

    net = lower(capture(RSNN(RSNNConfig(n_in=5, n_rec=4, n_out=3, n_adaptive=2)), (5,)))
    x = np.zeros((3, 2, 5))
    x[0, 0, :2] = 1          # 2 input events in sample 0, 1 in sample 1
    x[2, 1, 4] = 1
    z = np.zeros((3, 2, 4))
    z[1, 0, 0] = z[2, 0, 3] = z[2, 1, 1] = 1     # 3 recurrent spikes
    values = np.zeros((3, 2, 3))
    values[1:, :, 0] = 0.5
    rec, readout = layer_rows(net, {"rec": z}, x, {"rec": "layer0"}, {"readout": values})
    # per sample: (3 input events x 4 + 3 spikes x 4 recurrent rows) / 2; readout: 3 spikes x 3 / 2
    assert rec == {"layer": "layer0", "firing_rate": 3 / 24, "density": 3 / 24, "synops": 12.0, "neurons": 4,
                   "steps": 3}
    assert readout == {"layer": "readout", "firing_rate": None, "density": None, "synops": 4.5, "neurons": 3,
                       "steps": 3}
