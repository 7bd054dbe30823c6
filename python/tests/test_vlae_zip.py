import json
import subprocess

import numpy as np
import pytest

import vlae_zip
from conftest import TEST_DIGITS, write_pbm


def random_image(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    # Blobs more than noise, so that the models see some structure.
    return (rng.random((h, w)) < rng.uniform(0.05, 0.6)).astype(np.uint8)


def test_round_trip_of_random_sizes():
    rng = np.random.default_rng(1)
    for _ in range(4):
        n, h, w = rng.integers(1, 6), rng.integers(1, 70), rng.integers(1, 70)
        images = np.stack([random_image(rng, h, w) for _ in range(n)])
        data = vlae_zip.compress(images)
        assert isinstance(data, bytes)
        back = vlae_zip.decompress(data)
        assert len(back) == n
        for a, b in zip(back, images):
            assert a.dtype == np.uint8 and a.shape == b.shape
            np.testing.assert_array_equal(a, b)


def test_a_list_of_mixed_sizes_and_dtypes(digits):
    rng = np.random.default_rng(2)
    images = [
        digits[0],
        random_image(rng, 3, 200),
        random_image(rng, 90, 1).astype(bool),
        np.ones((1, 1), np.int64),
        digits[1][::2, ::-1],  # not contiguous
    ]
    data = vlae_zip.compress(images, threads=2)
    back = vlae_zip.decompress(data, threads=1)
    assert [a.shape for a in back] == [np.shape(i) for i in images]
    for a, b in zip(back, images):
        np.testing.assert_array_equal(a, np.asarray(b, np.uint8))
    meta = vlae_zip.info(data)
    assert meta["images"] == 5 and meta["bytes"] == len(data)
    assert meta["names"] == [f"{i:05d}.pbm" for i in range(5)]
    assert len(meta["coders"]) == meta["lanes"]
    picked = vlae_zip.decompress(data, names=["00004.pbm", "00000.pbm"])
    np.testing.assert_array_equal(picked[0], images[4])
    np.testing.assert_array_equal(picked[1], images[0])
    with pytest.raises(ValueError, match="no image"):
        vlae_zip.decompress(data, names=["nope.pbm"])


def test_corrupt_archives_and_grey_images_raise_value_error(digits):
    data = bytearray(vlae_zip.compress(digits[:20]))
    data[len(data) // 2] ^= 0x10
    with pytest.raises(ValueError):
        vlae_zip.decompress(bytes(data))
    with pytest.raises(ValueError):
        vlae_zip.decompress(b"not an archive")
    with pytest.raises(ValueError):
        vlae_zip.info(b"")
    grey = digits[:2].copy()
    grey[1, 5, 5] = 7
    with pytest.raises(ValueError, match="pixel value 7"):
        vlae_zip.compress(grey)
    with pytest.raises(ValueError, match="pixel value"):
        vlae_zip.compress([np.full((4, 4), 2, np.int32)])
    with pytest.raises(ValueError):
        vlae_zip.compress(digits[:1], model="no-such-model")
    with pytest.raises(ValueError):
        vlae_zip.compress(digits[0])  # one 2-D array is not a set of images


def test_models_are_listed():
    ms = vlae_zip.models()
    names = [m["name"] for m in ms]
    assert "mnist" in names
    for m in ms:
        assert set(m) >= {"name", "trained_on", "tile", "parameters"}
        assert m["parameters"] > 0 and m["tile"] > 0


@pytest.mark.parametrize("options", [[], ["--model", "mnist", "--iw", "2"]])
def test_same_bytes_as_the_command_line_tool(cli, digits, tmp_path, options):
    rng = np.random.default_rng(3)
    images = [digits[i] for i in range(12)] + [random_image(rng, 40, 33)]
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, img in enumerate(images):
        write_pbm(folder / f"{i:05d}.pbm", img)
    out = tmp_path / "x.vlz"
    subprocess.run([str(cli), "compress", str(folder), "-o", str(out), "-q", *options], check=True)
    kwargs = {}
    if options:
        kwargs = {"model": "mnist", "iw": 2}
    assert vlae_zip.compress(images, **kwargs) == out.read_bytes()


def test_elbo_matches_eval(cli, digits):
    run = subprocess.run(
        [str(cli), "eval", str(TEST_DIGITS), "--limit", "100", "--json", "-q"],
        check=True,
        capture_output=True,
        text=True,
    )
    expected = json.loads(run.stdout)["neg_elbo_bits_per_image"]
    got = vlae_zip.elbo(digits[:100])
    assert got == pytest.approx(expected, rel=1e-6, abs=1e-6)
    # The rate achieved against the bound, in two lines.
    rate = len(vlae_zip.compress(digits[:100], model="mnist")) * 8 / 100
    assert 0.8 * got < rate < 1.5 * got


def test_shards_compress_in_parallel_threads(digits):
    import concurrent.futures

    shards = np.array_split(digits[:200], 4)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        archives = list(pool.map(lambda s: vlae_zip.compress(s, threads=1), shards))
    assert archives == [vlae_zip.compress(s) for s in shards]
    back = np.concatenate([np.stack(vlae_zip.decompress(a)) for a in archives])
    np.testing.assert_array_equal(back, digits[:200])


def test_a_memory_limit_below_one_thread_is_refused(digits):
    with pytest.raises(ValueError, match="compressing needs"):
        vlae_zip.compress(digits[:10], max_memory_bytes=1000)
