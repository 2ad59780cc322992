"""Regression evals on known answers: ``assistant eval``.

Modules: ``cases`` (load and validate JSONL cases), ``metrics`` (pure metric functions, the
same definitions as ``../shared/tools/score_api.py``), ``runner`` (runs cases through any
``Asker``), ``report`` (terminal table, JSON and HTML reports), ``baseline`` (the regression
gate), ``feedback`` (draft cases from thumbs-down feedback) and ``cli`` (``eval_app``).
"""
