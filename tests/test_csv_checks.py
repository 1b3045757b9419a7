"""csv:PATH is checked at load — errors name the file's line numbers (header = line 1), the
columns and the values — and sweep flags that a sweep file would ignore are refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from acthash import data
from acthash.cli import app
from acthash.cli._options import parse_key_values
from acthash.errors import EXIT_USER_ERROR, DatasetNotFoundError, InputError

runner = CliRunner()


def table(tmp_path: Path, text: str, name: str = "t.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def rows(n: int = 12) -> str:
    """``n`` valid rows of columns a, b, y (two classes)."""
    return "".join(f"{i},{i % 4}.5,{'cat' if i % 2 else 'dog'}\n" for i in range(n))


def load(path: Path, **options):
    return data.load(f"csv:{path}", label="y", **options)


def error(path: Path, **options) -> str:
    with pytest.raises(InputError) as info:
        load(path, **options)
    return str(info.value)


def test_a_valid_table_loads(tmp_path):
    ds = load(table(tmp_path, "a,b,y\n" + rows()), standardize=False)
    assert ds.class_names == ["cat", "dog"] and ds.input_shape == (2,)
    assert len(ds.x_train) + len(ds.x_test) == 12
    assert np.isfinite(ds.x_train.numpy()).all()


def test_empty_file_and_header_without_rows(tmp_path):
    empty = table(tmp_path, "")
    assert error(empty) == (f"{empty} is empty (no header, no rows); a CSV dataset needs a "
                            "header line and one row per example")
    header = table(tmp_path, "a,b,y\n", "h.csv")
    assert error(header) == f"{header} has a header but no rows; add one row per example"
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        load(tmp_path / "missing.csv")


def test_nan_and_inf_name_the_file_lines_and_columns(tmp_path):
    # line 1 header, 2-5 valid, 6 a NaN in b, 7 blank (skipped, still counted), 8 valid,
    # 9 inf in a, 10 an empty a and -inf in b
    text = "a,b,y\n" + rows(4) + "5,nan,cat\n\n7,1.5,dog\ninf,2.5,cat\n,-inf,dog\n" + rows(4)
    path = table(tmp_path, text)
    assert error(path) == (
        f"{path} has missing (NaN) or infinite values: line 6 column 'b' (NaN), line 9 column "
        "'a' (inf), line 10 column 'a' (NaN), line 10 column 'b' (-inf); fill or drop those "
        "rows")


def test_many_bad_cells_are_counted(tmp_path):
    path = table(tmp_path, "a,b,y\n" + "".join(f"{i},,cat\n{i},1,dog\n" for i in range(8)))
    assert error(path) == (
        f"{path} has missing (NaN) or infinite values: line 2 column 'b' (NaN), line 4 column "
        "'b' (NaN), line 6 column 'b' (NaN), line 8 column 'b' (NaN), line 10 column 'b' "
        "(NaN) (8 cells in all); fill or drop those rows")


def test_a_missing_label_is_reported(tmp_path):
    path = table(tmp_path, "a,b,y\n" + rows(5) + "9,1.5,\n" + rows(5))
    assert error(path) == (f"{path} has missing (NaN) or infinite values: line 7 column 'y' "
                           "(missing); fill or drop those rows")


def test_a_typo_in_a_numeric_column_is_refused_unless_categorical(tmp_path):
    path = table(tmp_path, "a,b,y\n" + rows(3) + "3,1.2x,dog\n" + rows(8))
    assert error(path) == (
        f"{path}: column 'b' is numeric but holds text: line 5 column 'b' ('1.2x'); fix the "
        "value(s), or declare the column categorical with -O categorical=b (Python: "
        "categorical=['b'])")
    ds = load(path, categorical="b", standardize=False)
    assert ds.info["one_hot_columns"] == ["b"] and ds.info["categorical"] == ["b"]
    assert "b_1.2x" in ds.info["feature_names"] and "b_0.5" in ds.info["feature_names"]
    assert ds.input_shape == (1 + 5,)  # a + indicators of 0.5, 1.5, 2.5, 3.5, 1.2x


def test_the_categorical_option_from_the_cli_and_unknown_columns(tmp_path):
    path = table(tmp_path, "a,b,y\n" + rows())
    opts = parse_key_values(["categorical=a,b"])  # what -O categorical=a,b passes
    ds = load(path, **opts, standardize=False)
    assert ds.info["one_hot_columns"] == ["a", "b"] and ds.input_shape == (12 + 4,)
    assert error(path, categorical="a,zip") == (
        f"categorical columns ['zip'] are not in {path}; its columns are ['a', 'b', 'y']")
    # a column of words is categorical anyway (one-hot), as before
    words = table(tmp_path, "a,w,y\n" + "".join(f"{i},{'xyz'[i % 3]},{i % 2}\n"
                                                for i in range(12)), "w.csv")
    assert data.load(f"csv:{words}", label="y").info["one_hot_columns"] == ["w"]


def test_a_single_class_label_column_is_refused(tmp_path):
    path = table(tmp_path, "a,b,y\n" + "".join(f"{i},{i}.5,dog\n" for i in range(6)))
    assert error(path) == (
        f"{path}: the label column 'y' holds a single class ('dog'); a classifier needs at "
        "least two (is label=... / --label-column the right column?)")


def test_a_test_file_is_checked_with_its_own_name_and_lines(tmp_path):
    train = table(tmp_path, "a,b,y\n" + rows())
    bad = table(tmp_path, "a,b,y\n1,2.5,cat\n2,inf,dog\n", "test.csv")
    assert error(train, test=str(bad)) == (
        f"{bad} has missing (NaN) or infinite values: line 3 column 'b' (inf); fill or drop "
        "those rows")
    other = table(tmp_path, "a,c,y\n1,2,cat\n", "other.csv")
    assert error(train, test=str(other)) == (
        f"test file {other} has columns ['a', 'c', 'y'] but {train} has ['a', 'b', 'y']; "
        "give both files the same columns")


def test_cli_run_names_the_csv_error(tmp_path):
    path = table(tmp_path, "a,b,y\n" + rows(3) + "oops,1.5,dog\n" + rows(8))
    r = runner.invoke(app, ["run", "--dataset", f"csv:{path}", "--label-column", "y",
                            "--epochs", "1", "--out", str(tmp_path / "run"), "--no-progress"])
    assert r.exit_code == EXIT_USER_ERROR
    assert "column 'a' is numeric but holds text: line 5 column 'a' ('oops')" in " ".join(
        r.output.split())
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------ sweep flags a file overrides


SWEEP = """\
name: tiny
base:
  dataset: digits
  epochs: 1
grid:
  width: [4, 8]
"""


@pytest.mark.parametrize("flags, message", [
    (["--dataset", "mnist", "--scale", "paper"],
     "--dataset and --scale apply to --preset only and would be ignored with the sweep file "
     "{f}: it sets base.dataset (now 'digits'); the sizes in its keys base.epochs, grid.width "
     "(a sweep file has no scale). Edit those keys in the file, or drop --dataset and --scale"),
    (["--dataset", "mnist"],
     "--dataset applies to --preset only and would be ignored with the sweep file {f}: it "
     "sets base.dataset (now 'digits')"),
    (["--scale", "cpu"], "--scale applies to --preset only"),
])
def test_sweep_file_refuses_preset_flags(tmp_path, flags, message):
    f = table(tmp_path, SWEEP, "s.yaml")
    r = runner.invoke(app, ["sweep", str(f), *flags, "--out", str(tmp_path / "sw")])
    assert r.exit_code == EXIT_USER_ERROR, r.output
    assert message.format(f=f) in " ".join(r.output.split())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.yaml"]


def test_sweep_file_with_a_dataset_grid_names_it(tmp_path):
    f = table(tmp_path, SWEEP.replace("  width: [4, 8]", "  dataset: [digits, mnist1d]"),
              "s.yaml")
    r = runner.invoke(app, ["sweep", str(f), "--dataset", "mnist", "--dry-run"])
    assert r.exit_code == EXIT_USER_ERROR
    assert "it sets grid.dataset (now ['digits', 'mnist1d'])" in " ".join(r.output.split())


def test_sweep_file_still_takes_seeds_and_presets_take_scale(tmp_path):
    f = table(tmp_path, SWEEP, "s.yaml")
    r = runner.invoke(app, ["sweep", str(f), "--seeds", "0,1", "--dry-run"])
    assert r.exit_code == 0 and "4 cells" in r.output
    r = runner.invoke(app, ["sweep", "--preset", "model-size", "--scale", "cpu",
                            "--dataset", "digits", "--dry-run"])
    assert r.exit_code == 0, r.output
