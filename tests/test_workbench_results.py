"""Cards, tables, exports and charts of the workbench, without Streamlit."""

import csv
import io
import json
import re

import pytest

from reranker import DEFAULT_INSTRUCTION
from reranker.core.ranking import Judgement, RankedDocument, rank_judgements
from reranker.formats.exports import EXPORT_COLUMNS, export_csv, export_json, export_records
from reranker.workbench.charts import bump_figure, cliff_caption, decay_figure, find_cliff
from reranker.workbench.comparison import CompareRun, agreement_table, best_text, metrics_table, rank_table
from reranker.workbench.results import card_html, movement, table_frame

ATTACK = "<img src=x onerror=alert(1)>"


def ranked_docs() -> list[RankedDocument]:
    documents = ["plain", ATTACK, "=1+1 formula", "北京是中国的首都"]
    judgements = [Judgement(0.2, -1.4, 10, False), Judgement(0.9, 2.2, 14, True), Judgement(0.5, 0.0, 9, False),
                  Judgement(0.7, 0.85, 12, False)]
    return rank_judgements(documents, judgements)


def cards_html(ranked: list[RankedDocument]) -> str:
    return "".join(card_html(d) for d in ranked)


def test_cards_escape_every_user_string():
    html = cards_html(ranked_docs())
    assert ATTACK not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "北京是中国的首都" in html


def test_only_rank_one_is_the_highlighted_card():
    html = cards_html(ranked_docs())
    assert html.count('class="rank-card top"') == 1
    assert html.startswith('<div class="rank-card top" data-rank="1">')
    assert html.count('class="rank-card"') == 3


def test_card_shows_rank_score_input_position_movement_and_truncation():
    best = ranked_docs()[0]  # the attack line: input #2, now #1, truncated
    html = card_html(best)
    assert "#1" in html and "0.9000" in html and "input #2" in html and "log-odds +2.20" in html
    assert "▲ 1" in html and "truncated" in html
    last = ranked_docs()[-1]  # "plain": input #1, now #4
    assert movement(last) == -3 and "▼ 3" in card_html(last)
    assert "+2.200" in card_html(best, "Log-odds")


def test_card_badges_for_labels_and_duplicates():
    html = card_html(ranked_docs()[1], label=2.0, duplicate_of=0)
    assert "label 2" in html and "duplicate of input #1" in html


def test_table_frame_puts_rank_score_and_text_in_view_then_the_other_numbers_best_first():
    frame = table_frame(ranked_docs())
    assert list(frame.columns) == ["rank", "score", "text", "log-odds", "input #", "tokens", "truncated"]  # one cut
    assert frame["rank"].tolist() == [1, 2, 3, 4]
    assert frame["input #"].tolist() == [2, 4, 3, 1]
    assert frame["text"].iloc[0] == ATTACK
    assert table_frame(ranked_docs(), labels=[0, 1.0, 2, 0])["label"].tolist() == [1, 0, 2, 0]


def test_every_export_has_one_schema():
    records = export_records(ranked_docs(), "查询", "an instruction", "tiny", labels=[0, 1.0, 2, 0])
    assert [list(r) for r in records] == [list(EXPORT_COLUMNS)] * 4
    first = records[0]
    assert first["query"] == "查询" and first["model"] == "tiny" and first["instruction"] == "an instruction"
    assert first["document"] == ATTACK and first["index"] == 1 and first["rank"] == 1 and first["label"] == 1
    assert export_records(ranked_docs(), "q", "", "tiny")[0]["instruction"] == DEFAULT_INSTRUCTION

    csv_text = export_csv(records).decode("utf-8-sig")
    header, *rows = list(csv.reader(io.StringIO(csv_text)))
    assert header == list(EXPORT_COLUMNS)
    assert [row[-1] for row in rows] == ["1", "0", "2", "0"]  # labels as typed, not 1.0
    assert "'=1+1 formula" in csv_text and "北京是中国的首都" in csv_text
    payload = json.loads(export_json(records))
    assert [r["index"] for r in payload] == [1, 3, 2, 0] and payload[0]["label"] == 1
    unlabelled = export_records(ranked_docs(), "q", "", "tiny")
    assert "label" not in export_csv(unlabelled).decode("utf-8-sig").splitlines()[0]
    assert "label" not in json.loads(export_json(unlabelled))[0]


def test_cliff_caption_says_something_true_wherever_the_drop_is():
    assert cliff_caption([0.99, 0.97, 0.40, 0.35, 0.30]).endswith("the top 2 stand apart from the rest.")
    assert cliff_caption([0.9, 0.1, 0.05]).endswith("the top document stands apart from the rest.")
    tail = cliff_caption([0.9, 0.88, 0.87, 0.86, 0.1])
    assert "between rank 4 and 5" in tail and tail.endswith("the last document falls below the rest.")
    assert cliff_caption([0.5, 0.5]) is None and cliff_caption([0.5]) is None


def test_a_drop_about_the_size_of_the_next_is_no_cliff():
    scores = [0.19, 0.17, 0.16, 0.107, 0.058, 0.05, 0.04]  # all below 0.2; the largest drop 0.053, the next 0.049
    caption = cliff_caption(scores)
    assert caption.startswith("No clear cliff") and "stand" not in caption
    assert not any("cliff" in (a.text or "") for a in decay_figure(scores).layout.annotations)
    assert [d.name for d in decay_figure(scores).data] == ["score"]


def test_find_cliff_is_the_largest_drop_between_neighbours():
    cliff = find_cliff([0.99, 0.97, 0.40, 0.35, 0.01])
    assert cliff.after_rank == 2 and cliff.drop == pytest.approx(0.57)
    assert find_cliff([0.5]) is None


def test_decay_figure_marks_cliff_and_threshold():
    fig = decay_figure([0.99, 0.97, 0.40, 0.35], "probability", threshold=0.5, hover_texts=[ATTACK] * 4)
    assert list(fig.data[0].y) == [0.99, 0.97, 0.40, 0.35]
    annotations = [a.text for a in fig.layout.annotations]
    assert any("cliff" in a and "after rank 2" in a for a in annotations)
    assert any("threshold 0.5: 2 above" in a for a in annotations)
    assert all("<img" not in t for t in fig.data[0].text)
    assert tuple(fig.layout.xaxis.range) == (0.5, 4.5)  # the axis ends at the last rank
    no_line = decay_figure([0.9, 0.1], "probability")
    [early] = [a for a in decay_figure([0.9, 0.1, 0.08, 0.07, 0.06]).layout.annotations if "cliff" in a.text]
    [late] = [a for a in decay_figure([0.9, 0.89, 0.88, 0.87, 0.1]).layout.annotations if "cliff" in a.text]
    # above the plot, running from the cliff towards the middle: never clipped at the chart's edge
    assert (early.x, early.xanchor, early.yref, early.yanchor) == (1, "left", "paper", "bottom")
    assert (late.x, late.xanchor) == (5, "right")
    assert not any("threshold" in (a.text or "") for a in no_line.layout.annotations)


def test_bump_figure_one_line_per_document_ranks_downwards():
    fig = bump_figure({"A": [1, 2, 3], "B": [3, 1, 2]}, ["#1", "#2", "#3"], [ATTACK, "b", "c"])
    assert len(fig.data) == 3
    assert list(fig.data[0].y) == [1, 3]
    assert fig.layout.yaxis.autorange == "reversed"
    assert "<img" not in fig.data[0].customdata[0]


def runs() -> list[CompareRun]:
    documents = ["a", "b", "c"]
    a = rank_judgements(documents, [Judgement(0.9, 2, 5, False), Judgement(0.5, 0, 5, False),
                                    Judgement(0.1, -2, 5, False)])
    b = rank_judgements(documents, [Judgement(0.1, -2, 5, False), Judgement(0.5, 0, 5, False),
                                    Judgement(0.9, 2, 5, False)])
    return [CompareRun("A", "first", a), CompareRun("B", "second", b)]


def test_rank_table_has_a_rank_column_per_instruction():
    frame = rank_table(runs(), ["a", "b", "c"], labels=[2, 0, 1])
    assert frame["rank A"].tolist() == [1, 2, 3]
    assert frame["rank B"].tolist() == [3, 2, 1]
    assert frame["label"].tolist() == [2, 0, 1]
    assert list(frame) == ["input #", "label", "rank A", "rank B", "score A", "score B", "text"]  # the text last


def test_agreement_and_metrics_tables():
    agreement = agreement_table(runs(), k=1)
    assert agreement["runs"].tolist() == ["A vs B"]
    assert agreement["Kendall tau"].iloc[0] == pytest.approx(-1.0)
    assert agreement["top-1 overlap"].iloc[0] == 0.0
    metrics = metrics_table(runs(), labels=[2, 0, 1], k=2)
    assert metrics["best"].tolist() == ["★", ""]
    assert metrics.loc[0, "MRR"] == 1.0 and metrics.loc[1, "Hit@1"] == 1.0
    assert metrics.loc[0, "NDCG@2"] > metrics.loc[1, "NDCG@2"]


def test_tied_instructions_are_all_marked_best_and_told():
    tied = [*runs(), CompareRun("C", "third", runs()[0].ranked)]
    metrics = metrics_table(tied, labels=[2, 0, 1], k=2)
    assert metrics["best"].tolist() == ["★", "", "★"]
    assert best_text(metrics, 2).startswith("Tie: runs A and C do equally well")
    assert "Hit@1 yes" in best_text(metrics, 2)
    assert best_text(metrics_table(runs(), labels=[2, 0, 1], k=2), 2).startswith("Best: run A (")


def test_the_table_leaves_out_truncated_when_nothing_was_cut_and_puts_labels_before_the_text():
    whole = [RankedDocument(0, "a", 0.9, 2.2, 1, 5, False), RankedDocument(1, "b", 0.1, -2.2, 2, 5, None)]
    assert list(table_frame(whole, labels=[1, 0])) == ["rank", "score", "label", "text", "log-odds", "input #",
                                                        "tokens"]


def test_why_on_a_long_document_tells_progress_from_the_first_version_on(reranker):
    """Every version of a long document is about as long as it: told only between the engine's passes, the first word
    of progress would come when most of them are scored. In steps, the first of one version, it comes at once."""
    from reranker.analysis.judgement_store import JudgementStore
    from reranker.workbench.scoring_steps import explain_in_steps

    document = " ".join(f"Sentence {n} says something about the capital city of a country." for n in range(12))
    told = []
    spans = explain_in_steps(JudgementStore.in_memory(), reranker, "What is the capital of China?", document,
                             on_progress=told.append)
    total = told[-1].total
    assert len(spans) == 12 and total == 13 and told[-1].done == total
    first_step = next(p.done for p in told if p.done > 0)
    assert first_step == 1
    assert len({p.done for p in told}) >= 4


def test_a_card_read_as_passages_says_its_tokens_overlap_and_its_strip_spans_the_scores():
    from reranker.core.ranking import Passage

    text = "x" * 300
    passages = (Passage(0, 120, 0.011, -4.5), Passage(105, 225, 0.014, -4.25), Passage(210, 300, 0.012, -4.4))
    [doc] = rank_judgements([text], [Judgement(0.014, -4.25, 1418, False, passages)])
    card = card_html(doc)
    assert "1418 tokens read in 3 overlapping passages" in card and "1418 tokens</span>" not in card
    opacities = [float(o) for o in re.findall(r"opacity:([0-9.]+)", card)]
    assert min(opacities) == 0.25 and max(opacities) == 1.0  # the lowest and highest passage, however close
    assert "3 passages along the document, darker for a higher score (log-odds -4.50 to -4.25)" in card
