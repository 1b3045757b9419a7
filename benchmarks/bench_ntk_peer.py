"""Benchmark: acthash's empirical NTK side by side with neural-tangents, one run.

    python benchmarks/bench_ntk_peer.py [--peer-python PATH] [--models mlp,cnn16] [--quick]

Four models, the same architecture, weights and standard-normal inputs on both sides,
float32, one thread each (``OMP_NUM_THREADS=1``, ``torch.set_num_threads(1)``; XLA with
``--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1``), Gram matrix of the
scalar output over N inputs:

- ``mlp``: Leaky-ReLU MLP 64-205-205-205-1, N = 1 000
- ``cnn16``: conv3x3(32)-ReLU-conv3x3(32)-ReLU-dense(1), 16x16x1 inputs, N = 500
- ``cnn28``: three conv3x3(64)-ReLU, dense(1), 28x28x1 inputs, N = 200
- ``resnet``: conv3x3(32)-ReLU, then a residual block x + conv(ReLU(conv(x))), ReLU,
  dense(1), 16x16x3 inputs, N = 300

"First call" is a method's first kernel in its process (JAX: tracing and XLA compilation
included; acthash: its four methods share one fresh process, ``auto`` first), "warm" the
best of further calls (acthash: up to 7, its methods interleaved round by round;
neural-tangents: up to 3). acthash runs
``auto``, ``structured``, ``jacobian`` and ``loop``; neural-tangents, each implementation in
its own process, its
implementations 1 (Jacobian contraction), 2 (NTK-vector products) and 3 (structured
derivatives) through ``_ntk_peer_nt.py`` in the peer environment (see
``../shared/peers/README.md``; found through ``--peer-python``, ``$ACTHASH_PEER_PYTHON``
or ``../shared-peers-venv`` / ``../peers-venv`` next to the repository). Without it the
acthash side runs alone, with a note. Every kernel is compared with acthash's structured
one (max |G − G_structured| / max |G_structured|), which shows that both sides compute the
same kernel.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

MODELS = {
    "mlp": {"kind": "mlp", "in": 64, "widths": [205, 205, 205], "act": "leaky_relu", "n": 1000},
    "cnn16": {"kind": "cnn", "hw": 16, "c_in": 1, "channels": [32, 32], "act": "relu", "n": 500},
    "cnn28": {"kind": "cnn", "hw": 28, "c_in": 1, "channels": [64, 64, 64], "act": "relu",
              "n": 200},
    "resnet": {"kind": "resnet", "hw": 16, "c_in": 3, "channels": 32, "act": "relu", "n": 300},
}
ACTHASH_METHODS = ("auto", "structured", "jacobian", "loop")
NT_IMPLS = {3: "structured", 1: "jacobian", 2: "ntk-vp"}
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
              "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"}


def build_torch(spec):
    """The PyTorch model of a spec (seeded), NCHW; same layer order as the stax twin."""
    import torch
    from torch import nn

    torch.manual_seed(0)

    def act():
        return nn.LeakyReLU(0.01) if spec["act"] == "leaky_relu" else nn.ReLU()

    if spec["kind"] == "mlp":
        layers, d = [], spec["in"]
        for w in spec["widths"]:
            layers += [nn.Linear(d, w), act()]
            d = w
        return nn.Sequential(*layers, nn.Linear(d, 1))
    hw = spec["hw"]
    if spec["kind"] == "cnn":
        layers, c = [], spec["c_in"]
        for ch in spec["channels"]:
            layers += [nn.Conv2d(c, ch, 3, padding=1), act()]
            c = ch
        return nn.Sequential(*layers, nn.Flatten(), nn.Linear(c * hw * hw, 1))
    return _ResNet(spec["c_in"], spec["channels"], hw)


def _ResNet(c_in, c, hw):  # noqa: N802 (a class built lazily, torch imported inside)
    from torch import nn

    class ResNet(nn.Module):
        """conv-ReLU, then x + conv(ReLU(conv(x))), ReLU, flatten, dense(1)."""

        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(c_in, c, 3, padding=1)
            self.conv1 = nn.Conv2d(c, c, 3, padding=1)
            self.conv2 = nn.Conv2d(c, c, 3, padding=1)
            self.head = nn.Linear(c * hw * hw, 1)

        def forward(self, x):
            h = self.stem(x).relu()
            h = (h + self.conv2(self.conv1(h).relu())).relu()
            return self.head(h.flatten(1))

    return ResNet()


def stax_arrays(model, spec) -> list[np.ndarray]:
    """The model's parameters in stax layout (Dense W: (in, out); Conv W: HWIO; a dense
    layer after a flatten sees the features in (H, W, C) order), in stax order."""
    out = []
    mods = [m for m in model.modules() if hasattr(m, "weight")]
    for m in mods:
        w = m.weight.detach().numpy()
        if w.ndim == 4:
            out += [w.transpose(2, 3, 1, 0), m.bias.detach().numpy()]
        elif spec["kind"] != "mlp" and m is mods[-1]:  # the dense head after a flatten
            c = w.shape[1] // (spec["hw"] ** 2)
            w = w.reshape(w.shape[0], c, spec["hw"], spec["hw"]).transpose(2, 3, 1, 0)
            out += [w.reshape(-1, w.shape[-1]), m.bias.detach().numpy()]
        else:
            out += [w.T, m.bias.detach().numpy()]
    return [np.ascontiguousarray(a, dtype=np.float32) for a in out]


def inputs(spec) -> np.ndarray:
    rng = np.random.default_rng(0)
    shape = (spec["n"], spec["in"]) if spec["kind"] == "mlp" else (
        spec["n"], spec["c_in"], spec["hw"], spec["hw"])
    return rng.standard_normal(shape).astype(np.float32)


def worker(args) -> None:
    """acthash side, every method on one model, in one fresh process: each method's first
    call (``auto`` first), then up to 7 rounds of warm calls, the methods interleaved so
    that a change of machine load hits them alike (a method stops after 10 s of warm calls,
    or after 3 calls slower than 2 s)."""
    import torch

    sys.path.insert(0, str(ROOT / "src"))
    from acthash.spectrum.ntk import ntk

    torch.set_num_threads(1)
    spec = json.loads(args.spec)
    model = build_torch(spec)
    x = torch.from_numpy(np.load(spec["x"]))
    res = {}
    for method in ACTHASH_METHODS:
        t = time.perf_counter()
        g, plan = ntk(model, x, method=method, return_info=True)
        res[method] = {"method": method, "first_s": time.perf_counter() - t, "warm": [],
                       "chosen": plan.method, "plan": plan.summary()}
        np.save(spec["kernel_out"].format(method=method), g.numpy())
    for _ in range(7):
        for method in ACTHASH_METHODS:
            r = res[method]
            if r["warm"] and (sum(r["warm"]) > 10 or len(r["warm"]) >= 3 and r["warm"][-1] > 2):
                continue
            t = time.perf_counter()
            ntk(model, x, method=method)
            r["warm"].append(time.perf_counter() - t)
    for r in res.values():
        r["warm_s"], r["runs"] = min(r["warm"]), len(r.pop("warm"))
    print(json.dumps(list(res.values())))


def sweep(args) -> None:
    """acthash only, warm times of every method and of ``auto`` at several N (one process,
    one thread): does the cost model pick a method within 1.2x of the fastest?"""
    import torch

    sys.path.insert(0, str(ROOT / "src"))
    from acthash.spectrum.ntk import ntk

    torch.set_num_threads(1)
    print("\n| model | N | auto picks | auto s | fastest | fastest s | auto / fastest |")
    print("|---|---|---|---|---|---|---|")
    for name in args.models.split(","):
        spec = dict(MODELS[name])
        for n in [int(v) for v in args.sweep.split(",")]:
            spec["n"] = n
            model = build_torch(spec)
            x = torch.from_numpy(inputs(spec))
            methods = ("structured", "jacobian", "loop", "auto")
            times = dict.fromkeys(methods, float("inf"))
            for method in methods:
                _, plan = ntk(model, x, method=method, return_info=True)  # warm-up
                if method == "auto":
                    picked = plan.method
            for _ in range(5):  # interleaved rounds, best of 5
                for method in methods:
                    t = time.perf_counter()
                    ntk(model, x, method=method)
                    times[method] = min(times[method], time.perf_counter() - t)
            fastest = min((m for m in times if m != "auto"), key=times.get)
            print(f"| {name} | {n} | {picked} | {times['auto']:.4f} | {fastest} | "
                  f"{times[fastest]:.4f} | {times['auto'] / times[fastest]:.2f} |", flush=True)


def run_json(cmd, env, timeout) -> dict:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"over {timeout} s"}
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith(("{", "["))]
    if r.returncode or not lines:
        return {"error": (r.stderr.strip().splitlines() or ["failed"])[-1][:200]}
    return json.loads(lines[-1])


def find_peer(arg: str | None) -> Path | None:
    if arg == "none":
        return None
    cands = [arg, os.environ.get("ACTHASH_PEER_PYTHON")]
    for d in ("shared-peers-venv", "peers-venv"):
        cands += [str(ROOT.parent / d / "bin" / "python"),
                  str(ROOT.parent.parent / d / "bin" / "python")]
    for c in cands:
        if c and Path(c).is_file():
            return Path(c)
    return None


def rel_diff(path, ref) -> float | None:
    if ref is None or not Path(path).is_file():
        return None
    g = np.load(path).astype(np.float64)
    return float(np.abs(g - ref).max() / np.abs(ref).max())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--spec", help=argparse.SUPPRESS)
    ap.add_argument("--peer-python", help="python of the neural-tangents environment "
                                          "('none': acthash side only)")
    ap.add_argument("--models", default=",".join(MODELS), help="comma list of " + ", ".join(MODELS))
    ap.add_argument("--quick", action="store_true", help="N / 4 (a smoke run, not the table)")
    ap.add_argument("--nt-impls", default="3,1",
                    help="neural-tangents implementations to run: 3 structured, 1 Jacobian, "
                         "2 NTK-vector products (N² forward passes: minutes at these N)")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per method")
    ap.add_argument("--out", help="write the results as JSON here")
    ap.add_argument("--sweep", metavar="N,N,...",
                    help="instead: acthash's methods and auto at these N (cost-model check)")
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return 0
    if args.sweep:
        env = {**os.environ, **ONE_THREAD, "PYTHONPATH": str(ROOT / "src")}
        if os.environ.get("OMP_NUM_THREADS") != "1":  # thread settings apply at start-up
            return subprocess.call([sys.executable, *sys.argv], env=env)
        sweep(args)
        return 0
    peer = find_peer(args.peer_python)
    env = {**os.environ, **ONE_THREAD, "PYTHONPATH": str(ROOT / "src")}
    print(f"neural-tangents: {peer or 'peer environment not found: acthash side only'}")
    print(f"load average at start: {os.getloadavg()[0]:.1f}")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            spec = dict(MODELS[name])
            if args.quick:
                spec["n"] = max(8, spec["n"] // 4)
            x = inputs(spec)
            spec["x"] = f"{tmp}/{name}_x.npy"
            np.save(spec["x"], x)
            rows = []
            s = {**spec, "kernel_out": f"{tmp}/{name}_{{method}}.npy"}
            out = run_json([sys.executable, __file__, "--worker", "all", "--spec",
                            json.dumps(s)], env, args.timeout * len(ACTHASH_METHODS))
            for r in out if isinstance(out, list) else [
                    {"method": m, **out} for m in ACTHASH_METHODS]:
                rows.append({"side": "acthash", **r, "k": f"{tmp}/{name}_{r['method']}.npy"})
                print(f"  {name} acthash: {r}", flush=True)
            if peer is not None:
                w = stax_arrays(build_torch(spec), spec)
                np.savez(f"{tmp}/{name}_w.npz", *w)
                xj = x if x.ndim == 2 else x.transpose(0, 2, 3, 1)
                np.save(f"{tmp}/{name}_xj.npy", np.ascontiguousarray(xj))
                for impl in [int(i) for i in args.nt_impls.split(",")]:
                    label = NT_IMPLS[impl]
                    s = {**{k: v for k, v in spec.items() if k != "x"},
                         "x": f"{tmp}/{name}_xj.npy", "weights": f"{tmp}/{name}_w.npz",
                         "kernel_out": f"{tmp}/{name}_nt{impl}.npy"}
                    r = run_json([str(peer), str(HERE / "_ntk_peer_nt.py"), json.dumps(s),
                                  str(impl)], env, args.timeout)
                    rows.append({"side": "neural-tangents", "method": label, **r,
                                 "k": s["kernel_out"]})
                    print(f"  {name} neural-tangents {label}: {r}", flush=True)
            ref_path = f"{tmp}/{name}_structured.npy"
            ref = np.load(ref_path).astype(np.float64) if Path(ref_path).is_file() else None
            for r in rows:
                r["rel_diff"] = rel_diff(r.pop("k"), ref)
            results.append({"model": name, "n": spec["n"], "rows": rows})
    print_table(results, peer is not None)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))
    return 0


def _fmt(v, spec=".3f"):
    return "–" if v is None else format(v, spec)


def print_table(results, with_peer: bool) -> None:
    print("\n| model, N | side | method | first call s | warm s | warm / nt best | "
          "max rel. diff vs acthash structured |")
    print("|---|---|---|---|---|---|---|")
    summary = []
    for res in results:
        rows = res["rows"]
        ok = [r for r in rows if "warm_s" in r]
        nt = [r["warm_s"] for r in ok if r["side"] == "neural-tangents"]
        nt_best = min(nt) if nt else None
        for r in rows:
            warm = r.get("warm_s")
            ratio = warm / nt_best if warm is not None and nt_best else None
            label = r["method"] + (f" (→ {r['chosen']})" if r["method"] == "auto"
                                   and "chosen" in r else "")
            diff = "–" if r.get("rel_diff") is None else f"{r['rel_diff']:.1e}"
            print(f"| {res['model']}, {res['n']} | {r['side']} | {label} | "
                  f"{_fmt(r.get('first_s'))} | {_fmt(warm) if warm else r.get('error', '–')} | "
                  f"{_fmt(ratio, '.2f')} | {diff} |")
        ours = {r["method"]: r["warm_s"] for r in ok if r["side"] == "acthash"}
        best = min((v for k, v in ours.items() if k != "auto"), default=None)
        line = f"{res['model']}: auto / acthash best = {_fmt(ours.get('auto', 0) / best if best else None, '.2f')}"
        if nt_best and best:
            line += f"; acthash best / neural-tangents best = {best / nt_best:.2f}"
            line += f"; auto / neural-tangents best = {ours.get('auto', float('nan')) / nt_best:.2f}"
        summary.append(line)
    print()
    for line in summary:
        print(line)
    if not with_peer:
        print("(neural-tangents not run: no peer environment; see ../shared/peers/README.md)")
    for res in results:
        for r in res["rows"]:
            if r["method"] == "auto" and "plan" in r:
                print(f"{res['model']}: {r['plan']}")


if __name__ == "__main__":
    sys.exit(main())
