"""The end-to-end demo job: train the flagship models, deploy them, compare their sparsity in one report."""
