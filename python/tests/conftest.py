"""Shared helpers: the repository root, the built command-line tool, the MNIST test digits."""

import gzip
import os
import pathlib
import shutil

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
TEST_DIGITS = ROOT / "corpus" / "binarized-mnist" / "test-images.idx3-ubyte.gz"


def read_idx(path: pathlib.Path) -> np.ndarray:
    """The images of an IDX3 file (gzip or not) as an (N, H, W) uint8 array."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    assert int.from_bytes(data[:4], "big") == 0x803, "not an IDX3 file of bytes"
    n, h, w = (int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(3))
    return np.frombuffer(data, np.uint8, n * h * w, 16).reshape(n, h, w)


def write_pbm(path: pathlib.Path, img: np.ndarray) -> None:
    """A P4 (binary) PBM: rows packed MSB first, each padded to a whole byte."""
    h, w = img.shape
    packed = np.packbits(img.astype(np.uint8), axis=1)
    path.write_bytes(b"P4\n%d %d\n" % (w, h) + packed.tobytes())


@pytest.fixture(scope="package")
def cli() -> pathlib.Path:
    """The release build of the command-line tool (`cargo build --release`)."""
    exe = os.environ.get("VLAE_ZIP_CLI") or ROOT / "target" / "release" / "vlae-zip"
    exe = pathlib.Path(exe)
    if not exe.exists():
        found = shutil.which("vlae-zip")
        if found is None:
            pytest.skip("no vlae-zip binary: run `cargo build --release` in the repository root")
        exe = pathlib.Path(found)
    return exe


@pytest.fixture(scope="package")
def digits() -> np.ndarray:
    return read_idx(TEST_DIGITS)
