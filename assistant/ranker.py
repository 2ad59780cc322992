"""The learned evidence ranker and answerability model: two small linear models over span features.

``evidence.score_candidates`` describes every sentence and table row of the retrieved passages
by ``evidence.FEATURES``. The **ranking** model (trained on pairs: the evidence span against the
other spans of the same question) gives each span a score; the best-scoring span leads the
answer. The **answerability** model reads the best span's features, its score and its margin
over the runner-up (``ANSWER_FEATURES``) and gives the probability that stating it answers the
question; below ``threshold`` the answerer refuses. Both are learned by ``assistant eval
train-ranker`` on the training side of the eval sets (never the held-out split) and committed as
``data/ranker.json``.
"""

from __future__ import annotations

import importlib.resources
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from assistant.evidence import FEATURES

MODEL_FILE = "ranker.json"
ANSWER_FEATURES = FEATURES + ("rank_score", "margin", "best_confidence")
"""The best span's features, its ranking score, its margin over the runner-up, and the highest
``confidence`` among the spans an answer would state (``ANSWER_SPANS``)."""
ANSWER_SPANS = 3
"""An answer states the best span and may add supporting ones."""


class RankerError(RuntimeError):
    pass


@dataclass(frozen=True)
class LinearModel:
    """``bias + sum(w * (x - mean) / scale)`` over named features."""

    weights: dict[str, float]
    bias: float = 0.0
    mean: dict[str, float] = field(default_factory=dict)
    scale: dict[str, float] = field(default_factory=dict)

    def value(self, features: dict[str, float]) -> float:
        z = self.bias
        for name, w in self.weights.items():
            z += w * (features.get(name, 0.0) - self.mean.get(name, 0.0)) / (self.scale.get(name) or 1.0)
        return z


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


@dataclass(frozen=True)
class Ranker:
    ranking: LinearModel
    answerability: LinearModel
    threshold: float
    """The probability the best span needs for the question to be answered."""
    trained_on: dict = field(default_factory=dict)
    """How the model was made: case files, counts, cross-validated figures."""

    def score(self, features: dict[str, float]) -> float:
        return self.ranking.value(features)

    def answer_probability(self, ranked: list[tuple[dict[str, float], float]]) -> float:
        """``ranked``: (features, ranking score) of the spans, best first."""
        if not ranked:
            return 0.0
        (best, score), margin = ranked[0], (ranked[0][1] - ranked[1][1] if len(ranked) > 1 else 0.0)
        confidence = max(f.get("confidence", 0.0) for f, _ in ranked[:ANSWER_SPANS])
        return sigmoid(self.answerability.value({**best, "rank_score": score, "margin": margin,
                                                 "best_confidence": confidence}))

    @classmethod
    def prior(cls) -> "Ranker":
        """Untrained: the hand-set prior score ranks, and decides at 0.5. What training starts from."""
        return cls(ranking=LinearModel({"prior": 1.0}), answerability=LinearModel({"prior": 4.0}, bias=-2.0),
                   threshold=0.5, trained_on={"untrained": True})

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path | None = None) -> "Ranker":
        try:
            text = (Path(path).read_text(encoding="utf-8") if path else
                    importlib.resources.files("assistant.data").joinpath(MODEL_FILE).read_text(encoding="utf-8"))
            data = json.loads(text)
            ranker = cls(ranking=LinearModel(**data["ranking"]), answerability=LinearModel(**data["answerability"]),
                         threshold=data["threshold"], trained_on=data.get("trained_on", {}))
        except (OSError, ValueError, TypeError, KeyError) as e:
            raise RankerError(f"cannot load the evidence ranker ({path or MODEL_FILE}): {e}; "
                              "train it with `assistant eval train-ranker`") from None
        unknown = (set(ranker.ranking.weights) - set(FEATURES)) | (set(ranker.answerability.weights) - set(ANSWER_FEATURES))
        if unknown:
            raise RankerError(f"the evidence ranker uses unknown features {sorted(unknown)}: retrain it")
        return ranker
