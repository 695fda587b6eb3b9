"""Learning from staff corrections: nearest neighbours over the embeddings of corrected tickets.

When staff change a triaged ticket's category, priority or assignee, the change is stored as a labelled
example (`services.corrections`). Each worker keeps their embeddings in memory (read in id order, so only new
ones are embedded) and the offline triage takes a corrected value from the most similar corrected ticket when
it is very similar (cosine >= SIMILAR): the same kind of ticket goes right the next time, with no retraining.
The same vectors and lookup can serve "similar tickets" later.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ticketing_app.ai.embedding import DIMENSIONS, Vectors, get_embedder

SIMILAR = 0.85  # USE cosine: rephrasings of one problem score about 0.85-0.95, different problems below 0.7


@dataclass(frozen=True)
class Label:
    """What staff set on a corrected ticket, and how similar that ticket is to the one being triaged."""

    correction_id: int
    field: str
    value: str
    skills: tuple[str, ...]
    similarity: float


class CorrectionMemory:
    """The corrected tickets' vectors and labels; safe to share between threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._vectors: Vectors = np.zeros((0, DIMENSIONS), dtype=np.float32)
        self._labels: list[tuple[int, str, str, tuple[str, ...]]] = []
        self.last_id = 0

    def __len__(self) -> int:
        return len(self._labels)

    def add(self, examples: Iterable[tuple[int, str, str, str, tuple[str, ...]]]) -> int:
        """Add (id, model text, field, value, skills) rows with ids above `last_id`; returns how many."""
        new = [e for e in examples if e[0] > self.last_id]
        if not new:
            return 0
        vectors = get_embedder().encode([text for _, text, _, _, _ in new])
        with self._lock:  # another thread may have added some of them meanwhile: keep each id once
            keep = [n for n, e in enumerate(new) if e[0] > self.last_id]
            if not keep:
                return 0
            self._vectors = np.vstack([self._vectors, vectors[keep]])
            self._labels.extend(new[n][:1] + new[n][2:] for n in keep)
            self.last_id = max(self.last_id, max(new[n][0] for n in keep))
        return len(keep)

    def nearest(self, vector: Vectors, threshold: float = SIMILAR) -> dict[str, Label]:
        """Per corrected field, the label of the most similar corrected ticket at or above `threshold` (the
        latest correction wins among equally similar ones)."""
        with self._lock:
            vectors, labels = self._vectors, list(self._labels)
        if not labels:
            return {}
        similarities = vectors @ vector.astype(np.float32)
        found: dict[str, Label] = {}
        for index in np.argsort(-similarities, kind="stable"):
            similarity = float(similarities[index])
            if similarity < threshold:
                break
            cid, field, value, skills = labels[index]
            best = found.get(field)
            if best is None or (similarity - best.similarity < 1e-6 and cid > best.correction_id):
                found[field] = Label(cid, field, value, skills, similarity)
        return found

    def clear(self) -> None:
        with self._lock:
            self._vectors = np.zeros((0, DIMENSIONS), dtype=np.float32)
            self._labels = []
            self.last_id = 0


@lru_cache(maxsize=1)
def correction_memory() -> CorrectionMemory:
    """The process's memory of corrections (filled by the triage handler before each batch)."""
    return CorrectionMemory()


def learn(rows: Iterable[tuple[int, str, str, str, str, tuple[str, ...]]]) -> int:
    """Add corrections given as (id, title, description, field, value, skills); returns how many were new."""
    from ticketing_app.ai.offline import analyse  # the text the model reads (instructions, alarm words out)
    from ticketing_app.ai.types import TriageRequest

    memory = correction_memory()
    fresh = [row for row in rows if row[0] > memory.last_id]
    return memory.add(
        (cid, analyse(TriageRequest(title=title, description=description)).text, field, value, skills)
        for cid, title, description, field, value, skills in fresh
    )
