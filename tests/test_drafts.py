"""What a browser was doing, kept on the server (workbench.drafts): inputs per browser and page, recent results newest
first and bounded, all still there when the store is opened again (a restart); a comparison's JSON read back as the
same comparison. The page side (a reload, a closed tab) is tested in a real browser (test_browser.py)."""

from reranker import Query
from reranker.core.browser_ids import is_browser_id
from reranker.formats.documents import format_documents, parse_documents
from reranker.workbench.comparison import CompareRun, Comparison
from reranker.workbench.drafts import HISTORY_KEPT, DraftStore
from reranker.workbench.saved_sessions import comparison_from_json, comparison_json

ME, YOU = "a" * 32, "b" * 32


def test_inputs_are_kept_per_browser_and_page_and_survive_a_restart(tmp_path) -> None:
    store = DraftStore(tmp_path / "drafts.sqlite3")
    store.save_inputs(ME, "rerank", {"query": "北京", "passage_tokens": 256})
    store.save_inputs(ME, "rerank", {"query": "北京是首都吗？", "passage_tokens": 256})
    store.save_inputs(YOU, "rerank", {"query": "yours"})
    again = DraftStore(tmp_path / "drafts.sqlite3")
    assert again.inputs(ME, "rerank") == {"query": "北京是首都吗？", "passage_tokens": 256}
    assert again.inputs(YOU, "rerank") == {"query": "yours"}
    assert again.inputs(ME, "compare") is None


def test_recent_results_are_newest_first_and_only_the_last_ones_are_kept(tmp_path) -> None:
    store = DraftStore(tmp_path / "drafts.sqlite3")
    for n in range(HISTORY_KEPT + 5):
        store.add_result(ME, "rerank", f"run {n}", f'{{"n": {n}}}')
    store.add_result(YOU, "rerank", "yours", "{}")
    past = store.results(ME, "rerank")
    assert [p.title for p in past] == [f"run {n}" for n in reversed(range(5, HISTORY_KEPT + 5))]
    assert store.result(ME, "rerank") == f'{{"n": {HISTORY_KEPT + 4}}}'
    assert store.result(ME, "rerank", past[-1].id) == '{"n": 5}'
    assert store.result(YOU, "rerank", past[0].id) is None  # another browser's result is not yours to open
    assert [p.title for p in store.results(YOU, "rerank")] == ["yours"]


def test_only_a_well_formed_browser_id_is_taken() -> None:
    assert is_browser_id("0123456789abcdef" * 2)
    assert not any(is_browser_id(v) for v in (None, "", "x" * 32, "0" * 31, "../" + "0" * 29, "0" * 33))


def test_a_comparison_is_read_back_as_it_was(reranker) -> None:
    parsed = parse_documents("北京是中国的首都。\t2\nParis is in France.\t0\nGravity pulls things down.\t0")
    runs = [CompareRun(name, instruction, ranked, reranker.model_name) for name, instruction, ranked in zip(
        "AB", ["", "Judge whether the document names a capital"],
        reranker.rank_many([Query("中国的首都是哪里？", parsed.documents, i)
                            for i in ("", "Judge whether the document names a capital")]))]
    comparison = Comparison("中国的首都是哪里？", parsed, runs, 64)
    again = comparison_from_json(comparison_json(comparison, format_documents(parsed.documents, parsed.labels)))
    assert again == comparison
