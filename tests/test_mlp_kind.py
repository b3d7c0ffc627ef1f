"""The ``mlp`` model kind: a plain ANN on feature vectors, trained by the one trainer with any rule."""
import pytest
import torch

from spikes.cli import main
from spikes.models.mlp import MLP
from spikes.options import ConfigError
from spikes.training.config import resolve_config


def test_forward_is_the_layer_composition():
    torch.manual_seed(0)
    net = MLP(5, 3, width=4, depth=2, activation="tanh")
    x = torch.rand(7, 5, dtype=torch.float64)
    (w1, b1), (w2, b2), (w3, b3) = [(m.weight, m.bias) for m in net if isinstance(m, torch.nn.Linear)]
    by_hand = torch.tanh(torch.tanh(x.float() @ w1.T + b1) @ w2.T + b2) @ w3.T + b3
    assert torch.allclose(net(x), by_hand)
    assert [m.weight.shape for m in net if isinstance(m, torch.nn.Linear)] == [(4, 5), (4, 4), (3, 4)]


def test_bad_options_name_the_key():
    with pytest.raises(ConfigError, match="model.activation"):
        resolve_config(None, {"model": {"kind": "mlp", "activation": "sigmoid"}})
    with pytest.raises(ValueError, match="depth"):
        MLP(5, 3, depth=-1)


@pytest.mark.parametrize("rule", ["bptt", "kp"])
def test_spikes_train_mlp_on_digits(tmp_path, capsys, rule):
    rc = main(["train", "--model", "mlp", "--rule", rule, "--dataset", "digits", "--set", "train.epochs=4",
               "--set", "train.progress=false", "--set", "train.lr=3e-3", "--run-dir", str(tmp_path / "run")])
    assert rc == 0
    out = capsys.readouterr().out
    accuracy = float(out.split("test accuracy ")[1].split()[0])
    assert accuracy > 0.85            # chance is 0.1
    assert "firing rate" not in out   # an ANN has no spiking layer


def test_init_keeps_the_signal_scale():
    torch.manual_seed(0)
    relu, tanh = MLP(400, 10, width=400, depth=1), MLP(400, 10, width=400, depth=1, activation="tanh")
    assert float(relu[0].weight.std()) == pytest.approx((2 / 400) ** 0.5, rel=0.02)            # He
    assert float(tanh[0].weight.std()) == pytest.approx(5 / 3 * (2 / 800) ** 0.5, rel=0.02)    # Glorot, tanh gain
    assert float(relu[0].bias.abs().max()) == 0.0
