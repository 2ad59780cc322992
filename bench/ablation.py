"""What each lever of the answerer adds: the full system, then each lever off in turn.

For each variant the evidence ranker is retrained on the training side (evals/golden.jsonl) with
the lever's features removed, exactly as `assistant eval train-ranker` trains the shipped one, and
both sets are run through the real service: the training side and the held-out split
(evals/heldout.jsonl, never trained on) are reported apart. Uses the index in index/.

Levers:
- span vectors: the e5 similarity of the question to each sentence and table row (``dense``);
- learned ranking: spans ranked by the hand-set prior instead of the pairwise model;
- follow-ups: the conversation history is dropped (each follow-up asked alone);
- table cells: the largest/smallest-row feature (``extreme_row``);
- supporting claims: the lead alone (no supporting claims);
- sides: a question about several years or documents planned as one side (no per-side retrieval,
  no claim per side, no stated change);
- question parts: a question asking several things answered from the whole question's ranking;
- stated lead: no first sentence stating each asked figure (the first claim leads, as before);
- list continuation: a list that ends its passage is not continued into the next one;
- asked kind required: a count, amount or share asked is answered even when no claim states a
  figure, and a when-question when none states a time;
- two-sentence windows: only single sentences and rows are candidates (ranker retrained so);
- a row's own cells: no ``label_cov`` (a row's coverage counts its table's header and title);
- sign constraints: the ranker and answerability weights learned without ``train_ranker.SIGNS``;
- wrong cost 2.0: the operating point chosen with a wrong answer costing two false refusals;
- the cases added in this release (``ADDED`` on): the ranker trained without them;
- neighbouring rows: no ``step_row`` (a follow-up's "who came right after them?" row);
- footnote links: a sentence and its footnotes are not each other's context in the evidence, and the
  best span's footnotes do not support it (the index still repeats the footnotes a passage cites);
- follow-up context weight: a follow-up's context (and a part's rest of the question) counts
  nothing in the coverage of its evidence (``evidence.CONTEXT_WEIGHT`` 0);
- own sentence: a window of two sentences is quoted whole even when its other sentence states
  figures of its own.

Run: .venv/bin/python bench/ablation.py [WORD ...]  (only the variants whose name has one of the words)
"""

from __future__ import annotations

import sys
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from unittest import mock

from assistant.evals.cases import catalog_doc_ids, load_cases
from assistant.evals.metrics import summarize
from assistant.evals.runner import ServiceAsker, run_cases
from assistant.evals import train_ranker
from assistant.evals.train_ranker import collect, train
from assistant.evidence import FEATURES
from assistant.ranker import LinearModel, Ranker
from assistant.compose import build_service
from assistant.settings import ROOT, get_settings

SETS = {"training": ROOT / "evals" / "golden.jsonl", "held-out": ROOT / "evals" / "heldout.jsonl"}
ADDED = "g400"
"""The first id of the cases this release added to the training side."""
COLUMNS = ("answer_correct", "lead_correct", "wrong_answer_rate", "false_refusal_rate", "refusal_accuracy")


def without(examples, features: tuple[str, ...]):
    """The examples with ``features`` zeroed (constant: the model can learn nothing from them)."""
    x = examples.x.copy()
    for f in features:
        x[:, FEATURES.index(f)] = 0.0
    return replace(examples, x=x)


def drop(model: LinearModel, features: tuple[str, ...]) -> LinearModel:
    return replace(model, weights={k: v for k, v in model.weights.items() if k not in features})


def off(*targets: tuple[str, object]) -> ExitStack:
    """The levers at ``targets`` ((dotted name, replacement), ...) switched off until the stack closes."""
    stack = ExitStack()
    for target, new in targets:
        stack.enter_context(mock.patch(target, new))
    return stack


NO_NOTES = (("assistant.evidence.note_links", lambda quotes: [[] for _ in quotes]),
            ("assistant.answering.note_marks", lambda text: []))
NO_CONTEXT = (("assistant.evidence.CONTEXT_WEIGHT", 0.0),)


def main() -> int:
    settings = get_settings()
    doc_ids = catalog_doc_ids(Path(settings.corpus_dir) / "catalog.toml")
    cases = {name: load_cases([path], doc_ids) for name, path in SETS.items()}
    base = build_service(settings, ranker=Ranker.prior())
    base.load()
    examples = collect(base, cases["training"], settings.top_k)

    def ranker_without(features: tuple[str, ...]) -> Ranker:
        r = train(without(examples, features))
        return replace(r, ranking=drop(r.ranking, features), answerability=drop(r.answerability, features))

    full = ranker_without(())
    prior_ranked = train(examples, ranking=LinearModel({"prior": 1.0}))
    fewer = train(collect(base, [c for c in cases["training"] if c.id < ADDED], settings.top_k))
    with off(*NO_NOTES):
        no_notes = train(collect(base, cases["training"], settings.top_k))
    with off(*NO_CONTEXT):
        no_context = train(collect(base, cases["training"], settings.top_k))
    base.parts().answerer.policy = replace(base.parts().answerer.policy, sentence_windows=False)
    no_windows = train(collect(base, cases["training"], settings.top_k))
    with mock.patch.object(train_ranker, "SIGNS", {}):
        unsigned = train(examples)
    with mock.patch.object(train_ranker, "WRONG_COST", 2.0):
        costlier = train(examples)
    variants = [
        ("full system", full, {}, True),
        ("- sides (years, documents)", full, {"scopes": []}, True),
        ("- question parts", full, {"parts": []}, True),
        ("- span vectors", ranker_without(("dense",)), {}, True),
        ("- learned ranking (prior order)", prior_ranked, {}, True),
        ("- follow-up resolution", full, {}, False),
        ("- table cells (extreme row)", ranker_without(("extreme_row",)), {}, True),
        ("- supporting claims", full, {"max_claims": 1}, True),
        ("- stated lead", full, {"lead": lambda *a: None}, True),
        ("- list continuation", full, {"next_passage": None}, True),
        ("- asked kind required", full, {"require_asked_kind": False}, True),
        ("- two-sentence windows", no_windows, {"sentence_windows": False}, True),
        ("- a row's own cells (label_cov)", ranker_without(("label_cov",)), {}, True),
        ("- sign constraints", unsigned, {}, True),
        ("+ wrong cost 2.0", costlier, {}, True),
        ("- the cases added this release", fewer, {}, True),
        ("- neighbouring rows (step_row)", ranker_without(("step_row",)), {}, True),
        ("- footnote links", no_notes, {}, True, NO_NOTES),
        ("- follow-up context weight", no_context, {}, True, NO_CONTEXT),
        ("- own sentence", full, {"own_sentence": lambda c, plan: c}, True),
    ]
    if sys.argv[1:]:
        variants = [v for v in variants if any(w in v[0] for w in sys.argv[1:])]
    print(f"{'variant':34s} {'set':9s} " + " ".join(f"{c:>18s}" for c in COLUMNS))
    for name, ranker, policy, with_history, *switched in variants:
        stack = off(*(switched[0] if switched else ()))
        service = build_service(settings, ranker=ranker)
        service.load()
        answerer, retriever = service.parts().answerer, service.parts().retriever
        plan_fields = {k: v for k, v in policy.items() if k in ("scopes", "parts")}
        for k in ("lead", "next_passage", "own_sentence"):  # the answerer's own parts, switched off on the instance
            if k in policy:
                setattr(answerer, k, policy.pop(k))
        policy = {k: v for k, v in policy.items() if k not in plan_fields}
        answerer.policy = replace(answerer.policy, **policy) if policy else answerer.policy
        if plan_fields:  # the lever off: the planner's output without it
            planned = retriever.plan
            retriever.plan = lambda q, h=None, _p=planned, _f=plan_fields: replace(_p(q, h), **_f)
        for set_name, set_cases in cases.items():
            run = set_cases if with_history else [c.model_copy(update={"history": []}) for c in set_cases]
            rows = run_cases(run, ServiceAsker(service), doc_ids, top_k=settings.top_k, depth=settings.top_k)
            s = summarize(rows, settings.top_k)
            print(f"{name:34s} {set_name:9s} " + " ".join(f"{100 * (s[c] or 0):18.1f}" for c in COLUMNS), flush=True)
        stack.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
