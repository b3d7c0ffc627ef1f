"""spikes: train spiking networks on event-camera data, export them to neuromorphic chips, compare sparsity."""
__version__ = "0.1.0"
