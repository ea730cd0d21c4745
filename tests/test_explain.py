"""explain(): each sentence's push towards "yes", on the tiny real model."""

import pytest
from conftest import LOGIT_TOLERANCE

from reranker import Span, explain
from reranker.analysis.explanations import sentence_spans
from reranker.core.sentences import looks_like_code
from reranker.workbench.explanation_view import explanation_html, highlighted, query_terms

QUERY = "What is the capital of China?"
ENGLISH = "Beijing is the capital of China. It has 21 million people!  Pi is 3.14 here?\nShanghai is larger."
CHINESE = "北京是中国的首都。上海是最大的城市！重力是一种力；\n天空是蓝色的"
CODE = "def capital(country):\n    if country == 'China':\n        return 'Beijing.'  # yes. no.\n    return None\n"


def covered(document: str, spans: list[Span]) -> None:
    """In order, not overlapping, each span's text its slice, every non-blank character in some span."""
    ends = [0]
    for span in spans:
        assert span.start >= ends[-1] and span.end > span.start and document[span.start:span.end] == span.text
        assert span.text == span.text.strip()
        ends.append(span.end)
    inside = {i for span in spans for i in range(span.start, span.end)}
    assert all(i in inside for i, c in enumerate(document) if not c.isspace())


@pytest.mark.parametrize("document", [ENGLISH, CHINESE, CODE, "One sentence without an end"])
def test_each_delta_is_the_logit_lost_without_that_sentence(reranker, document):
    spans = explain(reranker, QUERY, document)
    covered(document, spans)
    whole = reranker.judge(QUERY, [document])[0].logit
    for span in spans:
        without = reranker.judge(QUERY, [document[:span.start] + document[span.end:]])[0].logit
        assert span.delta == pytest.approx(whole - without, abs=2 * LOGIT_TOLERANCE)


def test_sentences_english_chinese_and_code_lines():
    assert [ENGLISH[s:e] for s, e in sentence_spans(ENGLISH)] == [
        "Beijing is the capital of China.", "It has 21 million people!", "Pi is 3.14 here?", "Shanghai is larger."]
    assert [CHINESE[s:e] for s, e in sentence_spans(CHINESE)] == [
        "北京是中国的首都。", "上海是最大的城市！", "重力是一种力；", "天空是蓝色的"]
    assert looks_like_code(CODE) and not looks_like_code(ENGLISH)
    assert [CODE[s:e] for s, e in sentence_spans(CODE)] == [line.strip() for line in CODE.splitlines()]


def test_an_instruction_reaches_the_model_and_blank_documents_have_no_spans(reranker):
    spans = explain(reranker, QUERY, ENGLISH, instruction="Prefer population figures")
    whole = reranker.judge(QUERY, [ENGLISH], "Prefer population figures")[0].logit
    first = spans[0]
    without = reranker.judge(QUERY, [ENGLISH[first.end:]], "Prefer population figures")[0].logit
    assert first.delta == pytest.approx(whole - without, abs=2 * LOGIT_TOLERANCE)
    assert explain(reranker, QUERY, "") == [] and explain(reranker, QUERY, " \n ") == []


def test_a_long_document_is_explained_by_its_first_sentences(reranker):
    document = " ".join(f"Sentence number {n}." for n in range(60))
    spans = explain(reranker, QUERY, document, max_spans=12)
    assert len(spans) == 12 and spans[-1].text == "Sentence number 11."


def test_query_words_are_found_in_english_and_chinese():
    assert query_terms("What is the capital of China?") == ["capital", "china"]
    assert set(query_terms("中国的首都")) == {"中国", "国的", "的首", "首都"}
    terms = query_terms("capital of China 首都")
    marked = highlighted("Beijing, the CAPITAL of <b>China</b>; 北京是中国的首都。", terms)
    assert marked == ("Beijing, the <mark>CAPITAL</mark> of &lt;b&gt;<mark>China</mark>&lt;/b&gt;; "
                      "北京是中国的<mark>首都</mark>。")
    assert highlighted("<img src=x>", []) == "&lt;img src=x&gt;"


def test_the_why_view_shades_each_sentence_and_keeps_text_inert():
    document = "Beijing is the capital. <img src=x onerror=alert(1)> Gravity pulls.\nMore text here."
    spans = [Span(0, 23, "Beijing is the capital.", 2.0), Span(24, 67, document[24:67], -0.5)]
    markup = explanation_html(document, spans, ["capital"])
    assert "<img" not in markup and "&lt;img src=x onerror=alert(1)&gt;" in markup
    assert markup.count('class="why-span"') == 2 and "+2.00" in markup and "-0.50" in markup
    assert "rgba(11, 110, 79, 0.450)" in markup  # the strongest push for "yes", fully shaded
    assert "<mark>capital</mark>" in markup
    assert "Only the first 2 sentences are explained" in markup  # "More text here." was not
    assert "Most for" in markup and "Most against" in markup
    assert "Nothing to explain" in explanation_html("", [])


def test_explained_through_a_server_as_in_this_process(open_sidecar, reranker):
    from reranker import open_backend

    remote = explain(open_backend(open_sidecar.url), QUERY, ENGLISH)
    local = explain(reranker, QUERY, ENGLISH)
    assert [(s.start, s.end) for s in remote] == [(s.start, s.end) for s in local]
    assert [s.delta for s in remote] == pytest.approx([s.delta for s in local], abs=2 * LOGIT_TOLERANCE)
