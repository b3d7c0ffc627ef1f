"""Custom Lava processes (one module per neuron model): ``gt`` (growth-transform neurons)."""
