"""What each framework is, in one place, without importing it.

One `Framework` record per framework: where its code lives, what must import for it to
count as installed, its pip extra, its modes and default modes, the environment
variables that size its thread pools and place it on a device, and what the graph study
tries on it. The adapter registry, the harness (matrix, thread and device settings), the
graph study, the studies, nox and the tests read these records; each framework's own
code is in `impls/<name>/`, with the same file names in each folder.

This module imports nothing but the standard library, so that `noxfile.py` can load it
from its path in an environment that has none of the project's dependencies.

Adding a framework: a folder `impls/<name>/` with the same files as the others, a record
in FRAMEWORKS below, and an extra `[<name>]` in pyproject.toml.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Framework:
    name: str                     # key in flags, results, nox sessions ("tf")
    title: str                    # how reports name it ("TensorFlow (Keras 3)")
    requires: tuple[str, ...]     # modules that must import for it to count as installed
    extra: str                    # its pip extra: pip install 'fwbench[<extra>]'
    # modes its adapter offers; the harness expands its matrix from these
    modes: tuple[str, ...]
    default_mode: str             # how its users train without asking for more
    study_mode: str               # the mode the course studies train in (see below)
    # environment variables that cap its own thread pools at n threads (beside the ones
    # every process gets, bench.threads.COMMON_THREAD_VARIABLES); "{n}" is replaced
    thread_env: tuple[tuple[str, str], ...] = ()
    # environment for a process on a GPU, read at start-up
    gpu_env: tuple[tuple[str, str], ...] = ()
    # environment for a process kept off any GPU
    cpu_env: tuple[tuple[str, str], ...] = ()
    # graph study, retracing part: (mode, setting, what the step is wrapped in); "default"
    # is what a user gets without asking, the others the framework's remedies
    retrace_settings: tuple[tuple[str, str, str], ...] = ()
    # graph study, control-flow part: the adapter's modes, then other ways to get a graph
    # that students meet
    control_flow_modes: tuple[str, ...] = ()
    # how its code expresses a model and its training, for the report's side-by-side
    # section: (aspect, how). Every `name` in backticks is in impls/<name>/ (a test checks).
    concepts: tuple[tuple[str, str], ...] = ()
    # variables naming the folders of its persistent compile caches, read when it
    # compiles: a cell whose compile time is reported gets empty ones (a cold start)
    compile_cache_env: tuple[str, ...] = ()
    # modules its fork server (bench.forkserver) imports beside the adapter: ones every
    # process of it imports anyway, so that each cell need not
    preload: tuple[str, ...] = ()
    # what its fork server also makes for processes that compile (a Job with compiles):
    # modules ("module") those processes import anyway, counted in import_s, and probes of
    # the machine ("module:function") that the framework caches in memory for the life of
    # a process and that each would otherwise repeat before its first compiled kernel,
    # timed apart (the cell's preload_calls_s), never in a compile figure. Eager processes
    # get a server without them: nothing they would not load sits in their memory.
    compile_preload: tuple[str, ...] = ()

    @property
    def package(self) -> str:
        """Where its code lives: `impls.<name>` (adapter.py, models.py, ...)."""
        return f"impls.{self.name}"


FRAMEWORKS: dict[str, Framework] = {f.name: f for f in (
    Framework(
        name="tf", title="TensorFlow (Keras 3)", requires=("tensorflow", "keras"), extra="tf",
        modes=("eager", "compiled", "xla"),  # plain eager, tf.function, tf.function(jit_compile)
        default_mode="eager",
        # tf.function compiles once per model in well under a second
        study_mode="compiled",
        # TensorFlow reads its two pools' sizes once, at start-up
        thread_env=(("TF_NUM_INTRAOP_THREADS", "{n}"), ("TF_NUM_INTEROP_THREADS", "{n}")),
        gpu_env=(("TF_FORCE_GPU_ALLOW_GROWTH", "true"),),  # TF takes all of it at start else
        retrace_settings=(
            ("compiled", "default", "tf.function(step)"),
            ("compiled", "reduce_retracing", "tf.function(step, reduce_retracing=True)"),
            ("compiled", "input_signature",
             "tf.function(step, input_signature=[TensorSpec((None, None, F)), TensorSpec((None,))])"),
            ("xla", "default", "tf.function(step, jit_compile=True)"),
            ("xla", "input_signature", "tf.function(step, jit_compile=True, input_signature=...)")),
        control_flow_modes=("eager", "compiled", "xla", "compiled (autograph=False)"),
        concepts=(
            ("parameters", "objects with state: Keras layers create and own their variables "
                           "(`keras.layers`, `trainable_variables`)"),
            ("gradients", "recorded: `tf.GradientTape` watches the forward pass, "
                          "`tape.gradient` replays it backwards"),
            ("update", "in place: `apply_gradients` assigns each variable"),
            ("graphs", "`tf.function` traces the Python step into a graph (AutoGraph turns "
                       "Python control flow into graph ops); `jit_compile=True` hands it to XLA"),
            ("devices", "a scope: `tf.device` places what is created inside it"),
            ("randomness", "a global seed and per-layer seeds; fwbench sets every weight "
                           "from the canonical NumPy draw instead"),
        ),
    ),
    Framework(
        name="torch", title="PyTorch", requires=("torch",), extra="torch",
        modes=("eager", "compiled"),  # plain eager, torch.compile
        default_mode="eager",
        # torch.compile takes 6-28 s per new model on 2 cores (measured) against 1-2 s of
        # training per Genz item, and eager is how PyTorch trains by default
        study_mode="eager",
        # torch's intra-op pool follows OMP_NUM_THREADS (a common variable)
        retrace_settings=(
            ("compiled", "default", "torch.compile(module) (automatic dynamic shapes)"),
            ("compiled", "dynamic", "torch.compile(module, dynamic=True)"),
            ("compiled", "mark_dynamic", "torch.compile(module); torch._dynamo.mark_dynamic(x, 1)")),
        control_flow_modes=("eager", "compiled", "compiled (fullgraph=True)", "jit.trace"),
        concepts=(
            ("parameters", "objects with state: an `nn.Module` owns its parameters "
                           "(`parameters()`)"),
            ("gradients", "recorded: autograd builds the graph as the forward pass runs; "
                          "`backward()` fills each parameter's `.grad`, `zero_grad` clears it"),
            ("update", "in place: the `torch.optim` optimizer's `step` changes the parameters"),
            ("graphs", "eager by default; `torch.compile` captures the Python bytecode "
                       "(TorchDynamo), compiles what it can and falls back to Python at "
                       "graph breaks"),
            ("devices", "an argument: tensors are made with `device=`, modules moved with "
                        "their to() method"),
            ("randomness", "a global generator (torch.manual_seed); fwbench sets every "
                           "weight from the canonical NumPy draw instead"),
        ),
        # Inductor keeps generated code and compiled kernels across processes (on by
        # default): a hit cut the MLP's first compiled step from 35 to 6 s here
        compile_cache_env=("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR"),
        # torch.optim's Optimizer imports TorchDynamo when it is made, eager or not: 2 s
        # of every torch process's model build here
        preload=("torch._dynamo",),
        # torch.compile() imports Inductor (2.2 s here, 45 MiB). Inductor's first C++ kernel
        # in a process asks which vector instructions (AVX2, AVX-512, AMX) the compiler
        # and CPU support, by building and loading a test library per ISA: 16-19 s with an
        # empty cache, 3-5 s with a warm one, on this 2-core VM. That is the machine's, not
        # the model's, and was most of a cold-cache cell's compile (the MLP's first
        # compiled step: 30 s with it, 12 s without)
        compile_preload=("torch._inductor.compile_fx",
                         "torch._inductor.cpu_vec_isa:valid_vec_isa_list"),
    ),
    Framework(
        name="jax", title="JAX (Flax + Optax)", requires=("jax", "flax", "optax"), extra="jax",
        modes=("eager", "compiled"),  # op by op (jax.disable_jit), jax.jit
        # JAX code trains under jax.jit; op by op is the exception
        default_mode="compiled",
        study_mode="compiled",
        # XLA:CPU's pools are sized by XLA_FLAGS, which TensorFlow's jit_compile reads too;
        # bench.threads builds it for every process
        gpu_env=(("XLA_PYTHON_CLIENT_PREALLOCATE", "false"),),  # JAX takes 75% of it else
        cpu_env=(("JAX_PLATFORMS", "cpu"),),
        retrace_settings=(
            ("compiled", "default", "jax.jit(step)"),
            ("compiled", "buckets", "jax.jit(step); batches padded to the next power of two "
             "with a mask (attention: keys and the mean over time; recurrent models: "
             "nn.RNN seq_lengths)")),
        control_flow_modes=("eager", "compiled"),
        concepts=(
            ("parameters", "values, not state: a Flax `nn.Module` describes the computation "
                           "and `init` returns its parameters as a pytree of arrays that "
                           "every call takes (`apply`)"),
            ("gradients", "a function transformation: `jax.value_and_grad` of the loss as a "
                          "function of the parameters"),
            ("update", "functional: Optax's `tx.update` returns updates and "
                       "`optax.apply_updates` returns new parameters"),
            ("graphs", "`jax.jit` traces the pure step once per input shape and compiles it "
                       "with XLA; `donate_argnums` lets it reuse the old parameters' buffers"),
            ("devices", "explicit: `jax.device_put` places arrays"),
            ("randomness", "explicit keys (`jax.random.key`) passed to whatever draws; "
                           "fwbench sets every weight from the canonical NumPy draw instead"),
        ),
    ),
)}
NAMES: tuple[str, ...] = tuple(FRAMEWORKS)


class UnknownFramework(ValueError):
    """A framework name that is not in FRAMEWORKS."""


def get(name: str) -> Framework:
    """The framework called `name`; UnknownFramework naming the known ones otherwise."""
    if name not in FRAMEWORKS:
        raise UnknownFramework(f"unknown framework {name!r}: known frameworks are "
                               f"{', '.join(NAMES)}")
    return FRAMEWORKS[name]
