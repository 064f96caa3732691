"""TensorFlow adapter: Keras 3 layers and optimizers on the TensorFlow backend.

Nothing here is imported by `bench` at import time; `bench.adapters.get("tf")`
imports `impls.tf.adapter`, which imports tensorflow and keras.
"""
