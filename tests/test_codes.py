"""NeuralCodes: packing, persistence, memory maps, constant units, layer selection."""

import numpy as np
import pytest

from acthash import CorruptFileError, LayerSpan, NeuralCodes


def test_pack_unpack_round_trip_with_odd_bit_count(rng):
    bits = rng.integers(0, 2, size=(33, 13)).astype(np.uint8)
    codes = NeuralCodes.from_bits(bits)
    assert codes.packed.shape == (33, 2) and codes.n_bits == 13
    np.testing.assert_array_equal(codes.unpack(), bits)
    np.testing.assert_array_equal(codes.unpack(rows=slice(3, 5)), bits[3:5])
    # most significant bit first, pad bits zero
    one = NeuralCodes.from_bits(np.array([[1, 0, 0, 0, 0, 0, 0, 0, 1]]))
    np.testing.assert_array_equal(one.packed, [[0b10000000, 0b10000000]])


def test_from_bits_rejects_non_binary():
    with pytest.raises(ValueError, match="only 0 and 1"):
        NeuralCodes.from_bits(np.array([[0, 2]]))
    with pytest.raises(ValueError, match="2-D"):
        NeuralCodes.from_bits(np.array([0, 1]))


def test_memory_is_one_bit_per_unit(rng):
    bits = rng.integers(0, 2, size=(100, 1000)).astype(np.int8)
    codes = NeuralCodes.from_bits(bits)
    assert bits.nbytes / codes.nbytes == 8


def test_save_load_and_mmap(tmp_path, rng):
    bits = rng.integers(0, 2, size=(50, 21)).astype(np.uint8)
    layers = [LayerSpan("a", "relu", (3, 3), 1, 0, 9), LayerSpan("b", "relu6", (6,), 2, 9, 21)]
    codes = NeuralCodes.from_bits(bits, labels=np.arange(50) % 3, layers=layers)
    path = codes.save(tmp_path / "c.ahc")
    assert not list(tmp_path.glob(".*tmp"))  # no temporary left behind
    for mmap in (False, True):
        back = NeuralCodes.load(path, mmap=mmap)
        assert back.equals(codes)
        assert back.layers == codes.layers
        np.testing.assert_array_equal(back.labels, codes.labels)
    assert isinstance(NeuralCodes.load(path, mmap=True).packed, np.memmap)


def test_corrupt_and_truncated_files_are_reported(tmp_path, rng):
    codes = NeuralCodes.from_bits(rng.integers(0, 2, size=(10, 16)))
    path = codes.save(tmp_path / "c.ahc")
    data = path.read_bytes()
    (tmp_path / "trunc.ahc").write_bytes(data[:-10])
    with pytest.raises(CorruptFileError, match="truncated"):
        NeuralCodes.load(tmp_path / "trunc.ahc")
    (tmp_path / "junk.ahc").write_bytes(b"not codes at all")
    with pytest.raises(CorruptFileError, match="not an acthash codes file"):
        NeuralCodes.load(tmp_path / "junk.ahc")
    with pytest.raises(FileNotFoundError):
        NeuralCodes.load(tmp_path / "missing.ahc")


def test_drop_constant_units_keeps_mask_and_spans():
    bits = np.array([[1, 0, 1, 0, 1], [1, 1, 1, 0, 0], [1, 0, 1, 0, 1]])
    layers = [LayerSpan("a", "relu", (2,), 1, 0, 2), LayerSpan("b", "relu", (3,), 1, 2, 5)]
    codes = NeuralCodes.from_bits(bits, layers=layers)
    np.testing.assert_array_equal(codes.constant_units(), [True, False, True, True, False])
    dropped = codes.drop_constant()
    np.testing.assert_array_equal(dropped.unpack(), [[0, 1], [1, 0], [0, 1]])
    np.testing.assert_array_equal(dropped.kept, [False, True, False, False, True])
    assert [(s.start, s.stop) for s in dropped.layers] == [(0, 1), (1, 2)]
    # a test set is reduced with the training mask
    test = NeuralCodes.from_bits(np.array([[0, 1, 1, 1, 1]]), layers=layers)
    np.testing.assert_array_equal(test.drop_constant(reference=codes).unpack(), [[1, 1]])


def test_select_layers_and_subsets():
    bits = np.array([[1, 0, 1, 1], [0, 1, 0, 0]])
    layers = [LayerSpan("conv.relu", "relu", (2,), 1, 0, 2), LayerSpan("fc", "relu", (2,), 1, 2, 4)]
    codes = NeuralCodes.from_bits(bits, labels=[3, 4], layers=layers)
    fc = codes.select_layers("^fc")
    np.testing.assert_array_equal(fc.unpack(), [[1, 1], [0, 0]])
    assert fc.layers[0].start == 0
    with pytest.raises(ValueError, match="layers are: conv.relu, fc"):
        codes.select_layers("nothing")
    sub = codes[np.array([1])]
    np.testing.assert_array_equal(sub.unpack(), [[0, 1, 0, 0]])
    np.testing.assert_array_equal(sub.labels, [4])


def test_labels_are_validated():
    with pytest.raises(ValueError, match="labels have length 1 but there are 2 examples"):
        NeuralCodes.from_bits(np.zeros((2, 3)), labels=[1])
    with pytest.raises(ValueError, match="integers"):
        NeuralCodes.from_bits(np.zeros((2, 3)), labels=["a", "b"])


def test_atomic_writes_get_the_usual_file_mode(tmp_path):
    import os

    from acthash._utils.io import write_json

    path = write_json(tmp_path / "x.json", {"a": 1})
    mask = os.umask(0)
    os.umask(mask)
    assert (path.stat().st_mode & 0o777) == (0o666 & ~mask)
