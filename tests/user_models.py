"""A user's own model, as someone outside spikes would write it: importable as ``user_models:flat_lif_mlp``
(pytest puts tests/ on sys.path), trained with ``spikes train --model user_models:flat_lif_mlp``."""
from __future__ import annotations

import math

from torch import nn

from spikes.layers import TimeDistributed
from spikes.neurons import LIF


def flat_lif_mlp(input_shape: tuple[int, ...], n_classes: int, hidden: int = 16, gain: float = 3.0) -> nn.Sequential:
    """flatten - Linear - LIF - Linear - LIF; output spikes (T, B, n_classes), whose counts are the class scores."""
    model = nn.Sequential(TimeDistributed(nn.Flatten()), TimeDistributed(nn.Linear(math.prod(input_shape), hidden)),
                          LIF(alpha=0.9, reset="zero"), TimeDistributed(nn.Linear(hidden, n_classes)),
                          LIF(alpha=0.9, reset="zero"))
    for m in model.modules():
        if isinstance(m, nn.Linear):
            m.weight.data.mul_(gain)
    return model
