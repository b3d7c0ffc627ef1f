"""Direct feedback alignment (Nøkland 2016; spiking: Frenkel et al. 2021, Yen et al. 2025; ``--rule dfa``).

The last synaptic layer (in module order) is the output layer; the error at its output, ``e = dL/dy_L`` (rows =
(time step, sample) for a sequence; for a spiking output layer this is the gradient at its output current, with the
output neurons' surrogate derivative and the readout inside), is sent straight to every other synaptic layer's
output through a fixed random matrix ``D_l (n_out, F_l)``: ``dL/dy_l := e . D_l``
(:class:`spikes.layers.feedback.DirectFeedback`). ``y_l`` is the layer's output **current** (before its neurons): no
surrogate derivative of the hidden layer's own neurons multiplies the signal, so ``dL/dW_l = (e D_l)^T x_l`` with
``x_l`` the layer's input spikes. ``D_l ~ U(-s, s)``, ``s = feedback_scale / sqrt(n_out)``, drawn when the layer's
output size is first seen and saved in checkpoints. The output layer learns by its true gradient."""
from __future__ import annotations

import math

import torch

from spikes.layers.feedback import DirectFeedback, synaptic_layers
from spikes.learning.alignment import AlignmentRule
from spikes.learning.rule import register_rule


@register_rule
class DirectFeedbackAlignment(AlignmentRule):
    """Direct feedback alignment: the output error sent to each layer's output current through a fixed matrix."""

    name = "dfa"
    measures_alignment = False           # D_l is not W-shaped: only the gradient angle is logged
    recurrent_feedback = False           # a recurrent matrix backpropagates through time

    def initial_feedback(self, index, name, module):
        return None                      # drawn at the first forward (the size of a conv output is known then)

    def install(self):
        index = {name: i for i, (name, _) in enumerate(self.layers)}
        weights = {name: m.weight for name, m in self.layers}

        def make(name: str, n_out: int, features: int) -> torch.Tensor:
            g = self.layer_generator(index[name])
            bound = self.options.feedback_scale / math.sqrt(n_out)
            d = (torch.rand((n_out, features), generator=g, dtype=torch.float64) * 2 - 1) * bound
            return d.to(dtype=weights[name].dtype, device=weights[name].device)

        return DirectFeedback(self.layers, self.feedback, make)

    def check(self, model, objective) -> None:
        super().check(model, objective)
        names = [n for n, _ in synaptic_layers(model, recurrent=False)]
        if len(names) < 2:
            raise ValueError(f"rule 'dfa' needs at least two synaptic layers (an output and a hidden one); "
                             f"{type(model).__name__} has {names}")
