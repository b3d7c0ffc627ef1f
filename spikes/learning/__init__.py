"""Learning rules beyond backpropagation through time: e-prop (``eprop``), growth-transform (``gt_rule``).

Import from the submodules directly.
"""
