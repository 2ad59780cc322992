"""Follow-ups resolved against the conversation: a swapped year or name, or a new question about
the previous subject (which then travels as context, not as the question)."""

from __future__ import annotations

from assistant.conversation import is_follow_up, resolve
from assistant.records import Turn

PREVIOUS = [Turn(role="user", content="What did Denmark give IOM unearmarked in 2022?"),
            Turn(role="assistant", content="**Unearmarked: USD 3,508,772** (Total Denmark), per Annex 2. [1]\n\nMore [2]")]


def test_a_swapped_year_or_name_asks_the_previous_question_again():
    assert resolve("And in 2021?", PREVIOUS).question == "What did Denmark give IOM unearmarked in 2021?"
    assert resolve("What about Sweden?", PREVIOUS).question == "What did Sweden give IOM unearmarked in 2022?"
    assert resolve("Och för Sverige?", PREVIOUS).question == "What did Sverige give IOM unearmarked in 2022?"


def test_a_new_question_about_the_same_subject_keeps_its_own_words():
    r = resolve("And where did Denmark rank?", PREVIOUS)
    assert r.question == "And where did Denmark rank?"
    assert "unearmarked in 2022" in r.context and "3,508,772" in r.context
    assert "More" not in r.context, "only the lead of the previous answer is carried"
    r = resolve("How much of that was earmarked in 2021?", PREVIOUS)
    assert "2022" not in r.context, "the follow-up's own year wins"


def test_standalone_questions_are_left_alone():
    q = "Which organisations received the most money from Denmark in 2019?"
    assert not is_follow_up(q)
    assert resolve(q, PREVIOUS).question == q and resolve(q, PREVIOUS).context == ""
    assert resolve("And in 2021?", None).question == "And in 2021?"


def test_a_long_history_is_read_only_as_far_as_needed():
    huge = [Turn(role="user", content="What did Denmark give IOM in 2022? " + "x " * 50_000),
            Turn(role="assistant", content="y " * 50_000)]
    r = resolve("and where did it rank?", huge)
    assert len(r.context) <= 1000


def test_a_year_relative_to_the_last_one_asked_is_a_follow_up_about_that_year(full_service):
    """"What was the figure a year earlier?" names no year of its own: it follows the previous
    question (about 2020), asks about 2019, and keeps 2020 (evidence often compares the two)."""
    history = [Turn(role="user", content="How many active experts were on IOM's emergency response roster in 2020?"),
               Turn(role="assistant", content="583 active experts with vetted skills [1].")]
    assert is_follow_up("What was the figure a year earlier?")
    plan = full_service.parts().retriever.plan("What was the figure a year earlier?", history)
    assert plan.years == [2019, 2020] and "roster" in plan.context
    assert "2020" not in plan.context.split("583")[0], "the previous question's own year is not carried as context"


def test_a_name_after_a_connective_is_the_name_alone():
    swedish = [Turn(role="user", content="Hur mycket icke-öronmärkt stöd gav Sverige till IOM 2022?")]
    assert resolve("Och Schweiz då?", swedish).question == "Hur mycket icke-öronmärkt stöd gav Schweiz till IOM 2022?"


def test_a_neighbouring_row_is_asked_rows_along_from_the_row_the_last_answer_stated():
    from assistant.conversation import row_step
    from assistant.evidence import rows_along

    assert [row_step(q) for q in ("and who came right after them?", "And the one above?", "and two places further down?",
                                  "and the year before?", "What about Norway?")] == [1, -1, 2, 0, 0]
    history = [Turn(role="user", content="Which donor ranked sixth among IOM's unearmarked donors in 2022?"),
               Turn(role="assistant", content="The Netherlands, with USD 2,107,482 in unearmarked funding [1].")]
    resolved = resolve("and who came right after them?", history)
    assert resolved.step == 1 and resolved.stated == {"2107482"}
    table = [("5\tNorway\t(3,355,705.00)", True), ("6\tNetherlands\t(2,107,482.00)", True), ("7\tIreland\t(1,116,071.00)", True)]
    assert rows_along(table, resolved.stated, 1) == {"7\tIreland\t(1,116,071.00)"}
    assert rows_along(table, resolved.stated, -1) == {"5\tNorway\t(3,355,705.00)"}
    assert rows_along(table, resolved.stated, 2) == set() and rows_along(table, frozenset(), 1) == set()


def test_who_came_right_after_is_found_in_the_next_row_of_the_ranking(full_service):
    """The next row is the best evidence, and an answer leads with it, not with the row just stated.
    (Whether the answer clears the refusal threshold is the answerability model's call, which
    `assistant eval` measures.)"""
    history = [Turn(role="user", content="Which donor ranked sixth among IOM's unearmarked donors in 2022?"),
               Turn(role="assistant", content="The Netherlands, with USD 2,107,482 in unearmarked funding (unaudited) [1].")]
    state = full_service.parts()
    plan = state.retriever.plan("and who came right after them?", history)
    best = state.answerer.candidates(plan, state.retriever.gather(plan, 5))[0]
    assert "Ireland" in best.quote and best.is_row, best.quote
    answer = full_service.ask("and who came right after them?", history=history)
    if answer.answered:
        assert "Ireland" in answer.answer.split("[1]")[0], answer.answer
        assert "2,107,482" not in answer.answer.split("[1]")[0]
