"""Train the evidence ranker (``assistant.ranker``) on the training side of the eval sets.

For every case, the real service plans and retrieves as it would to answer, and every sentence
and table row of the retrieved passages becomes one example: its ``evidence.FEATURES`` and a label,
1 when the span is the case's evidence (it contains an evidence string, or lies inside one) or
states every ``must_include`` group, 0 otherwise, and always 0 for an unanswerable case. A
logistic regression (scikit-learn, L2) is fitted on standardised features.

The refusal threshold is chosen on out-of-fold predictions (grouped 5-fold cross-validation, so
no question is scored by a model that saw it): per question, the best span by its out-of-fold
probability is *right* when its label is 1; the threshold minimises false refusals plus
``WRONG_COST`` times wrong answers (a confident wrong figure is the worst failure). The
held-out split is refused as training data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from assistant.evals.cases import EvalCase
from assistant.evals.metrics import norm
from assistant.evidence import FEATURES, Candidate
from assistant.ranker import Ranker

WRONG_COST = 3.0
HELDOUT_NAME = "heldout"


class TrainingError(ValueError):
    pass


@dataclass
class Examples:
    x: np.ndarray
    y: np.ndarray
    group: np.ndarray
    """The case index of each row."""
    answerable: np.ndarray
    """Per case."""


def label(cand: Candidate, case: EvalCase) -> int:
    if case.unanswerable:
        return 0
    quote = norm(cand.quote)
    if any(norm(s) in quote for s in case.must_not):
        return 0
    for ev in case.evidence:
        e = norm(ev)
        if e and (e in quote or (len(quote) >= 20 and quote in e)):
            return 1
    groups = [[g] if isinstance(g, str) else g for g in case.must_include]
    return int(bool(groups) and all(any(norm(o) in quote for o in g) for g in groups))


def collect(service, cases: Sequence[EvalCase], top_k: int) -> Examples:
    """Features and labels of every candidate span, through the loaded service's retriever."""
    state = service._current()
    xs, ys, groups = [], [], []
    for i, case in enumerate(cases):
        plan = state.retriever.plan(case.question, list(case.history) or None)
        hits = state.retriever.search(plan, top_k)
        for c in state.answerer.candidates(plan, hits):
            xs.append([c.features[f] for f in FEATURES])
            ys.append(label(c, case))
            groups.append(i)
    return Examples(np.array(xs, dtype=float), np.array(ys), np.array(groups),
                    np.array([not c.unanswerable for c in cases]))


def _fit(x: np.ndarray, y: np.ndarray, c: float):
    from sklearn.linear_model import LogisticRegression

    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(C=c, max_iter=2000).fit((x - mean) / scale, y)
    return model, mean, scale


def _outcomes(prob: np.ndarray, ex: Examples) -> list[tuple[float, bool, bool]]:
    """Per case: (best probability, its span is right, the case is answerable)."""
    out = []
    for i in range(len(ex.answerable)):
        rows = np.flatnonzero(ex.group == i)
        if len(rows) == 0:
            out.append((0.0, False, bool(ex.answerable[i])))
            continue
        best = rows[np.argmax(prob[rows])]
        out.append((float(prob[best]), bool(ex.y[best]), bool(ex.answerable[i])))
    return out


def operating_point(outcomes: list[tuple[float, bool, bool]]) -> tuple[float, dict]:
    """The threshold that minimises false refusals + WRONG_COST x wrong answers, and its figures."""
    n_ans = sum(a for _, _, a in outcomes) or 1
    best = None
    for t in sorted({round(p, 3) for p, _, _ in outcomes} | {0.5}):
        answered = [(ok, a) for p, ok, a in outcomes if p >= t]
        right = sum(1 for ok, a in answered if ok and a)
        wrong = len(answered) - right
        false_refusals = sum(1 for p, ok, a in outcomes if a and p < t)
        cost = false_refusals + WRONG_COST * wrong
        if best is None or cost < best[0]:
            traps = [p for p, _, a in outcomes if not a]
            best = (cost, t, {"right": round(right / n_ans, 4), "wrong": round(wrong / n_ans, 4),
                              "false_refusals": round(false_refusals / n_ans, 4),
                              "refused_unanswerable": round(sum(p < t for p in traps) / max(len(traps), 1), 4)})
    return best[1], best[2]


def train(ex: Examples, folds: int = 5, c: float = 1.0, sets: Sequence[str] = ()) -> Ranker:
    from sklearn.model_selection import GroupKFold

    if ex.y.sum() == 0:
        raise TrainingError("no positive example: do the cases' evidence strings match retrieved spans?")
    oof = np.zeros(len(ex.y))
    for train_rows, test_rows in GroupKFold(n_splits=folds).split(ex.x, ex.y, ex.group):
        model, mean, scale = _fit(ex.x[train_rows], ex.y[train_rows], c)
        oof[test_rows] = model.predict_proba((ex.x[test_rows] - mean) / scale)[:, 1]
    threshold, cv = operating_point(_outcomes(oof, ex))
    model, mean, scale = _fit(ex.x, ex.y, c)
    return Ranker(
        weights={f: round(float(w), 5) for f, w in zip(FEATURES, model.coef_[0])},
        bias=round(float(model.intercept_[0]), 5),
        threshold=threshold,
        mean={f: round(float(m), 5) for f, m in zip(FEATURES, mean)},
        scale={f: round(float(s), 5) for f, s in zip(FEATURES, scale)},
        trained_on={"sets": list(sets), "cases": int(len(ex.answerable)), "answerable": int(ex.answerable.sum()),
                    "spans": int(len(ex.y)), "positive_spans": int(ex.y.sum()), "folds": folds, "C": c,
                    "wrong_cost": WRONG_COST, "cross_validated": cv},
    )
