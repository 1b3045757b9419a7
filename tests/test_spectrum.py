"""Spectrum study: energy fractions, alignment, kernel tracking over training."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from acthash.errors import EXIT_USER_ERROR
from acthash.studies.spectrum import (
    SpectrumConfig,
    eig_desc,
    energy_fraction,
    kernel_alignment,
    load_image_task,
    run_spectrum_study,
    spectrum_variants,
    track_spectrum,
)


def test_energy_of_an_eigenvector_is_one_from_its_index_on(rng):
    a = rng.normal(size=(12, 12))
    lam, vec = eig_desc(a @ a.T)
    assert np.all(np.diff(lam) <= 0)
    ks = list(range(1, 13))
    for j in range(12):  # eigenvector j+1 (1-based index)
        e = energy_fraction(vec, vec[:, j], ks)
        np.testing.assert_allclose(e[j:], 1.0, atol=1e-12)
        np.testing.assert_allclose(e[:j], 0.0, atol=1e-12)


def test_energy_fraction_hand_computed():
    v = np.eye(3)
    phi = np.array([3.0, 4.0, 0.0])  # ‖φ‖² = 25
    np.testing.assert_allclose(energy_fraction(v, phi, [1, 2, 3, 10]), [9 / 25, 1, 1, 1])
    # two columns: sums run over them
    phi2 = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    np.testing.assert_allclose(energy_fraction(v, phi2, [1, 2]), [1 / 3, 2 / 3])
    with pytest.raises(ValueError, match="k must be"):
        energy_fraction(v, phi, [0])


def test_kernel_alignment_hand_computed():
    y = np.array([1.0, -1.0, 2.0])
    g = np.outer(y, y)  # rank one along y: alignment = ‖y‖⁴ / (‖y‖² ‖y‖²) = 1
    assert kernel_alignment(g, y) == pytest.approx(1.0)
    g2 = np.diag([1.0, 2.0, 3.0])
    expect = (1 + 2 + 12) / (np.sqrt(1 + 4 + 9) * 6)
    assert kernel_alignment(g2, y) == pytest.approx(expect)


def test_linear_model_kernel_constant_over_training():
    torch.manual_seed(0)
    x = torch.randn(30, 3)
    y = x @ torch.tensor([1.0, -2.0, 0.5]) + 0.3
    model = nn.Linear(3, 1)
    tr = track_spectrum(model, x, y, steps=40, record_at=[0, 10, 40], optimizer="gd", lr=0.1,
                        ks=[1, 2, 4])
    assert tr.records["loss"].iloc[-1] < 0.2 * tr.records["loss"].iloc[0]  # it did train
    np.testing.assert_allclose(tr.records["rel_frob"], 0.0, atol=1e-12)
    ev = tr.eigenvalues.pivot(index="index", columns="step", values="eigenvalue")
    np.testing.assert_allclose(ev[0], ev[40], rtol=1e-12)
    # the linear model's kernel is x xᵀ + 1 (rank 4): E_4 of anything it outputs is 1
    np.testing.assert_allclose(tr.records["E4_output"], 1.0, atol=1e-9)


def test_mlp_kernel_moves_and_history():
    torch.manual_seed(0)
    x = torch.rand(40, 2) * 2 - 1
    y = torch.sin(3 * x[:, 0]) * x[:, 1]
    model = nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(), nn.Linear(16, 16), nn.LeakyReLU(),
                          nn.Linear(16, 1))
    tr = track_spectrum(model, x, y, steps=30, record_at=[0, 30], optimizer="adam", lr=1e-2,
                        schedule="step", decay_steps=[15], gamma=0.1, ks=[1, 8], n_vectors=3,
                        slice_index=[0, 5])
    assert tr.records["rel_frob"].iloc[-1] > 1e-3
    assert list(tr.history["lr"].iloc[[0, 14, 15, 29]]) == pytest.approx([1e-2, 1e-2, 1e-3, 1e-3])
    assert tr.arrays["vectors_first"].shape == (40, 3)
    assert tr.arrays["slices_last"].shape == (2, 40)
    e = tr.records[[c for c in tr.records.columns if c.startswith("E")]].to_numpy()
    assert np.all((e >= -1e-12) & (e <= 1 + 1e-12))


def test_image_task_and_variants():
    x, y = load_image_task("grace_hopper.jpg", 16)
    assert x.shape == (256, 2) and y.shape == (256,)
    assert float(x.min()) == -1.0 and float(x.max()) == 1.0
    assert abs(float(y.mean())) < 1e-5 and float(y.std(unbiased=False)) == pytest.approx(1, 1e-4)
    with pytest.raises(FileNotFoundError, match="sample images"):
        load_image_task("no_such_image.png")
    names = [v.label() for v in spectrum_variants(
        SpectrumConfig(compare=["depth", "schedule", "optimizer"]))]
    assert names == ["d6-gd-constant", "d2-gd-constant", "d6-gd-step", "d6-adam-constant"]
    with pytest.raises(ValueError, match="unknown comparison"):
        spectrum_variants(SpectrumConfig(compare=["width"]))
    steps = SpectrumConfig(epochs=100, n_records=6).record_steps()
    assert steps[0] == 0 and steps[-1] == 100 and steps == sorted(set(steps))


@pytest.mark.slow
def test_spectrum_study_end_to_end_image(tmp_path):
    cfg = SpectrumConfig(grid=10, depth=2, width=16, epochs=12, n_records=3, ks=[1, 4],
                         n_eigs=10, n_vectors=2, compare=["depth"], lr=0.1)
    st = run_spectrum_study(cfg, out_dir=tmp_path, figure_formats=("png",))
    assert set(st.records["variant"]) == {"d2-gd-constant", "d6-gd-constant"}
    for f in ("config.json", "environment.json", "task.json", "records.parquet",
              "eigenvalues.parquet", "history.parquet", "arrays/d2-gd-constant.npz",
              "figures/summary.png", "figures/spectra.png", "figures/energy.png",
              "figures/alignment.png", "figures/eigvecs_d2-gd-constant.png"):
        assert (tmp_path / f).is_file(), f
    conf = json.loads((tmp_path / "config.json").read_text())
    assert conf["study"] == "spectrum" and conf["record_steps"] == cfg.record_steps()
    rec = pd.read_parquet(tmp_path / "records.parquet")
    assert len(rec) == 2 * len(cfg.record_steps())
    # seeded: bit-for-bit reproducible
    st2 = run_spectrum_study(cfg, write=False)
    pd.testing.assert_frame_equal(st.records, st2.records)


@pytest.mark.slow
def test_spectrum_study_classification(tmp_path):
    cfg = SpectrumConfig(dataset="digits", n_train=60, depth=2, width=16, epochs=10, n_records=3,
                         ks=[1, 10], n_eigs=5, optimizer="adam", adam_lr=1e-2)
    st = run_spectrum_study(cfg, out_dir=tmp_path, figure_formats=("png",))
    r = st.records
    assert len(r) == 3 and r["loss"].iloc[-1] < r["loss"].iloc[0]
    assert st.eigenvalues["eigenvalue"].max() > 0
    assert (tmp_path / "figures" / "summary.png").is_file()


def test_cli_spectrum_rejects_bad_options(tmp_path):
    from typer.testing import CliRunner

    from acthash.cli import app

    res = CliRunner().invoke(app, ["study", "spectrum", "--compare", "width",
                                   "--out", str(tmp_path / "x")])
    assert res.exit_code == EXIT_USER_ERROR and "unknown comparison" in res.output
    res = CliRunner().invoke(app, ["study", "spectrum", "--optimizer", "lbfgs"])
    assert res.exit_code == EXIT_USER_ERROR and "optimizer" in res.output


@pytest.mark.slow
def test_cli_spectrum_small_run(tmp_path):
    from typer.testing import CliRunner

    from acthash.cli import app

    res = CliRunner().invoke(app, ["study", "spectrum", "--dataset", "digits", "--n-train", "30",
                                   "--depth", "1", "--width", "8", "--epochs", "3",
                                   "--n-records", "2", "--ks", "1,5", "--no-progress",
                                   "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "run directory" in res.output and "neural spectrum alignment" in res.output
    rec = pd.read_parquet(tmp_path / "records.parquet")
    assert list(rec["variant"].unique()) == ["d1-gd-constant"] and len(rec) == 2


def test_per_logit_kernel_measures_average_the_logits():
    """Per-logit records equal the mean over logits of each logit's own measures."""
    import copy

    from acthash.spectrum.ntk import ntk

    torch.manual_seed(5)
    x = torch.randn(25, 4)
    y = torch.randint(0, 3, (25,))
    model = nn.Sequential(nn.Linear(4, 8), nn.LeakyReLU(), nn.Linear(8, 3))
    ref_model = copy.deepcopy(model)
    tr = track_spectrum(model, x, y, steps=0, record_at=[0], loss="ce", kernel="per-logit",
                        ks=[2, 5])
    g = ntk(ref_model, x, output="per-logit", dtype=torch.float64).numpy()
    onehot = np.eye(3)[y.numpy()]
    tgt = onehot - onehot.mean(0)
    align = np.mean([kernel_alignment(g[c], tgt[:, c]) for c in range(3)])
    e5 = np.mean([energy_fraction(eig_desc(g[c])[1], tgt[:, c], [5])[0] for c in range(3)])
    row = tr.records.iloc[0]
    assert row["alignment"] == pytest.approx(align, rel=1e-10)
    assert row["E5_target"] == pytest.approx(e5, rel=1e-10)
    with pytest.raises(ValueError, match="kernel must be"):
        track_spectrum(model, x, y, steps=0, record_at=[0], loss="ce", kernel="full")


def test_track_spectrum_rejects_mismatched_targets():
    model = nn.Linear(2, 3)
    with pytest.raises(ValueError, match="int64 class indices"):
        track_spectrum(model, torch.randn(4, 2), torch.tensor([0.0, 1, 2, 1]), steps=1,
                       record_at=[0], loss="ce")
    with pytest.raises(ValueError, match="one-hot"):
        track_spectrum(model, torch.randn(4, 2), torch.tensor([0, 1, 2, 1]), steps=1,
                       record_at=[0], loss="mse")
    with pytest.raises(ValueError, match="examples"):
        track_spectrum(model, torch.randn(5, 2), torch.tensor([0, 1, 2, 1]), steps=1,
                       record_at=[0], loss="ce")
