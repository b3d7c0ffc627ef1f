"""Feedback alignment (Lillicrap et al. 2016; ``--rule fa``): the backward pass sends ``dx = dy . B`` through a fixed
random ``B`` of each synaptic layer's weight shape (Kaiming-uniform, :func:`spikes.layers.feedback.default_feedback`);
the forward weights learn to align with it. Kunin et al.'s regulariser: R = 0."""
from __future__ import annotations

from spikes.learning.alignment import AlignmentRule
from spikes.learning.rule import register_rule


@register_rule
class FeedbackAlignment(AlignmentRule):
    """Feedback alignment: a fixed random feedback matrix per synaptic layer."""

    name = "fa"
