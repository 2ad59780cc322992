"""The regression gate: compare a run with the accepted state in ``evals/baseline.json``.

A run regresses when

- a gated metric (``metrics.GATED_METRICS``: hit@k, MRR, answer/citation correctness, cited
  gold document, refusal accuracy, false-refusal rate) overall or for a kind is worse than the
  baseline by more than ``tolerance`` (absolute, default 0.02), or
- a question check that passed in the baseline fails now (checks: ``retrieved`` = evidence in
  the top_k passages, ``correct``, ``citation`` for answerable questions; ``refusal`` for
  unanswerable ones).

The answer length (``answer_chars_p50``) regresses when it grows by more than
``LENGTH_TOLERANCE`` (relative): answers that state the answer stay short.

Latency is reported but never gated (it depends on the machine). Questions that are new or
gone since the baseline are listed, not failed; figures are compared on the baseline's questions
only (new questions are left out of them), and not at all when baseline questions are missing
from the run (e.g. ``--set`` with another file): then only the shared questions are gated. ``--update-baseline`` writes a new baseline
deliberately.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from assistant.evals.metrics import GATED_METRICS, LOWER_IS_BETTER, summarize_groups

DEFAULT_TOLERANCE = 0.02
LENGTH_TOLERANCE = 0.25
BASELINE_VERSION = 1
GATED_SCOPES = ("overall", "by_kind")


class BaselineError(ValueError):
    pass


@dataclass
class GateResult:
    tolerance: float
    metric_regressions: list[dict] = field(default_factory=list)
    question_regressions: list[dict] = field(default_factory=list)
    improvements: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.metric_regressions or self.question_regressions)

    def to_dict(self) -> dict:
        return {
            "tolerance": self.tolerance,
            "failed": self.failed,
            "metric_regressions": self.metric_regressions,
            "question_regressions": self.question_regressions,
            "improvements": self.improvements,
            "warnings": self.warnings,
        }


def make_baseline(report: dict) -> dict:
    """The accepted state: settings of the run, its figures and per-question pass/fail."""
    return {
        "version": BASELINE_VERSION,
        "created": report["created"],
        "top_k": report["top_k"],
        "depth": report["depth"],
        "backend": report.get("backend"),
        "sets": report["sets"],
        "metrics": report["metrics"],
        "questions": {
            r["id"]: {"kind": r["kind"], "passed": r["passed"], "checks": r["checks"]} for r in report["rows"]
        },
    }


def load_baseline(path: Path) -> dict | None:
    """The baseline, or None when the file does not exist."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise BaselineError(f"{path}: not a readable baseline ({e})") from None
    if not isinstance(data, dict) or "metrics" not in data or "questions" not in data:
        raise BaselineError(f"{path}: not a baseline (needs `metrics` and `questions`)")
    return data


def write_baseline(path: Path, report: dict) -> dict:
    data = make_baseline(report)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return data


def _scopes(metrics: dict) -> list[tuple[str, dict]]:
    out = []
    if "overall" in GATED_SCOPES and "overall" in metrics:
        out.append(("overall", metrics["overall"]))
    for group in ("by_kind", "by_doc"):
        if group in GATED_SCOPES:
            for name, vals in (metrics.get(group) or {}).items():
                out.append((f"{group.removeprefix('by_')}={name}", vals))
    return out


def compare(report: dict, baseline: dict, tolerance: float = DEFAULT_TOLERANCE) -> GateResult:
    """Regressions of ``report`` against ``baseline`` (both as written by this package)."""
    gate = GateResult(tolerance=tolerance)
    for key in ("top_k", "depth"):
        if baseline.get(key) is not None and baseline.get(key) != report.get(key):
            gate.warnings.append(
                f"baseline was made with {key}={baseline.get(key)}, this run used {key}={report.get(key)}: "
                "figures are not comparable"
            )

    base_q = baseline.get("questions") or {}
    current = {r["id"]: r for r in report["rows"]}
    gone = sorted(set(base_q) - set(current))
    new = sorted(set(current) - set(base_q))
    if gone:
        gate.warnings.append(f"{len(gone)} baseline question(s) not in this run: {', '.join(gone[:20])}; "
                             "figures are not comparable, so only questions are gated")
    if new:
        gate.warnings.append(f"{len(new)} question(s) not in the baseline (not gated): {', '.join(new[:20])}")

    # Figures are compared on the baseline's questions only (new questions would shift them).
    if gone:
        cur_metrics = None
    elif new:
        cur_metrics = summarize_groups([r for r in report["rows"] if r["id"] in base_q], report["depth"])
    else:
        cur_metrics = report["metrics"]
    base_scopes = dict(_scopes(baseline.get("metrics") or {}))
    for scope, cur in _scopes(cur_metrics) if cur_metrics else []:
        base = base_scopes.get(scope)
        if base is None:
            continue
        for metric in GATED_METRICS:
            b, c = base.get(metric), cur.get(metric)
            if b is None or c is None:
                continue
            delta = round(c - b, 4)
            worse = delta > tolerance + 1e-9 if metric in LOWER_IS_BETTER else delta < -tolerance - 1e-9
            better = delta < -1e-9 if metric in LOWER_IS_BETTER else delta > 1e-9
            entry = {"scope": scope, "metric": metric, "baseline": b, "current": c, "delta": delta}
            if worse:
                gate.metric_regressions.append(entry)
            elif better and scope == "overall":
                gate.improvements.append(entry)
        b, c = base.get("answer_chars_p50"), cur.get("answer_chars_p50")
        if scope == "overall" and b and c and c > b * (1 + LENGTH_TOLERANCE):
            gate.metric_regressions.append({"scope": scope, "metric": "answer_chars_p50", "baseline": b,
                                            "current": c, "delta": round(c - b, 1)})

    for qid, b in base_q.items():
        r = current.get(qid)
        if r is None:
            continue
        lost = [c for c, ok in (b.get("checks") or {}).items() if ok and not r["checks"].get(c, False)]
        if lost:
            gate.question_regressions.append(
                {"id": qid, "kind": r["kind"], "checks": lost, "question": r["question"], "error": r.get("error")}
            )
    return gate
