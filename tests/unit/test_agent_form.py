"""Agent answers under the direct-mode rules: a kind, P(right), and the form the question asks.

Scripted model replies reproduce two real failures on samples/docs: "How many metres longer is
the Kestrel Bridge than the Alder Viaduct?" answered 412 (the Kestrel length), and "Which was
completed first, the Alder Viaduct or the Harrow Point Lighthouse?" answered 1889 (a year).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.kb import KnowledgeBase, open_kb
from ingest.pipeline import ingest_paths, ingest_texts
from rag_app.agent.loop import run_agent
from rag_app.answering.form import (
    answer_form,
    asks_difference,
    needs_reasoning,
    options_in,
    span_form,
)
from rag_app.pipeline import ROUTED_NOTE, ask
from rag_app.records import ABSTAIN_PHRASE, Answer, Citation
from rag_app.settings import Settings
from tests.conftest import SAMPLES_DIR
from tests.fakes import HashingEmbeddings
from tests.unit.test_agent import ScriptedChat, plan, step

LONGER = "How many metres longer is the Kestrel Bridge than the Alder Viaduct?"
FIRST = "Which was completed first, the Alder Viaduct or the Harrow Point Lighthouse?"
SAMPLES = ("kestrel_bridge.txt", "alder_viaduct.html", "harrow_point_lighthouse.md")


def _kb(settings: Settings, name: str, files: tuple[str, ...]) -> KnowledgeBase:
    kb = open_kb(name, settings=settings, create=True, embeddings=HashingEmbeddings())
    ingest_paths([SAMPLES_DIR / f for f in files], kb)
    return kb


@pytest.fixture
def samples(settings: Settings) -> Iterator[KnowledgeBase]:
    kb = _kb(settings, "samples", SAMPLES)
    yield kb
    kb.close()


def sources(answer: Answer) -> list[str]:
    return sorted(Path(c.source).name for c in answer.citations)


def cited(quote: str) -> Citation:
    return Citation(marker=1, chunk_id="c", source="s", quote=quote)


def assert_well_formed(answer: Answer) -> None:
    """Every agent Answer carries a kind and P(right), and they agree with its text."""
    assert answer.p_correct is not None and 0.0 <= answer.p_correct <= 1.0
    assert answer.abstained == (answer.kind == "abstained")
    assert (answer.text == ABSTAIN_PHRASE) == answer.abstained


# --- the pure form checks ------------------------------------------------------------------


def test_options_come_from_the_questions_a_or_b() -> None:
    assert options_in(FIRST) == ["Alder Viaduct", "Harrow Point Lighthouse"]
    assert options_in("Was the Alder Viaduct or the Kestrel Bridge built first?") == [
        "Alder Viaduct",
        "Kestrel Bridge",
    ]
    assert options_in("Is tea or coffee more popular?") == ["tea", "coffee"]
    assert options_in("Is the bridge painted green or not?") == []  # a yes/no question
    assert options_in("How long is the Kestrel Bridge?") == []


def test_difference_questions_are_recognised() -> None:
    for question in (
        LONGER,
        "How many more arches does the viaduct have than the bridge?",
        "How much taller is the lighthouse than the tower?",
        "What is the difference between the two lengths?",
        "How many years after the viaduct was the lighthouse completed?",
    ):
        assert asks_difference(question), question
    assert not asks_difference("How many arches does the Alder Viaduct have?")


def test_a_choice_must_name_one_option() -> None:
    assert answer_form(FIRST, "the Harrow Point Lighthouse", [], []) == (True, "")
    ok, why = answer_form(FIRST, "1889", [], [])
    assert not ok and "does not name either option" in why
    ok, why = answer_form(FIRST, "the Alder Viaduct and the Harrow Point Lighthouse", [], [])
    assert not ok and "both" in why


def test_a_difference_needs_a_subtraction_of_two_quoted_numbers() -> None:
    quotes = [cited("The bridge is 412 metres long."), cited("It is 275 metres long.")]
    assert answer_form(LONGER, "137", [("412 - 275", "137")], quotes) == (True, "")
    assert not answer_form(LONGER, "412", [], quotes)[0]  # no calculation at all
    assert not answer_form(LONGER, "687", [("412 + 275", "687")], quotes)[0]  # not a difference
    assert not answer_form(LONGER, "137", [("412 - 275", "137")], quotes[:1])[0]  # 275 uncited
    assert not answer_form(LONGER, "100", [("412 - 275", "137")], quotes)[0]  # another result


def test_a_yes_no_question_gets_yes_or_no() -> None:
    assert answer_form("Is the bridge green?", "Yes", [], []) == (True, "")
    ok, why = answer_form("Is the capital of France on the Seine?", "Paris", [], [])
    assert not ok and "yes or no" in why


def test_a_passage_span_is_held_to_the_form_of_its_question() -> None:
    """Direct mode has no calculation: a span of the wrong form abstains, one whose form only a
    calculation or a yes/no could show is at most tentative."""
    took = "How many years did it take to build the Alder Viaduct?"
    assert span_form(took, "1889")[0] == "wrong"  # a calendar year is no duration
    assert span_form(took, "three years") == ("ok", "")
    verdict, why = span_form(FIRST, "1889")
    assert verdict == "wrong" and "names neither option" in why
    assert span_form(FIRST, "the Harrow Point Lighthouse") == ("ok", "")
    assert span_form(LONGER, "412")[0] == "unsure"
    assert span_form("How long is the Alder Viaduct?", "1889")[0] == "unsure"
    assert span_form("How long is the Alder Viaduct?", "275 metres") == ("ok", "")
    assert span_form("Is the capital of France on the Seine?", "Paris")[0] == "unsure"
    assert span_form("Who built the lighthouse?", "1889") == ("ok", "")  # the gate's call


def test_only_comparisons_and_differences_need_reasoning() -> None:
    assert needs_reasoning(FIRST) and needs_reasoning(LONGER)
    assert needs_reasoning("Was the Kestrel Bridge or the Alder Viaduct built first?")
    # "A or B" without a comparison cue is one thing named two ways, not a choice
    assert not needs_reasoning("What do Muslims call the Torah or the Law?")
    assert not needs_reasoning("How many steps lead to the top of the Harrow Point Lighthouse?")


def test_a_direct_question_that_compares_goes_to_the_agent(
    samples: KnowledgeBase, settings: Settings
) -> None:
    llm = script(LENGTHS, ("calculator", "412 - 275"), ("finish", "137"))
    answer = ask(LONGER, samples, mode="direct", settings=settings, llm=llm)
    assert answer.mode == "agent" and answer.text == "137" and answer.plan == list(LENGTHS)
    assert answer.message.startswith(ROUTED_NOTE)
    assert sorted(sources(answer)) == ["alder_viaduct.html", "kestrel_bridge.txt"]
    # route_to_agent off: direct mode reads one span, which cannot be a confident difference
    direct = settings.model_copy(update={"route_to_agent": False, "answer_gate": "off"})
    span = ask(LONGER, samples, mode="direct", settings=direct, llm=ScriptedChat(
        replies=['{"answer": "412 metres"}'] * 2))  # fmt: skip
    assert span.mode == "direct" and span.kind == "tentative" and span.text == "412 metres"
    assert "asks for a difference" in span.message


def script(parts: tuple[str, ...], *tail: tuple[str, str]) -> ScriptedChat:
    """A scripted agent run: plan the parts, search each one, then the `tail` steps."""
    return ScriptedChat(
        replies=[plan(*parts), *(step("search_docs", q) for q in parts), *(step(*t) for t in tail)]
    )


LENGTHS = ("How long is the Kestrel Bridge?", "How long is the Alder Viaduct?")


# --- agent runs over samples/docs -----------------------------------------------------------


def test_412_is_not_a_confident_answer_to_how_much_longer(settings: Settings) -> None:
    kb = _kb(settings, "kestrel", ("kestrel_bridge.txt",))  # the Alder length is never seen
    llm = script((LONGER,), ("finish", "412"))
    answer = run_agent(LONGER, kb, settings, llm)
    assert_well_formed(answer)
    assert answer.kind != "confident"
    assert "asks for a difference" in answer.message


def test_the_calculated_difference_is_the_answer_with_both_lengths_cited(
    samples: KnowledgeBase, settings: Settings
) -> None:
    llm = script(LENGTHS, ("calculator", "412 - 275"), ("finish", "137"))
    answer = run_agent(LONGER, samples, settings, llm)
    assert_well_formed(answer)
    assert answer.text == "137" and answer.kind == "tentative"  # computed, so never confident
    assert sources(answer) == ["alder_viaduct.html", "kestrel_bridge.txt"]
    quotes = " ".join(c.quote for c in answer.citations)
    assert "412 metres" in quotes and "275 metres" in quotes
    assert answer.display_text() == "Probably 137 (not verified)"


def test_412_with_both_lengths_seen_becomes_their_difference(
    samples: KnowledgeBase, settings: Settings
) -> None:
    llm = script(LENGTHS, ("finish", "412"))  # a span answering another question
    answer = run_agent(LONGER, samples, settings, llm)
    assert_well_formed(answer)
    assert answer.text == "137 metres" and answer.kind == "tentative"
    assert sources(answer) == ["alder_viaduct.html", "kestrel_bridge.txt"]
    assert "412 - 275 = 137" in answer.message


def test_1889_is_not_an_answer_to_which_came_first(settings: Settings) -> None:
    kb = _kb(settings, "alder", ("alder_viaduct.html",))  # the lighthouse year is never seen
    llm = script((FIRST,), ("finish", "1889"))
    answer = run_agent(FIRST, kb, settings, llm)
    assert_well_formed(answer)
    assert answer.kind != "confident" and "1889" not in answer.text
    assert "does not name either option" in answer.message


def test_a_year_is_never_the_answer_to_how_many_years(
    samples: KnowledgeBase, settings: Settings
) -> None:
    question = "How many years after it was finished was the Harrow Point Lighthouse automated?"
    llm = script((question,), ("finish", "1962"))
    answer = run_agent(question, samples, settings, llm)
    assert_well_formed(answer)
    assert answer.abstained and "1962" not in answer.text
    assert "is a year" in answer.message


def test_which_is_older_goes_by_the_earliest_year_quoted_for_each(
    samples: KnowledgeBase, settings: Settings
) -> None:
    question = "which is older, the kestrel bridge or the alder viaduct"
    llm = script(("When was the Kestrel Bridge built?", "When was the Alder Viaduct built?"),
                 ("finish", "Kestrel Bridge"))  # fmt: skip
    answer = run_agent(question, samples, settings, llm)
    assert_well_formed(answer)
    assert answer.text == "alder viaduct" and answer.kind == "tentative"
    assert "kestrel bridge 1931" in answer.message and "alder viaduct 1886" in answer.message
    assert sorted(sources(answer)) == ["alder_viaduct.html", "kestrel_bridge.txt"]


def test_which_is_taller_goes_by_the_quoted_heights(
    samples: KnowledgeBase, settings: Settings
) -> None:
    question = "what is taller, the harrow point lighthouse or the kestrel bridge towers"
    parts = ("How tall is the Harrow Point Lighthouse?", "How tall are the Kestrel Bridge towers?")
    answer = run_agent(question, samples, settings, script(parts, ("finish", "Harrow Point")))
    assert_well_formed(answer)
    assert answer.text == "kestrel bridge towers" and answer.kind == "tentative"
    assert "38 metres" in answer.message and "64 metres" in answer.message


def test_which_is_longer_compares_the_lengths_not_other_counts_in_the_sentence(
    samples: KnowledgeBase, settings: Settings
) -> None:
    # the Alder passage says "275 metres long, with 21 arches": "21 arches" is no length
    question = "Which is longer, the Kestrel Bridge or the Alder Viaduct?"
    answer = run_agent(question, samples, settings, script(LENGTHS, ("finish", "412 metres")))
    assert_well_formed(answer)
    assert answer.text == "Kestrel Bridge" and answer.kind == "tentative"
    assert "412 metres" in answer.message and "275 metres" in answer.message
    assert "arches" not in answer.message


def test_with_both_years_seen_the_answer_names_the_earlier_option(
    samples: KnowledgeBase, settings: Settings
) -> None:
    llm = ScriptedChat(
        replies=[
            plan("When was the Alder Viaduct completed?", "When was the Harrow Point Lighthouse?"),
            step("search_docs", "When was the Alder Viaduct completed?"),
            step("search_docs", "When was the Harrow Point Lighthouse completed?"),
            step("finish", "1889"),
        ]
    )
    answer = run_agent(FIRST, samples, settings, llm)
    assert_well_formed(answer)
    assert answer.text == "Harrow Point Lighthouse" and answer.kind == "tentative"
    assert sources(answer) == ["alder_viaduct.html", "harrow_point_lighthouse.md"]
    quotes = " ".join(c.quote for c in answer.citations)
    assert "1889" in quotes and "1874" in quotes


def test_paris_is_not_a_confident_answer_to_a_yes_no_question(settings: Settings) -> None:
    kb = open_kb("paris", settings=settings, create=True, embeddings=HashingEmbeddings())
    ingest_texts([("paris.txt", "Paris, the capital of France, lies on the Seine.")], kb)
    question = "Is the capital of France on the Seine?"
    llm = script((question,), ("finish", "Paris"))
    answer = run_agent(question, kb, settings, llm)
    assert_well_formed(answer)
    assert answer.kind != "confident" and "yes or no" in answer.message


def test_agent_answers_reach_the_cli_and_api_like_direct_ones(
    samples: KnowledgeBase, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    from rag_app.api.replies import extension
    from rag_app.commands.answering import print_verdict
    from rag_app.pipeline import ask

    llm = script(LENGTHS, ("calculator", "412 - 275"), ("finish", "137"))
    answer = ask(LONGER, samples, "agent", settings=settings, llm=llm)
    print_verdict(answer)
    out = capsys.readouterr().out
    assert "Tentative answer: Probably 137 (not verified)" in out
    assert "Estimated chance this is right" in out
    rag = extension(answer, "samples", "id-1")
    assert rag["kind"] == "tentative" and rag["p_correct"] == answer.p_correct
    assert rag["display_text"] == "Probably 137 (not verified)"


def test_a_wrong_pick_gives_way_to_the_quoted_years(
    samples: KnowledgeBase, settings: Settings
) -> None:
    llm = script((FIRST,), ("finish", "Alder"))
    answer = run_agent(FIRST, samples, settings, llm)
    assert_well_formed(answer)
    assert answer.text == "Harrow Point Lighthouse" and answer.kind == "tentative"
    assert "point to the other option" in answer.message


def test_abstentions_carry_a_kind_and_p_too(settings: Settings) -> None:
    kb = open_kb("empty", settings=settings, create=True, embeddings=HashingEmbeddings())
    llm = script((LONGER,), ("finish", "9"))
    answer = run_agent(LONGER, kb, settings, llm)
    assert_well_formed(answer)
    assert answer.kind == "abstained" and answer.p_correct == 0.0
