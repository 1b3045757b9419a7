"""neural-tangents side of ``bench_ntk_peer.py``; runs in the peer environment (JAX).

    python _ntk_peer_nt.py SPEC_JSON IMPLEMENTATION

SPEC_JSON describes the model (``kind`` mlp, cnn or resnet, as in ``bench_ntk_peer.py``)
and names ``x`` (an .npy of inputs, already NHWC), ``weights`` (an .npz of the PyTorch
model's parameters in stax layout and order: arr_0, arr_1, ...) and ``kernel_out``. The
kernel is computed with the same weights and inputs as the acthash side, once to compile
(first call) and then warm, one thread. Prints one JSON line.
"""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false "
                      "intra_op_parallelism_threads=1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import neural_tangents as nt  # noqa: E402
import numpy as np  # noqa: E402
from neural_tangents import stax  # noqa: E402


def act(name):
    return {"relu": stax.Relu(), "leaky_relu": stax.LeakyRelu(0.01)}[name]


def dense(n):
    # "standard": y = x W + b exactly as torch's Linear (b_std=None would drop the bias)
    return stax.Dense(n, b_std=1.0, parameterization="standard")


def conv(c):
    return stax.Conv(c, (3, 3), padding="SAME", b_std=1.0, parameterization="standard")


def build(spec):
    """The stax twin of the PyTorch model of the same spec."""
    if spec["kind"] == "mlp":
        layers = [layer for w in spec["widths"] for layer in (dense(w), act(spec["act"]))]
        return stax.serial(*layers, dense(1)), (-1, spec["in"])
    shape = (-1, spec["hw"], spec["hw"], spec["c_in"])
    if spec["kind"] == "cnn":
        layers = [layer for c in spec["channels"] for layer in (conv(c), act(spec["act"]))]
        return stax.serial(*layers, stax.Flatten(), dense(1)), shape
    if spec["kind"] == "resnet":
        c = spec["channels"]
        branch = stax.serial(conv(c), act(spec["act"]), conv(c))
        return stax.serial(conv(c), act(spec["act"]), stax.FanOut(2),
                           stax.parallel(branch, stax.Identity()), stax.FanInSum(),
                           act(spec["act"]), stax.Flatten(), dense(1)), shape
    raise SystemExit(f"unknown kind {spec['kind']!r}: use mlp, cnn or resnet")


def main():
    spec = json.loads(sys.argv[1])
    impl = int(sys.argv[2])
    (init_fn, apply_fn, _), shape = build(spec)
    _, params = init_fn(jax.random.PRNGKey(0), shape)
    leaves, tree = jax.tree_util.tree_flatten(params)
    saved = np.load(spec["weights"])
    arrays = [saved[f"arr_{i}"] for i in range(len(saved.files))]
    if [leaf.size for leaf in leaves] != [a.size for a in arrays]:
        raise SystemExit("the stax model's parameters do not match the PyTorch model's")
    params = jax.tree_util.tree_unflatten(
        tree, [jnp.asarray(a.reshape(leaf.shape)) for a, leaf in zip(arrays, leaves, strict=True)])
    x = jnp.asarray(np.load(spec["x"]))
    fn = jax.jit(nt.empirical_ntk_fn(apply_fn, trace_axes=(), vmap_axes=0,
                                     implementation=impl))
    t = time.perf_counter()
    g = fn(x, None, params).block_until_ready()
    first = time.perf_counter() - t
    warm, start = [], time.perf_counter()
    while len(warm) < spec.get("repeat", 3) and (not warm or time.perf_counter() - start < 20):
        t = time.perf_counter()
        g = fn(x, None, params).block_until_ready()
        warm.append(time.perf_counter() - t)
    g = np.asarray(g).reshape(x.shape[0], x.shape[0])
    if spec.get("kernel_out"):
        np.save(spec["kernel_out"], g)
    print(json.dumps({"implementation": impl, "first_s": first, "warm_s": min(warm),
                      "runs": len(warm), "jax": jax.__version__,
                      "nt": getattr(nt, "__version__", "?")}))


if __name__ == "__main__":
    main()
