"""PyTorch adapter: torch.nn layers and torch.optim optimizers.

Nothing here is imported by `bench` at import time; `bench.adapters.get("torch")`
imports `impls.torch.adapter`, which imports torch.
"""
