"""Executors: they run cells and yield ``(cell, outcome)`` as each finishes.

``serial`` (this process), ``process`` (spawned worker processes) and ``ray`` (a local Ray,
or a cluster). Each cell runs with a fixed number of torch threads and its own seed, so the
table is the same whatever the executor.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

from acthash.errors import ConfigError, MissingDependencyError
from acthash.runs.sweep.cells import _safe_run_cell

__all__ = ["EXECUTORS", "iter_cells"]

EXECUTORS = ("serial", "process", "ray")


def _iter_serial(todo, cache_dir, threads):
    for cell in todo:
        yield cell, _safe_run_cell(asdict(cell), cache_dir, threads)


def _iter_process(todo, cache_dir, threads, workers):
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
        futures = {pool.submit(_safe_run_cell, asdict(c), cache_dir, threads): c for c in todo}
        try:
            for fut in as_completed(futures):
                yield futures[fut], fut.result()
        except BaseException:
            for f in futures:
                f.cancel()
            raise


def _ray_gpus_per_cell(ray, requested: float | None) -> float:
    if requested is not None:
        return float(requested)
    return 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0


def _auth_error(ray, exc: BaseException | None):
    """The Ray authentication failure behind ``exc``, else None (Ray 2.60 wraps it in a
    ConnectionError caused by a RuntimeError that quotes it)."""
    while exc is not None:
        if (isinstance(exc, ray.exceptions.AuthenticationError)
                or "InvalidAuthToken" in str(exc)):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def _iter_ray(todo, cache_dir, threads, workers, address, gpus_per_cell, runtime_env):
    try:
        import ray
    except ImportError:
        raise MissingDependencyError(
            "the Ray executor needs Ray: pip install 'acthash[ray]' (or pip install ray)"
        ) from None
    started = False
    if not ray.is_initialized():
        kwargs: dict = {"include_dashboard": False, "log_to_driver": False}
        if address:  # an existing cluster (also via the Ray client): only the runtime env
            env = runtime_env
            if env is None:  # ship this package to the cluster's workers
                import acthash

                env = {"py_modules": [str(Path(acthash.__file__).parent)]}
            try:
                ray.init(address=address, runtime_env=env)
            except Exception as e:
                if _auth_error(ray, e) is None:
                    raise
                raise ConfigError(
                    f"the Ray cluster at {address} refused this driver (no or a wrong "
                    "authentication token); export RAY_AUTH_MODE=token and RAY_AUTH_TOKEN="
                    "<the head's token> (or RAY_AUTH_TOKEN_PATH) before acthash sweep, as on "
                    "every node (README: Scaling out on Ray)"
                ) from None
        else:
            import acthash  # workers import this very package

            path = [str(Path(acthash.__file__).resolve().parents[1]),
                    *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
            env = {"env_vars": {"PYTHONPATH": os.pathsep.join(path),
                                "OMP_NUM_THREADS": str(threads)}}
            ray.init(num_cpus=workers or os.cpu_count(), runtime_env=env, **kwargs)
        started = True
    try:
        gpus = _ray_gpus_per_cell(ray, gpus_per_cell)
        remote = ray.remote(num_cpus=threads, num_gpus=gpus, max_retries=1)(_safe_run_cell)
        pending = {remote.remote(asdict(c), cache_dir, threads): c for c in todo}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            ref = done[0]
            cell = pending.pop(ref)
            yield cell, ray.get(ref)
    finally:
        if started:
            ray.shutdown()


def iter_cells(executor: str, todo, cache_dir: str, threads: int, workers: int = 1,
               ray_address: str | None = None, gpus_per_cell: float | None = None,
               ray_runtime_env: dict | None = None):
    """Run ``todo`` on ``executor``; yields ``(cell, outcome)`` in completion order."""
    if executor == "serial":
        return _iter_serial(todo, cache_dir, threads)
    if executor == "process":
        return _iter_process(todo, cache_dir, threads, workers)
    return _iter_ray(todo, cache_dir, threads, workers, ray_address, gpus_per_cell,
                     ray_runtime_env)
