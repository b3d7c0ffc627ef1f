"""Recurrent spiking network (LIF + ALIF) with a leaky readout, as in e-prop (Bellec et al. 2020).

``RSNN`` is the layer ``spikes.layers.eprop_recurrent.EpropRecurrent`` (equations there; the neuron step is
``spikes.neurons.eprop``) as a model: it adds the deploy graph (``to_graph``); its default rule, e-prop, is
named by its model kind (``spikes.models.registry``). Same constructor, parameter and buffer names as the
layer, so state dicts load either way. ``RSNNConfig``, ``RSNNState``, ``RSNNStep``, ``initial_state`` and
``rsnn_step`` are re-exported from the layer's module.
"""
from __future__ import annotations

from spikes.graph import Affine, EpropNeurons, Graph, Input, Integrator, Output
from spikes.layers.eprop_recurrent import (EpropRecurrent, RSNNConfig, RSNNState, RSNNStep, initial_state,
                                           rsnn_step)

__all__ = ["RSNN", "RSNNConfig", "RSNNState", "RSNNStep", "initial_state", "rsnn_step"]


class RSNN(EpropRecurrent):
    """LIF/ALIF recurrent network with leaky readout; ``forward(x (T, B, n_in)) -> (y (T, B, K), z (T, B, N))``.

    Weights: ``w_in`` (N, n_in) ~ N(0, 1/n_in), ``w_rec`` (N, N) ~ N(0, 1/N) with zero diagonal,
    ``w_out`` (K, N) ~ N(0, 1/N), ``b_out`` (K,) = 0; drawn from ``seed`` (``EpropRecurrent``).
    """

    def to_graph(self, input_shape: tuple[int, ...]) -> Graph:
        """The deploy graph (``spikes.graph.capture`` protocol): ``input -> w_in (Affine) -> rec
        (EpropNeurons, with the recurrent Affine w_rec, zero diagonal) -> w_out (Affine, b_out) -> readout
        (Integrator, alpha = kappa) -> output``. ``Graph.forward`` reproduces :meth:`forward` (spikes of
        ``rec``, readout values of ``readout``)."""
        cfg = self.cfg
        if tuple(input_shape) != (cfg.n_in,):
            raise ValueError(f"RSNN.to_graph: the per-sample input must be ({cfg.n_in},) (n_in), got "
                             f"{tuple(input_shape)}")
        rec = EpropNeurons((cfg.n_rec,), alpha=cfg.alpha, v_th=cfg.v_th, beta=self.betas.detach().double().cpu(),
                           rho=cfg.rho, n_ref=cfg.n_ref)
        nodes = {"input": Input((cfg.n_in,)), "w_in": Affine(self.w_in), "rec": rec,
                 "w_rec": Affine(self.recurrent_weight()), "w_out": Affine(self.w_out, self.b_out),
                 "readout": Integrator((cfg.n_out,), alpha=cfg.kappa), "output": Output((cfg.n_out,))}
        edges = [("input", "w_in"), ("w_in", "rec"), ("rec", "w_rec"), ("w_rec", "rec"), ("rec", "w_out"),
                 ("w_out", "readout"), ("readout", "output")]
        return Graph(nodes, edges)
