from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import numpy.typing as npt

Images = Union[npt.NDArray[np.uint8], npt.NDArray[np.bool_], Sequence[npt.ArrayLike]]

__all__ = ["compress", "decompress", "info", "models", "elbo"]

def compress(
    images: Images,
    model: str = "auto",
    iw: int = 1,
    threads: Optional[int] = None,
    lanes: Optional[int] = None,
    max_memory_bytes: Optional[int] = None,
) -> bytes: ...
def decompress(
    data: bytes, names: Optional[Sequence[str]] = None, threads: Optional[int] = None
) -> List[npt.NDArray[np.uint8]]: ...
def info(data: bytes) -> Dict[str, Any]: ...
def models() -> List[Dict[str, Any]]: ...
def elbo(images: Images, model: str = "auto", threads: Optional[int] = None) -> float: ...
