"""Lossless compression of bi-level images: a VLAE with bits-back coding over ANS.

Images are 2-D numpy arrays of 0/1 (uint8 or bool; 1 = ink), stored in the archive as
``00000.pbm``, ``00001.pbm``, ... exactly as ``vlae-zip compress`` stores a folder of
such PBM files: with the same options, the archive bytes are the same.

>>> import numpy as np, vlae_zip
>>> digits = np.random.default_rng(0).integers(0, 2, (3, 28, 28), dtype=np.uint8)
>>> data = vlae_zip.compress(digits)
>>> all((a == b).all() for a, b in zip(vlae_zip.decompress(data), digits))
True
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import numpy.typing as npt

from . import _native

__all__ = ["compress", "decompress", "info", "models", "elbo"]

# The types stated here are the package's (py.typed): no separate stub repeats them.
Images = Union[npt.NDArray[np.uint8], npt.NDArray[np.bool_], Sequence[npt.ArrayLike]]


def _as_images(images: Images) -> List[np.ndarray]:
    """C-contiguous 2-D uint8 arrays from a 3-D array or a sequence of 2-D arrays."""
    if isinstance(images, np.ndarray):
        if images.ndim != 3:
            raise ValueError(
                f"expected a 3-D array (N, H, W) or a list of 2-D arrays, got shape {images.shape}"
            )
        seq: Sequence[Any] = list(images)
    else:
        seq = images
    width = max(5, len(str(max(len(seq) - 1, 0))))
    out = []
    for i, img in enumerate(seq):
        a = np.asarray(img)
        name = f"{i:0{width}d}.pbm"
        if a.ndim != 2:
            raise ValueError(f"image {name!r}: expected a 2-D array, got shape {a.shape}")
        if a.dtype == np.bool_:
            a = a.view(np.uint8)
        elif a.dtype != np.uint8:
            if not np.issubdtype(a.dtype, np.integer):
                raise TypeError(f"image {name!r}: dtype {a.dtype}: expected uint8 or bool")
            bad = (a < 0) | (a > 1)
            if bad.any():
                v = a[bad].flat[0]
                raise ValueError(
                    f"image {name!r}: pixel value {v}: images are bi-level, 0 or 1"
                )
            a = a.astype(np.uint8)
        out.append(np.ascontiguousarray(a))
    return out


def compress(
    images: Images,
    model: str = "auto",
    iw: int = 1,
    threads: Optional[int] = None,
    lanes: Optional[int] = None,
    max_memory_bytes: Optional[int] = None,
) -> bytes:
    """Compresses images (a 3-D array (N, H, W) or a list of 2-D arrays of any sizes,
    1 = ink) into archive bytes.

    ``model``: ``"auto"`` (each lane with whichever built-in model or coder codes it
    smallest) or a built-in name (see :func:`models`). ``iw``: importance samples per
    tile (``--iw``). ``threads``: a pool of that many threads (default: all cores).
    ``lanes``: at least that many lanes (``--lanes``). ``max_memory_bytes``: the most
    memory coding may hold (``--memory-limit``): fewer threads where all would need more
    (the same bytes), else ValueError before coding. Raises ValueError for a pixel other
    than 0 or 1, an empty image or an unknown model.
    """
    return _native.compress(_as_images(images), model, iw, threads, lanes, max_memory_bytes)


def decompress(
    data: bytes, names: Optional[Sequence[str]] = None, threads: Optional[int] = None
) -> List[npt.NDArray[np.uint8]]:
    """The images of an archive as 2-D uint8 arrays (1 = ink), in archive order; with
    ``names``, only those images, in that order. Raises ValueError for a corrupt archive
    or a name the archive does not hold."""
    pairs = _native.decompress(bytes(data), None if names is None else list(names), threads)
    return [a for _, a in pairs]


def info(data: bytes) -> Dict[str, Any]:
    """What an archive holds, without decoding it: ``images``, ``lanes``, ``coders``
    (one per lane), ``models``, ``bytes``, ``bits_per_image``, ``latent_bits`` and
    ``names``."""
    return _native.info(bytes(data))


def models() -> List[Dict[str, Any]]:
    """The built-in models: ``name``, ``trained_on``, ``tile``, ``parameters``, ``auto``."""
    return _native.models()


def elbo(images: Images, model: str = "auto", threads: Optional[int] = None) -> float:
    """The model's −ELBO in bits per image (as ``vlae-zip eval --json`` reports it), the
    rate bits-back coding approaches: ``len(compress(x)) * 8 / len(x)`` is the rate
    achieved. ``"auto"`` means the first built-in model."""
    return _native.elbo(_as_images(images), model, threads)
