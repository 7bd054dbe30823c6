from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import numpy.typing as npt

def compress(
    images: List[npt.NDArray[np.uint8]],
    model: str = "auto",
    iw: int = 1,
    threads: Optional[int] = None,
    lanes: Optional[int] = None,
    max_memory_bytes: Optional[int] = None,
) -> bytes: ...
def decompress(
    data: bytes, names: Optional[List[str]] = None, threads: Optional[int] = None
) -> List[Tuple[str, npt.NDArray[np.uint8]]]: ...
def info(data: bytes) -> Dict[str, Any]: ...
def models() -> List[Dict[str, Any]]: ...
def elbo(
    images: List[npt.NDArray[np.uint8]], model: str = "auto", threads: Optional[int] = None
) -> float: ...
