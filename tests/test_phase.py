"""Phase classification on hand-made metric tables, and the phase chart's contents."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import QuadMesh  # noqa: E402

from acthash.presentation.phase import PhaseThresholds, classify, phase_chart, phase_charts  # noqa: E402


def _table(points, seeds=(0, 1), spread=0.0):
    """Rows for (width, epoch, redundancy, accuracy) points, one per seed; seed 1 is
    shifted by +spread / seed 0 by -spread so the mean is the given value."""
    rows = []
    for width, epoch, red, acc in points:
        for s in seeds:
            d = spread if s else -spread
            rows.append({"width": width, "epoch": epoch, "seed": s, "dataset": "digits",
                         "redundancy_train": red + d, "redundancy_test": red,
                         "knn_test": acc + d, "kmeans_test": 0.5})
    return pd.DataFrame(rows)


POINTS = [
    # width, epoch, redundancy, accuracy        expected regime (plateau = 0.95)
    (4, 0, 0.90, 0.30),    # under: redundancy 0.9 > 0.1
    (4, 10, 0.1001, 0.40),  # under: just above 0.1
    (16, 0, 0.10, 0.60),   # critical: not above 0.1, not <= 0.001
    (16, 10, 0.0005, 0.90),  # critical: redundancy ~0 but 0.90 < 0.95 - 0.02
    (64, 0, 0.001, 0.93),  # sufficient: 0.001 <= 0.001 and 0.93 >= 0.93
    (64, 10, 0.0, 0.95),   # sufficient: the plateau itself
]
EXPECTED = ["under", "under", "critical", "critical", "sufficient", "sufficient"]


def test_classify_hand_made_table():
    out = classify(_table(POINTS, spread=0.0004))
    assert list(out.columns[:2]) == ["width", "epoch"]
    out = out.set_index(["width", "epoch"])
    got = [out.loc[(w, e), "regime"] for w, e, _, _ in POINTS]
    assert got == EXPECTED
    assert np.allclose(out["plateau"], 0.95)
    assert (out["n_seeds"] == 2).all()
    # std over the two seeds of (v - d, v + d) is d * sqrt(2)
    assert np.allclose(out["accuracy_std"], 0.0004 * np.sqrt(2))


def test_thresholds_are_configurable():
    t = PhaseThresholds(under=0.95, sufficient=0.1, plateau_tol=0.4)
    out = classify(_table(POINTS), t).set_index(["width", "epoch"])
    # only (4, 0) at 0.90 stays... not under (0.90 <= 0.95); (16, 0) at 0.10 <= 0.1 and
    # 0.60 >= 0.95 - 0.4 -> sufficient
    assert out.loc[(4, 0), "regime"] == "critical"
    assert out.loc[(16, 0), "regime"] == "sufficient"
    assert out.loc[(4, 10), "regime"] == "critical"  # 0.40 < 0.55
    t2 = PhaseThresholds(accuracy="kmeans_test")  # all 0.5: everything at the plateau
    out2 = classify(_table(POINTS), t2).set_index(["width", "epoch"])
    assert out2.loc[(16, 10), "regime"] == "sufficient"
    assert "0.95" in t.describe() and "plateau − 0.4" in t.describe()


def test_plateau_is_per_sample_size():
    rows = []
    for n, accs in ((10, (0.2, 0.3)), (1000, (0.6, 0.9))):
        for width, acc in zip((8, 256), accs, strict=True):
            rows.append({"width": width, "n_train": n, "seed": 0, "redundancy_train": 0.0,
                         "knn_test": acc})
    out = classify(pd.DataFrame(rows)).set_index(["width", "n_train"])
    assert out.loc[(8, 10), "plateau"] == 0.3 and out.loc[(8, 1000), "plateau"] == 0.9
    # width 256 reaches the plateau of both sample sizes; width 8 is 0.1 / 0.3 below
    assert out.loc[(256, 10), "regime"] == "sufficient"
    assert out.loc[(256, 1000), "regime"] == "sufficient"
    assert out.loc[(8, 10), "regime"] == "critical" and out.loc[(8, 1000), "regime"] == "critical"


def test_bad_thresholds_and_columns():
    with pytest.raises(ValueError, match="sufficient"):
        PhaseThresholds(under=0.001, sufficient=0.1)
    with pytest.raises(ValueError, match="plateau_tol"):
        PhaseThresholds(plateau_tol=2)
    with pytest.raises(ValueError, match="knn_tset"):
        classify(_table(POINTS), PhaseThresholds(accuracy="knn_tset"))
    with pytest.raises(ValueError, match="varies"):
        classify(_table(POINTS[:1], seeds=(0,)))


def test_phase_chart_regions_contours_and_thresholds():
    t = PhaseThresholds()
    fig = phase_chart(_table(POINTS), "width", "epoch", t)
    ax = fig.axes[0]
    mesh = [c for c in ax.collections if isinstance(c, QuadMesh)]
    assert len(mesh) == 1
    # regime codes: rows = epochs (0, 10), columns = widths (4, 16, 64)
    codes = np.asarray(mesh[0].get_array()).reshape(2, 3)
    assert codes.tolist() == [[0, 1, 2], [0, 1, 2]]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["4", "16", "64"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0", "10"]
    # redundancy contours: a ContourSet adds line collections / a path collection
    assert len(ax.collections) > 1
    legend = fig.legends[0]
    texts = [x.get_text() for x in legend.get_texts()]
    assert texts[:3] == ["under-expressive", "critically-expressive", "sufficiently-expressive"]
    title = legend.get_title().get_text()
    assert "redundancy_train > 0.1" in title and "0.001" in title and "0.02" in title
    plt.close(fig)


def test_phase_charts_write_files_and_table(tmp_path):
    df = _table(POINTS)
    table, paths = phase_charts([df], tmp_path)
    names = sorted(p.name for p in paths)
    assert names == ["phase_table.csv", "phase_width_epoch.png", "phase_width_epoch.svg"]
    saved = pd.read_csv(tmp_path / "phase_table.csv")
    assert list(saved["regime"]) == EXPECTED
    assert len(table) == len(POINTS)
    with pytest.raises(ValueError, match="no phase chart"):
        phase_charts([df[df["epoch"] == 0]], tmp_path)
