"""Train the evidence ranker (``assistant.ranker``) on the training side of the eval sets.

For every case, the real service plans and retrieves as it would to answer, and every sentence
and table row of the retrieved passages becomes one example: its ``evidence.FEATURES`` and a label,
1 when the span is the case's evidence (it contains an evidence string, or lies inside one) or
states every ``must_include`` group, 0 otherwise, and always 0 for an unanswerable case.

- **Ranking**: a logistic regression (scikit-learn, L2, no intercept) on pairs of one question,
  the difference of an evidence span's standardised features and another span's: a linear score
  that puts evidence above the spans beside it.
- **Answerability**: a logistic regression on one row per question, the best span's features,
  its ranking score and its margin over the runner-up (``ranker.ANSWER_FEATURES``), labelled 1
  when the answer the answerer composes from that ranking is correct by the eval's definition
  (every ``must_include`` group, no ``must_not``). Its rows come from out-of-fold ranking scores (grouped 5-fold
  cross-validation), so it learns from scores like those of questions the ranker never saw.
- **Threshold**: chosen on out-of-fold answerability probabilities; it minimises false refusals
  plus ``WRONG_COST`` times wrong answers (a confident wrong figure is the worst failure),
  averaged over neighbouring thresholds so that one question does not move it far.

The held-out split is refused as training data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from assistant.evals.cases import EvalCase
from assistant.evals.metrics import answer_correct, norm
from assistant.query import QueryPlan
from assistant.records import Answer
from assistant.evidence import FEATURES, Candidate, apart_from_best
from assistant.ranker import ANSWER_FEATURES, ANSWER_SPANS, LinearModel, Ranker

WRONG_COST = 1.25
"""A wrong answer costs more than a false refusal. (2.0, the ratio of the issue's targets, refused
45% of the training questions, the flagship "What did Denmark give IOM unearmarked in 2022?" among
them: the answerability model is not sharp enough for it.)"""
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
    quotes: list[str] = field(default_factory=list)
    """Each row's span."""
    correct_if_answered: Callable[[int, np.ndarray], bool] | None = None
    """``(case index, its rows' scores)`` -> would the answer composed from spans ranked by these
    scores be correct (the eval's definition)? Without it, "right" means evidence among the best
    ``ANSWER_SPANS`` spans."""


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
    """Features and labels of every candidate span, through the loaded service's retriever; and how
    to tell whether the answer the answerer would compose from a ranking is correct."""
    state = service.parts()
    xs, ys, groups, quotes = [], [], [], []
    per_case: list[tuple[QueryPlan, list[Candidate], list[list[Candidate]]]] = []
    for i, case in enumerate(cases):
        plan = state.retriever.plan(case.question, list(case.history) or None)
        hits = state.retriever.gather(plan, top_k)
        cands = state.answerer.candidates(plan, hits)
        per_case.append((plan, cands, state.answerer.part_candidates(plan, hits)))
        for c in cands:
            xs.append([c.features[f] for f in FEATURES])
            ys.append(label(c, case))
            groups.append(i)
            quotes.append(c.quote)

    def correct_if_answered(i: int, scores: np.ndarray) -> bool:
        case, (plan, cands, parts) = cases[i], per_case[i]
        if case.unanswerable or not cands:
            return False
        ranked = [cands[j] for j in np.argsort(-scores)]
        _, text = state.answerer.compose(ranked, plan, parts)
        return answer_correct(Answer(answer=text, answered=True), case.must_include, case.must_not)

    return Examples(np.array(xs, dtype=float), np.array(ys), np.array(groups),
                    np.array([not c.unanswerable for c in cases]), quotes, correct_if_answered)


def _standardise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    return mean, scale


def _logistic(x: np.ndarray, y: np.ndarray, c: float, intercept: bool = True):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=5000, fit_intercept=intercept).fit(x, y)


MAX_NEGATIVES = 40
SIGNS = {"column": 1, "label_cov": 1, "step_row": 1, "figure": 1, "money": 1, "place_row": 1, "year_support": 1,
         "routed": 1, "confidence": 1, "best_confidence": 1, "rank_score": 1, "margin": 1, "names": 1,
         "year_elsewhere": -1, "names_missing": -1, "no_number": -1, "missing_key": -1, "missing_in_passage": -1}
"""Features whose meaning fixes the sign of their weight (a value in the asked column, a higher
ranking score can only help; a missing name only hurt): learned with the other sign, from the few
questions that pull it there, they are left out of the model."""


def fit_ranking(x: np.ndarray, y: np.ndarray, group: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(weights, mean, scale) of the pairwise ranking model."""
    mean, scale = _standardise(x)
    z = (x - mean) / scale
    rng = np.random.default_rng(0)
    diffs = []
    for g in np.unique(group):
        rows = np.flatnonzero(group == g)
        pos, neg = rows[y[rows] == 1], rows[y[rows] == 0]
        if len(pos) == 0 or len(neg) == 0:
            continue
        if len(neg) > MAX_NEGATIVES:
            neg = rng.choice(neg, MAX_NEGATIVES, replace=False)
        for p in pos:
            diffs.append(z[p] - z[neg])
    d = np.vstack(diffs)
    w, _ = signed_logistic(np.vstack([d, -d]), np.r_[np.ones(len(d)), np.zeros(len(d))], c, FEATURES, intercept=False)
    return w, mean, scale


def signed_logistic(x: np.ndarray, y: np.ndarray, c: float, names: Sequence[str],
                    intercept: bool = True) -> tuple[np.ndarray, float]:
    """(weights, intercept) of a logistic regression in which a feature of ``SIGNS`` whose weight
    comes out with the wrong sign is left out, and the rest refit."""
    sign = np.array([SIGNS.get(f, 0) for f in names])
    free = np.ones(len(names), dtype=bool)
    while True:
        model = _logistic(x[:, free], y, c, intercept=intercept)
        w = np.zeros(len(names))
        w[free] = model.coef_[0]
        wrong = free & (w * sign < 0)
        if not wrong.any():
            return w, float(model.intercept_[0]) if intercept else 0.0
        free &= ~wrong


def question_rows(score: np.ndarray, ex: Examples) -> tuple[np.ndarray, np.ndarray]:
    """Per case: the answerability features of its best span, and whether an answer from it is right."""
    feats, right = [], []
    for i in range(len(ex.answerable)):
        rows = np.flatnonzero(ex.group == i)
        if len(rows) == 0:
            feats.append(np.r_[np.zeros(len(FEATURES)), -10.0, 0.0, 0.0])
            right.append(0)
            continue
        order = rows[np.argsort(-score[rows])]
        if ex.quotes:
            near = order[:3 * ANSWER_SPANS]
            order = near[apart_from_best([ex.quotes[j] for j in near])]
        margin = score[order[0]] - score[order[1]] if len(order) > 1 else 0.0
        confidence = ex.x[order[:ANSWER_SPANS], FEATURES.index("confidence")].max()
        feats.append(np.r_[ex.x[order[0]], score[order[0]], margin, confidence])
        if ex.correct_if_answered is not None:
            right.append(int(ex.correct_if_answered(i, score[rows])))
        else:
            right.append(int(ex.y[order[:ANSWER_SPANS]].max()))
    return np.array(feats), np.array(right)


THRESHOLDS = np.round(np.arange(0.02, 0.99, 0.01), 2)
"""The thresholds an operating point is chosen among."""
SMOOTHING = 0.05
"""The cost at a threshold is averaged over thresholds this close: its curve is flat near its
minimum, and the middle of that valley moves less with one question than its lowest dip."""


def operating_point(outcomes: list[tuple[float, bool, bool]]) -> tuple[float, dict]:
    """The threshold that minimises false refusals + WRONG_COST x wrong answers (smoothed over
    ``SMOOTHING``), and its figures. ``outcomes``: per case (probability, the answer is right, the
    case is answerable)."""
    p = np.array([o[0] for o in outcomes])
    ok = np.array([o[1] for o in outcomes], dtype=bool)
    answerable = np.array([o[2] for o in outcomes], dtype=bool)
    n_ans = max(int(answerable.sum()), 1)

    def figures(t: float) -> tuple[int, int, int]:
        answered = p >= t
        right = int((answered & ok & answerable).sum())
        return right, int(answered.sum()) - right, int((answerable & ~answered).sum())

    cost = np.array([fr + WRONG_COST * wrong for _, wrong, fr in map(figures, THRESHOLDS)])
    smoothed = [cost[np.abs(THRESHOLDS - t) <= SMOOTHING + 1e-9].mean() for t in THRESHOLDS]
    t = float(THRESHOLDS[int(np.argmin(smoothed))])
    right, wrong, false_refusals = figures(t)
    traps = p[~answerable]
    return t, {"right": round(right / n_ans, 4), "wrong": round(wrong / n_ans, 4),
               "false_refusals": round(false_refusals / n_ans, 4),
               "refused_unanswerable": round(float((traps < t).mean()) if len(traps) else 0.0, 4)}


def _named(values, names) -> dict[str, float]:
    return {f: round(float(v), 5) for f, v in zip(names, values)}


def train(ex: Examples, folds: int = 5, c: float = 1.0, sets: Sequence[str] = (),
          ranking: LinearModel | None = None) -> Ranker:
    """``ranking``: a fixed ranking model to learn the answerability of (for an ablation), instead of
    learning one."""
    from sklearn.model_selection import GroupKFold, StratifiedKFold

    if ex.y.sum() == 0:
        raise TrainingError("no positive example: do the cases' evidence strings match retrieved spans?")
    if ranking is not None:
        oof_score = np.array([ranking.value(dict(zip(FEATURES, row))) for row in ex.x])
    else:
        oof_score = np.zeros(len(ex.y))
        for train_rows, test_rows in GroupKFold(n_splits=folds).split(ex.x, ex.y, ex.group):
            w, mean, scale = fit_ranking(ex.x[train_rows], ex.y[train_rows], ex.group[train_rows], c)
            oof_score[test_rows] = ((ex.x[test_rows] - mean) / scale) @ w
    qx, qy = question_rows(oof_score, ex)
    q_mean, q_scale = _standardise(qx)
    qz = (qx - q_mean) / q_scale
    oof_p = np.zeros(len(qy))
    for train_rows, test_rows in StratifiedKFold(n_splits=folds, shuffle=True, random_state=0).split(qz, qy):
        w, b = signed_logistic(qz[train_rows], qy[train_rows], c, ANSWER_FEATURES)
        oof_p[test_rows] = 1.0 / (1.0 + np.exp(-(qz[test_rows] @ w + b)))
    threshold, cv = operating_point([(float(p), bool(r), bool(a)) for p, r, a in zip(oof_p, qy, ex.answerable)])
    cv["answer_correct_if_all_answered"] = round(float(qy[ex.answerable].mean()), 4)

    if ranking is None:
        w, mean, scale = fit_ranking(ex.x, ex.y, ex.group, c)
        ranking = LinearModel(_named(w, FEATURES), 0.0, _named(mean, FEATURES), _named(scale, FEATURES))
    answer_weights, answer_bias = signed_logistic(qz, qy, c, ANSWER_FEATURES)
    return Ranker(
        ranking=ranking,
        answerability=LinearModel(_named(answer_weights, ANSWER_FEATURES), round(answer_bias, 5),
                                  _named(q_mean, ANSWER_FEATURES), _named(q_scale, ANSWER_FEATURES)),
        threshold=round(threshold, 4),
        trained_on={"sets": list(sets), "cases": int(len(ex.answerable)), "answerable": int(ex.answerable.sum()),
                    "spans": int(len(ex.y)), "positive_spans": int(ex.y.sum()), "folds": folds, "C": c,
                    "wrong_cost": WRONG_COST, "cross_validated": cv},
    )
