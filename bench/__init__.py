"""fwbench: compare TensorFlow, PyTorch and JAX on identical models.

This package is framework-free: importing it imports no framework. Adapters are
loaded on demand by `bench.adapters.get`.
"""

from bench import adapters, canonical, reference, spec

__all__ = ["adapters", "canonical", "reference", "spec"]
__version__ = "0.1.0"
