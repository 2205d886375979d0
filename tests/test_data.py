"""lrlab.data: IDX parsing, the four loaders, caching, holdout splits and batching."""

from __future__ import annotations

import gzip
import os
import pickle
import struct
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lrlab.data import (
    DATASETS,
    Dataset,
    batches,
    clear_memory_cache,
    epoch_order,
    load_dataset,
    make_mnist1d,
    num_batches,
    read_idx,
)
from lrlab.data import _cifar10 as cifar10_module
from lrlab.data import _fashion_mnist as fashion_module


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private disk cache and an empty in-process cache, restored afterwards."""
    directory = tmp_path / "cache"
    monkeypatch.setenv("LRLAB_CACHE", str(directory))
    clear_memory_cache()
    yield directory
    clear_memory_cache()


def write_idx(path: Path, array: np.ndarray, type_code: int, *, compress: bool = False) -> None:
    header = struct.pack(">BBBB", 0, 0, type_code, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)


# ----------------------------------------------------------------------------- IDX
@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_uint8_images_and_labels(tmp_path: Path, compress: bool) -> None:
    images = np.arange(3 * 2 * 4, dtype=np.uint8).reshape(3, 2, 4) * 7
    labels = np.array([9, 0, 3], dtype=np.uint8)
    write_idx(tmp_path / "images", images, 0x08, compress=compress)
    write_idx(tmp_path / "labels", labels, 0x08, compress=compress)
    got = read_idx(tmp_path / "images")
    assert got.dtype == np.uint8 and got.shape == (3, 2, 4)
    np.testing.assert_array_equal(got, images)
    np.testing.assert_array_equal(read_idx(tmp_path / "labels"), labels)


def test_read_idx_big_endian_wide_types(tmp_path: Path) -> None:
    ints = np.array([[1, -2], [70000, -70000]], dtype=np.int32)
    floats = np.array([0.5, -1.25, 3e10], dtype=np.float64)
    write_idx(tmp_path / "i", ints, 0x0C)
    write_idx(tmp_path / "f", floats, 0x0E, compress=True)
    np.testing.assert_array_equal(read_idx(tmp_path / "i"), ints)
    np.testing.assert_array_equal(read_idx(tmp_path / "f"), floats)
    assert read_idx(tmp_path / "i").dtype.isnative


def test_read_idx_rejects_bad_files(tmp_path: Path) -> None:
    (tmp_path / "png").write_bytes(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "png")
    (tmp_path / "type").write_bytes(struct.pack(">BBBBI", 0, 0, 0x07, 1, 1) + b"\x00")
    with pytest.raises(ValueError, match="data type 0x07"):
        read_idx(tmp_path / "type")
    (tmp_path / "short").write_bytes(struct.pack(">BBBBI", 0, 0, 0x08, 1, 5) + b"\x00\x01")
    with pytest.raises(ValueError, match=r"shape \(5,\)"):
        read_idx(tmp_path / "short")


# ----------------------------------------------------------------------------- fashion-mnist
def write_fashion_files(directory: Path, *, compress: bool) -> dict[str, np.ndarray]:
    rng = np.random.RandomState(0)
    arrays = {
        "x_train": rng.randint(0, 256, size=(6, 28, 28)).astype(np.uint8),
        "y_train": np.array([0, 1, 2, 9, 9, 5], dtype=np.uint8),
        "x_test": rng.randint(0, 256, size=(2, 28, 28)).astype(np.uint8),
        "y_test": np.array([4, 7], dtype=np.uint8),
    }
    directory.mkdir(parents=True, exist_ok=True)
    for split, name in fashion_module.FILES.items():
        path = directory / (name + (".gz" if compress else ""))
        write_idx(path, arrays[split], 0x08, compress=compress)
    return arrays


@pytest.mark.parametrize("compress", [False, True])
def test_fashion_mnist_from_root_pixel_exact(tmp_path: Path, cache: Path, compress: bool) -> None:
    arrays = write_fashion_files(tmp_path / "fm", compress=compress)
    ds = load_dataset("fashion-mnist", root=tmp_path / "fm")
    assert ds.x_train.shape == (6, 1, 28, 28) and ds.x_test.shape == (2, 1, 28, 28)
    assert ds.y_train.tolist() == [0, 1, 2, 9, 9, 5] and ds.y_test.dtype == torch.int64
    pixels = torch.from_numpy(arrays["x_train"]).double().unsqueeze(1) / 255
    expected = (pixels - fashion_module.MEAN) / fashion_module.STD
    torch.testing.assert_close(ds.x_train.double(), expected, rtol=0, atol=1e-6)
    raw = load_dataset("fashion-mnist", root=tmp_path / "fm", normalize=False)
    assert torch.equal(raw.x_test, torch.from_numpy(arrays["x_test"]).unsqueeze(1).float() / 255)
    assert ds.classes[9] == "Ankle boot"
    assert len(list(cache.glob("fashion-mnist-*.pt"))) == 1


def test_fashion_mnist_cache_is_used_and_keyed_by_the_source(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "fm"
    write_fashion_files(root, compress=True)
    first = load_dataset("fashion-mnist", root=root)
    assert load_dataset("fashion-mnist", root=root) is first  # in-process cache

    clear_memory_cache()

    def no_decoding(path: object) -> None:
        raise AssertionError(f"{path} was decoded again instead of read from the cache")

    monkeypatch.setattr(fashion_module, "read_idx", no_decoding)
    second = load_dataset("fashion-mnist", root=root)  # from the .pt file
    assert torch.equal(second.x_train, first.x_train)

    # A changed source file has a new key, so it is decoded again rather than served stale.
    labels = root / "train-labels-idx1-ubyte.gz"
    st_ = labels.stat()
    os.utime(labels, ns=(st_.st_atime_ns, st_.st_mtime_ns + 10**9))
    clear_memory_cache()
    with pytest.raises(AssertionError, match="decoded again"):
        load_dataset("fashion-mnist", root=root)


def test_fashion_mnist_missing_names_the_debian_package(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fashion_module, "DEBIAN_DIR", tmp_path / "nowhere")
    with pytest.raises(ValueError, match=r"apt-get install dataset-fashion-mnist.*root=.*download"):
        load_dataset("fashion-mnist")
    with pytest.raises(ValueError, match="apt-get install dataset-fashion-mnist"):
        load_dataset("fashion-mnist", root=tmp_path)


@pytest.mark.skipif(not fashion_module.DEBIAN_DIR.is_dir(), reason="dataset-fashion-mnist missing")
def test_real_fashion_mnist(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ds = load_dataset("fashion-mnist")
    assert ds.x_train.shape == (60000, 1, 28, 28) and ds.x_test.shape == (10000, 1, 28, 28)
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert torch.bincount(ds.y_train).tolist() == [6000] * 10
    assert torch.bincount(ds.y_test).tolist() == [1000] * 10
    # The documented constants are the training set's statistics.
    assert abs(ds.x_train.double().mean().item()) < 1e-6
    assert abs(ds.x_train.double().std().item() - 1) < 1e-6
    assert load_dataset("fashion-mnist") is ds
    assert len(list(cache.glob("fashion-mnist-*.pt"))) == 1
    clear_memory_cache()
    monkeypatch.setattr(fashion_module, "read_idx", None)  # a second decode would fail
    again = load_dataset("fashion-mnist")
    assert again is not ds and torch.equal(again.x_test, ds.x_test)


# ----------------------------------------------------------------------------- mnist1d
def test_mnist1d_equals_the_reference_package() -> None:
    mnist1d_data = pytest.importorskip("mnist1d.data")
    for num_samples, seed in [(5000, 42), (1200, 7)]:
        args = mnist1d_data.get_dataset_args()
        args.num_samples, args.seed = num_samples, seed
        ref = mnist1d_data.make_dataset(args)
        x, y, x_test, y_test = make_mnist1d(num_samples=num_samples, seed=seed)
        np.testing.assert_allclose(x, ref["x"], rtol=0, atol=1e-12)
        np.testing.assert_allclose(x_test, ref["x_test"], rtol=0, atol=1e-12)
        np.testing.assert_array_equal(y, ref["y"])
        np.testing.assert_array_equal(y_test, ref["y_test"])


def test_mnist1d_dataset_shapes_and_values(cache: Path) -> None:
    ds = load_dataset("mnist1d")
    assert ds.input_shape == (1, 40) and (ds.n_train, ds.n_test) == (4000, 1000)
    assert torch.bincount(torch.cat([ds.y_train, ds.y_test])).tolist() == [500] * 10
    x, y, _, _ = make_mnist1d()
    assert torch.equal(ds.x_train[:, 0], torch.from_numpy(x).float())
    assert torch.equal(ds.y_train, torch.from_numpy(y))
    small = load_dataset("mnist1d", num_samples=100, seed=1)
    assert (small.n_train, small.n_test) == (80, 20)
    with pytest.raises(ValueError, match=r"num_samples=105 .* multiple of 10"):
        load_dataset("mnist1d", num_samples=105)


# ----------------------------------------------------------------------------- digits
def test_digits_split_is_fixed(cache: Path) -> None:
    datasets = pytest.importorskip("sklearn.datasets")
    ds = load_dataset("digits")
    assert ds.x_train.shape == (1438, 1, 8, 8) and ds.x_test.shape == (359, 1, 8, 8)
    assert ds.y_test[:12].tolist() == [9, 4, 7, 0, 2, 6, 1, 3, 1, 3, 7, 3]
    assert torch.bincount(ds.y_test).tolist() == [31, 35, 39, 33, 44, 29, 40, 39, 28, 41]
    assert abs(ds.x_train.double().mean().item()) < 1e-6
    raw = load_dataset("digits", normalize=False)
    order = np.random.RandomState(0).permutation(1797)
    images = datasets.load_digits().images
    np.testing.assert_array_equal(raw.x_test[:, 0].numpy() * 16, images[order[1438:]])
    clear_memory_cache()
    assert torch.equal(load_dataset("digits").x_train, ds.x_train)


def test_digits_without_scikit_learn_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # scikit-learn is a base dependency: a missing one is a broken install, named as such
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # makes the import fail
    with pytest.raises(ValueError, match=r"a dependency of lrlab .*pip install scikit-learn$"):
        load_dataset("digits")


# ----------------------------------------------------------------------------- cifar10
def write_cifar(directory: Path) -> tuple[np.ndarray, list[int], np.ndarray, list[int]]:
    """Tiny batches in the real format: pickled dicts with bytes keys, (N, 3072) uint8."""
    rng = np.random.RandomState(1)
    directory.mkdir(parents=True)
    train_x, train_y = [], []
    for i in range(1, 6):
        data = rng.randint(0, 256, size=(2, 3072)).astype(np.uint8)
        labels = [(2 * i) % 10, (2 * i + 1) % 10]
        batch = {b"batch_label": b"training batch", b"labels": labels, b"data": data}
        (directory / f"data_batch_{i}").write_bytes(pickle.dumps(batch, protocol=2))
        train_x.append(data)
        train_y += labels
    test_x = rng.randint(0, 256, size=(3, 3072)).astype(np.uint8)
    test_y = [3, 1, 4]
    test = {b"batch_label": b"testing batch", b"labels": test_y, b"data": test_x}
    (directory / "test_batch").write_bytes(pickle.dumps(test, protocol=2))
    names = [n.encode() for n in cifar10_module.CLASSES]
    meta = {b"label_names": names, b"num_vis": 3072}
    (directory / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return np.concatenate(train_x), train_y, test_x, test_y


def test_cifar10_pixel_for_pixel(tmp_path: Path, cache: Path) -> None:
    train_x, train_y, test_x, test_y = write_cifar(tmp_path / "cifar-10-batches-py")
    raw = load_dataset("cifar10", root=tmp_path, normalize=False)
    assert raw.x_train.shape == (10, 3, 32, 32) and raw.x_test.shape == (3, 3, 32, 32)
    assert raw.y_train.tolist() == train_y and raw.y_test.tolist() == test_y
    for source, x in ((train_x, raw.x_train), (test_x, raw.x_test)):
        for i in range(len(source)):
            for c, h, w in [(0, 0, 0), (0, 0, 31), (1, 5, 7), (2, 31, 0), (2, 31, 31)]:
                assert x[i, c, h, w].item() == np.float32(source[i, 1024 * c + 32 * h + w]) / 255
        pixels = torch.from_numpy(source).view(-1, 3, 32, 32)
        assert torch.equal((x * 255).round().to(torch.uint8), pixels)

    ds = load_dataset("cifar10", root=tmp_path / "cifar-10-batches-py")
    mean = torch.tensor(cifar10_module.MEAN).view(1, 3, 1, 1)
    std = torch.tensor(cifar10_module.STD).view(1, 3, 1, 1)
    torch.testing.assert_close(ds.x_train, (raw.x_train - mean) / std, rtol=0, atol=1e-6)
    assert ds.classes == cifar10_module.CLASSES


def test_cifar10_errors(tmp_path: Path, cache: Path) -> None:
    with pytest.raises(ValueError, match=r"data_batch_1.*not found.*download=True"):
        load_dataset("cifar10", root=tmp_path)
    write_cifar(tmp_path / "c")
    (tmp_path / "c" / "data_batch_3").write_bytes(pickle.dumps({b"data": os.system}))
    with pytest.raises(ValueError, match=r"data_batch_3 is not a CIFAR-10 batch file"):
        load_dataset("cifar10", root=tmp_path / "c")


# ----------------------------------------------------------------------------- load_dataset
def test_load_dataset_names_and_options() -> None:
    assert DATASETS == ("fashion-mnist", "mnist1d", "digits", "cifar10")
    with pytest.raises(ValueError, match=r"unknown dataset 'fashion-mnst' \(did you mean 'fash"):
        load_dataset("fashion-mnst")
    with pytest.raises(ValueError, match="expected one of fashion-mnist, mnist1d, digits, cifar10"):
        load_dataset("imagenet")
    with pytest.raises(
        ValueError, match=r"mnist1d: unknown option 'samples'; allowed: num_samples"
    ):
        load_dataset("mnist1d", samples=10)
    assert load_dataset("MNIST1D", num_samples=20).name == "mnist1d"


# ----------------------------------------------------------------------------- Dataset
def toy(n: int = 20) -> Dataset:
    x = torch.arange(n, dtype=torch.float32).view(n, 1, 1)  # the value identifies the example
    return Dataset("toy", x, torch.arange(n) % 3, x[:4] + 100, torch.zeros(4, dtype=torch.long), 3)


def test_holdout_is_a_deterministic_partition() -> None:
    ds = toy()
    train, val = ds.holdout(0.25, seed=3)
    assert (train.n_train, val.n_test) == (15, 5)
    assert torch.equal(train.x_train, val.x_train) and torch.equal(train.x_test, ds.x_test)
    ids = torch.cat([train.x_train.flatten(), val.x_test.flatten()]).long()
    assert sorted(ids.tolist()) == list(range(20))
    assert torch.equal(val.y_test, ds.y_train[val.x_test.flatten().long()])
    again, _ = ds.holdout(0.25, seed=3)
    assert torch.equal(again.x_train, train.x_train)
    assert not torch.equal(ds.holdout(0.25, seed=4)[0].x_train, train.x_train)
    for bad in (0, 1, 1.5, float("nan"), 0.01):
        with pytest.raises(ValueError, match="holdout: fraction="):
            ds.holdout(bad, seed=0)


def test_dataset_validates_its_tensors() -> None:
    x = torch.zeros(3, 1, 2)
    with pytest.raises(ValueError, match="y_train must be an int64 tensor"):
        Dataset("bad", x, torch.zeros(3), x, torch.zeros(3, dtype=torch.long), 2)
    with pytest.raises(ValueError, match="x_test has 3 rows but y_test has 2"):
        Dataset("bad", x, torch.zeros(3, dtype=torch.long), x, torch.zeros(2, dtype=torch.long), 2)
    assert "n_train=20" in repr(toy())


# ----------------------------------------------------------------------------- batching
def test_epoch_order_is_a_pure_function_of_seed_and_epoch() -> None:
    a = epoch_order(1000, seed=5, epoch=2)
    assert torch.equal(a, epoch_order(1000, seed=5, epoch=2))
    assert sorted(a.tolist()) == list(range(1000))
    others = [epoch_order(1000, 5, 3), epoch_order(1000, 6, 2), epoch_order(1000, 2, 5)]
    assert all(not torch.equal(a, b) for b in others)
    torch.manual_seed(0)  # the global generator plays no part
    assert torch.equal(a, epoch_order(1000, seed=5, epoch=2))
    with pytest.raises(ValueError, match=r"epoch=-1 is invalid; expected an integer >= 0"):
        epoch_order(10, seed=0, epoch=-1)


@settings(max_examples=50, deadline=None)
@given(n=st.integers(1, 300), batch_size=st.integers(1, 64), drop_last=st.booleans())
def test_batches_cover_each_example_once(n: int, batch_size: int, drop_last: bool) -> None:
    x = torch.arange(n, dtype=torch.float32).view(n, 1)
    y = torch.arange(n)
    got = list(batches(x, y, batch_size, seed=1, epoch=4, drop_last=drop_last))
    assert len(got) == num_batches(n, batch_size, drop_last=drop_last)
    sizes = [len(b) for b, _ in got]
    assert all(s == batch_size for s in sizes[:-1])
    seen = torch.cat([yb for _, yb in got]) if got else torch.empty(0, dtype=torch.long)
    assert all(torch.equal(xb[:, 0].long(), yb) for xb, yb in got)
    order = epoch_order(n, 1, 4)
    if drop_last:
        assert sizes == [batch_size] * (n // batch_size)
        assert torch.equal(seen, order[: n - n % batch_size])
    else:
        assert torch.equal(seen, order) and sorted(seen.tolist()) == list(range(n))


def test_batches_resume_and_unshuffled() -> None:
    x, y = torch.randn(103, 2), torch.arange(103)
    full = [yb for _, yb in batches(x, y, 10, seed=9, epoch=1)]
    resumed = [yb for _, yb in batches(x, y, 10, seed=9, epoch=1, start_batch=4)]
    assert len(resumed) == 7 and all(torch.equal(a, b) for a, b in zip(full[4:], resumed))
    plain = [yb.tolist() for _, yb in batches(x, y, 50, seed=0, epoch=0, shuffle=False)]
    assert plain == [list(range(50)), list(range(50, 100)), [100, 101, 102]]
    with pytest.raises(ValueError, match="batch_size=0 is invalid"):
        next(batches(x, y, 0, seed=0, epoch=0))
    with pytest.raises(ValueError, match="x has 103 examples but y has 5"):
        next(batches(x, y[:5], 10, seed=0, epoch=0))
