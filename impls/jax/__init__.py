"""JAX adapter: Flax (linen) modules and Optax optimizers.

Nothing here is imported by `bench` at import time; `bench.adapters.get("jax")`
imports `impls.jax.adapter`, which imports jax, flax and optax.
"""
