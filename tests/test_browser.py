"""The workbench in a real browser, driven by headless Chromium: the one-port server as ./start.sh runs it (the pages
score through the API's queue in the same process), and `streamlit run app.py` alone for an offline start."""

from __future__ import annotations

import json
import os
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from reranker.testing.sidecar_process import SidecarProcess
from reranker.testing.workbench_process import file_input, workbench_process

ROOT = Path(__file__).resolve().parent.parent
QUERY = "What is the capital of China?"
ATTACK = "<img src=x onerror=alert(1)>"
DOCUMENTS = ["Shanghai is the largest city in China.", ATTACK, "The capital of China is Beijing.",
             "北京是中国的首都。", "Gravity pulls things down."]


SLOW_TOKENS = 3_700
"""Tokens in each of the 80 slow documents: on the tiny model about 0.1 s a document, so a rerank of them runs for
several seconds."""


@pytest.fixture(scope="module")
def slow_documents(tiny_model_dir: Path) -> list[str]:
    """80 documents of about SLOW_TOKENS tokens each, counted with the test model's own tokenizer: the real Qwen3
    one, or the small byte-level one a fresh clone builds, which needs about five times as many for the same text."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    sentence = "the capital of a country is usually its seat of government. "
    per_sentence = len(tokenizer(sentence * 10, add_special_tokens=False)["input_ids"]) / 10
    return [f"Document {n}: " + sentence * max(1, round(SLOW_TOKENS / per_sentence)) for n in range(80)]


@pytest.fixture(scope="module")
def workbench_url(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One workbench on the tiny model for this module's tests (each opens its own page, so its own session): the
    pages and the API on one port, as ./start.sh runs it."""
    folder = tmp_path_factory.mktemp("workbench")
    env = {"RERANKER_MODEL": str(tiny_model_dir), "RERANKER_DEVICE": "cpu", "RERANKER_DATA_DIR": str(folder / "data"),
           "RERANKER_API_KEY": "", "RERANKER_API_URL": "", "RERANKER_SERVER": ""}
    with SidecarProcess(env=env, log_path=folder / "server.log", command="workbench") as server:
        server.wait_healthy()
        yield server.url


def rerank_a_sample(page) -> None:
    """Fill the inputs from the English capital sample (8 documents) and rerank them."""
    from playwright.sync_api import expect

    page.get_by_role("button", name="English · capital of China").click()
    expect(page.get_by_label("Query")).to_have_value(QUERY, timeout=10_000)
    settled(page)
    page.wait_for_timeout(500)  # the sample's run redraws the page; a click on a button being redrawn can be lost
    page.get_by_role("button", name="Rerank").click()
    try:
        expect(page.locator(".rank-card.top")).to_have_count(1, timeout=20_000)
    except AssertionError:  # seen once under CI load: the click did not reach the app; a person would click again
        page.get_by_role("button", name="Rerank").click()
        expect(page.locator(".rank-card.top")).to_have_count(1, timeout=60_000)
    expect(page.locator(".rank-card")).to_have_count(8, timeout=30_000)  # all drawn (seen read at 3 of 8 under load)


def type_and_rerank(browser, url: str, documents: str):
    """A new page at `url` that types QUERY and `documents` and presses Ctrl+Enter, as a person would; the page."""
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1440, "height": 1100})
    page.goto(url)
    expect(page.get_by_text("Engine ready")).to_be_visible(timeout=90_000)
    page.get_by_label("Query").fill(QUERY)
    page.get_by_label("Query").press("Enter")
    box = page.get_by_label("Documents (one per line)")
    box.fill(documents)
    box.press("Control+Enter")
    return page


def settled(page) -> None:
    """Wait until the script run the last action started has finished."""
    page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=30_000)


def drawn(page) -> None:
    """Wait until the tables and charts are drawn (they show a grey placeholder first; on a narrow page for
    seconds), then a moment for their content."""
    page.wait_for_function("!document.querySelector('[data-testid^=\"stSkeleton\"]')", timeout=30_000)
    page.wait_for_timeout(1000)


def test_rerank_in_a_real_browser(workbench_url, browser, reranker, output_dir):
    from playwright.sync_api import expect

    expected = reranker.rank(QUERY, DOCUMENTS)
    dialogs: list[str] = []
    page = browser.new_page(viewport={"width": 1440, "height": 1100})
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(workbench_url)
    expect(page.get_by_text("Engine ready")).to_be_visible(timeout=90_000)

    query = page.get_by_label("Query")
    query.fill(QUERY)
    query.press("Enter")
    documents = page.get_by_label("Documents (one per line)")
    documents.fill("\n".join(DOCUMENTS))
    documents.press("Control+Enter")
    expect(page.get_by_text(f"{len(DOCUMENTS)} documents")).to_be_visible(timeout=30_000)
    page.get_by_role("button", name="Rerank").click()

    top = page.locator(".rank-card.top")
    expect(top).to_have_count(1, timeout=60_000)
    expect(page.locator(".rank-card")).to_have_count(len(DOCUMENTS))
    expect(top.locator(".doc-text")).to_have_text(expected[0].document)
    expect(top.locator(".rank")).to_have_text("#1")
    assert top.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(11, 61, 145)"
    texts = page.locator(".rank-card .doc-text").all_inner_texts()
    assert texts == [d.document for d in expected]
    assert page.locator(".rank-card img").count() == 0
    settled(page)
    page.get_by_role("heading", name="Qwen-Ranker Pro").scroll_into_view_if_needed()
    page.screenshot(path=str(output_dir / "rerank-1440.png"))

    # "Why?" on the second card: its sentences shaded, hostile text inert
    page.get_by_role("button", name="Why this rank?").nth(1).click()
    expect(page.locator(".why .why-span").first).to_be_visible(timeout=30_000)
    expect(page.locator(".why .why-legend")).to_contain_text("pushes towards “yes”")
    assert page.locator(".rank-card img, .why img").count() == 0
    settled(page)
    page.locator(".why").scroll_into_view_if_needed()
    page.screenshot(path=str(output_dir / "rerank-why-1440.png"))
    page.get_by_role("tab", name="Table").click()
    expect(page.get_by_text(f"All {len(DOCUMENTS)} documents for the query")).to_be_visible()
    expect(page.get_by_test_id("stDataFrame").first).to_be_visible()
    page.wait_for_timeout(1000)  # the grid draws on a canvas after it appears
    page.screenshot(path=str(output_dir / "rerank-table-1440.png"))

    # every page at 1440 px, then at a phone's 390 px (the sidebar folded away, the engine's status still in the page)
    pages = (("Rerank", "", "button:has-text('Rerank')"),
             ("Compare", "compare_instructions", "button:has-text('Compare')"),
             ("CSV batches", "csv_batches", "[data-testid='stFileUploader']"),
             ("Jobs", "jobs", "text=No jobs on this workbench yet"))
    for link, _, last in pages:  # `last`: an element low on the page, there once the page is drawn
        page.get_by_role("link", name=link).click()
        expect(page.locator(last).last).to_be_visible(timeout=30_000)
        settled(page)
        expect(page.get_by_text("in this process on cpu")).to_be_visible()
        page.screenshot(path=str(output_dir / f"{link.split()[0].lower()}-1440.png"), full_page=True)
    phone = browser.new_page(viewport={"width": 390, "height": 1800})  # a phone's width; tall, to see a page whole
    for link, path, last in pages:
        phone.goto(f"{workbench_url}/{path}")
        expect(phone.get_by_text("in this process on cpu")).to_be_visible(timeout=30_000)
        expect(phone.locator(last).last).to_be_visible(timeout=30_000)
        if not path:
            rerank_a_sample(phone)
        settled(phone)
        phone.wait_for_timeout(500)  # charts and tables draw after the run
        phone.screenshot(path=str(output_dir / f"{link.split()[0].lower()}-390.png"), full_page=True)
    assert dialogs == []


def test_a_csv_job_runs_in_the_workbenchs_own_process_and_its_api_sees_it(workbench_url, browser, tmp_path):
    """Under ./start.sh the job worker runs beside the pages: a job sent from the CSV page is scored there, the Jobs
    page follows it to its download, and the API on the same port lists the same job."""
    from playwright.sync_api import expect

    table = tmp_path / "pairs.csv"
    table.write_text("query,document\n" + "".join(f"question {n % 2},passage {n}\n" for n in range(12)),
                     encoding="utf-8")
    page = browser.new_page(viewport={"width": 1440, "height": 1100})
    page.goto(f"{workbench_url}/csv_batches")
    file_input(page, "CSV or TSV file").set_input_files(str(table))
    page.get_by_role("button", name="Run as a background job").click()
    expect(page.get_by_text(re.compile(r"Job \w{8} started on this workbench"))).to_be_visible(timeout=30_000)
    page.get_by_role("link", name="Follow it on the Jobs page").click()
    expect(page.get_by_role("button", name="Download CSV")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Done: 12 pairs scored")).to_be_visible()
    job_id = page.url.rsplit("job=", 1)[1]
    listed = requests.get(f"{workbench_url}/api/jobs/{job_id}", timeout=30).json()
    assert listed["status"] == "done" and listed["filename"] == "pairs.csv"


def test_a_json_upload_scored_in_the_page_keeps_its_ids_in_the_download(workbench_url, browser, tmp_path):
    from playwright.sync_api import expect

    rows = [{"id": f"doc-{n}", "query": "What is the capital of China?", "document": text}
            for n, text in enumerate(["Beijing is the capital.", "Paris is in France.", "=1+1"])]
    table = tmp_path / "pairs.jsonl"
    table.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    page = browser.new_page(viewport={"width": 1440, "height": 1100})
    page.goto(f"{workbench_url}/csv_batches")
    file_input(page, "CSV or TSV file").set_input_files(str(table))
    page.get_by_role("button", name="Score 3 pairs").click()
    expect(page.get_by_role("button", name="Download CSV")).to_be_visible(timeout=60_000)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").click()
    lines = Path(download.value.path()).read_text(encoding="utf-8-sig").splitlines()
    header = lines[0].split(",")
    assert header[-1] == "id" and len(lines) == 4
    by_id = {line.split(",")[-1]: line for line in lines[1:]}
    assert set(by_id) == {"doc-0", "doc-1", "doc-2"} and "'=1+1" in by_id["doc-2"]
    page.close()


def test_the_evaluate_page_on_the_sample(workbench_url, browser, output_dir):
    """The sample evaluated in a real browser: the table, the charts, the threshold, the depth curve; drawn at 1440
    and 390 px."""
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1440, "height": 3400})  # tall: the page scrolls inside itself
    page.goto(f"{workbench_url}/evaluate")
    expect(page.get_by_text("Engine ready")).to_be_visible(timeout=90_000)
    page.get_by_role("textbox", name="Depth sweep: also K =").fill("3,5")
    page.get_by_role("textbox", name="Depth sweep: also K =").press("Enter")
    page.get_by_role("button", name="Evaluate", exact=True).click()
    expect(page.get_by_role("heading", name="Before and after")).to_be_visible(timeout=120_000)
    expect(page.get_by_text(re.compile(r"\d+ queries gained, \d+ lost"))).to_be_visible()
    expect(page.get_by_text(re.compile("^Suggested K, the smallest within"))).to_be_visible()
    expect(page.get_by_role("button", name="Threshold (JSON)")).to_be_visible(timeout=30_000)  # drawn last
    settled(page)
    drawn(page)
    page.screenshot(path=str(output_dir / "evaluate-1440.png"), full_page=True)
    page.reload()  # the result comes back, not scored again
    expect(page.get_by_role("heading", name="Before and after")).to_be_visible(timeout=30_000)
    assert page.get_by_text(re.compile(r"Scored \d+ of")).count() == 0
    phone = browser.new_page(viewport={"width": 390, "height": 5200})
    phone.goto(f"{workbench_url}/evaluate")
    phone.get_by_text("My own files").click()  # the same data, uploaded as a person would
    sample = ROOT / "assets" / "eval_sample"
    files = [sample / "corpus.jsonl", sample / "queries.jsonl", sample / "qrels" / "test.tsv", sample / "bm25.trec"]
    file_input(phone, "A BEIR folder's files").set_input_files([str(f) for f in files])
    expect(phone.get_by_text(re.compile("Files: .*bm25.trec as run.trec"))).to_be_visible(timeout=30_000)
    phone.get_by_role("textbox", name="Depth sweep: also K =").fill("5")  # shallower: no pair scored again
    phone.get_by_role("textbox", name="Depth sweep: also K =").press("Enter")
    phone.get_by_role("button", name="Evaluate", exact=True).click()
    expect(phone.get_by_role("heading", name="Before and after")).to_be_visible(timeout=120_000)
    expect(phone.get_by_text(re.compile("^Suggested K, the smallest within"))).to_be_visible()
    expect(phone.get_by_text(re.compile(r"^0 of [\d,]+ pairs scored now"))).to_be_visible()  # the store had them
    settled(phone)
    drawn(phone)
    phone.screenshot(path=str(output_dir / "evaluate-390.png"), full_page=True)


LONG = " ".join(f"Sentence {n} tells of the weather in a far away town." for n in range(60)) + \
    " The capital of China is Beijing, the seat of its government. " + \
    " ".join(f"Closing remark {n} adds nothing new." for n in range(40))


def test_a_long_documents_best_passage_is_marked_and_one_click_away(workbench_url, browser, reranker, output_dir):
    """Passages of 128 tokens: the long document's card names its best passage, shades it, draws a band per passage
    along the document, and the badge scrolls the card's text to the passage; at 1440 and 390 px."""
    from playwright.sync_api import expect

    from reranker import Query

    [[_, judged]] = reranker.judge_many([Query(QUERY, ["Gravity pulls things down.", LONG], passage_tokens=128)])
    best = judged.best_passage()
    for width, height in ((1440, 1100), (390, 1800)):
        page = browser.new_page(viewport={"width": width, "height": height})
        page.goto(workbench_url)
        expect(page.get_by_text("in this process on cpu")).to_be_visible(timeout=90_000)
        page.get_by_label("Query").fill(QUERY)
        page.get_by_label("Query").press("Enter")
        documents = page.get_by_label("Documents (one per line)")
        documents.fill("Gravity pulls things down.\n" + LONG)
        documents.press("Control+Enter")
        expect(page.get_by_text("2 documents")).to_be_visible(timeout=30_000)
        passages = page.get_by_role("spinbutton", name="Long documents: passages of N tokens (0: each document whole)")
        passages.fill("128")
        passages.press("Enter")
        settled(page)
        page.get_by_role("button", name="Rerank").click()

        badge = page.get_by_role("link", name=re.compile("best passage: characters"))
        expect(badge).to_have_text(f"best passage: characters {best.start:,}–{best.end:,} of {len(LONG):,}",
                                   timeout=60_000)
        card = page.locator(".rank-card", has=badge)
        expect(card.locator(".passage-strip .band")).to_have_count(len(judged.passages))
        shaded = card.locator(".best-passage")
        expect(shaded).to_have_text(LONG[best.start:best.end])
        settled(page)
        badge.click()
        text_box = card.locator(".doc-text").bounding_box()
        expect(shaded).to_be_in_viewport()
        passage_box = shaded.bounding_box()
        assert text_box["y"] <= passage_box["y"] < text_box["y"] + text_box["height"]  # scrolled into its box
        page.screenshot(path=str(output_dir / f"rerank-passages-{width}.png"))


def test_why_on_a_long_document_shows_progress_and_cancels(workbench_url, browser, output_dir):
    """"Why this rank?" on a 4,500-word document: a progress bar over the versions of the document being scored, and
    Cancel, which closes the view and keeps what was scored; a second press goes on from there."""
    from playwright.sync_api import expect

    long = " ".join(f"Sentence {n} of the report describes the weather and the roads of a small town in detail, "
                    + "with many words that say little about any capital city at all " * 4 + "."
                    for n in range(60))  # its first 40 sentences are explained, each version read whole
    page = type_and_rerank(browser, workbench_url, f"Gravity pulls things down.\n{long}")
    expect(page.get_by_text("2 documents")).to_be_visible(timeout=30_000)
    page.get_by_role("button", name="Rerank").click()
    expect(page.locator(".rank-card")).to_have_count(2, timeout=120_000)
    settled(page)
    long_card = [n for n, text in enumerate(page.locator(".rank-card .doc-text").all_inner_texts())
                 if text.startswith("Sentence 0")][0]
    page.get_by_role("button", name="Why this rank?").nth(long_card).click()
    progress = page.get_by_text(re.compile(r"Scored \d+ of 41 versions of the document · .* elapsed"))
    expect(progress).to_be_visible(timeout=30_000)
    page.screenshot(path=str(output_dir / "rerank-why-progress-1440.png"))
    page.get_by_role("button", name="Cancel").click()
    expect(page.get_by_text(re.compile(r"Cancelled after \d+ of 41 versions of the document"))).to_be_visible(
        timeout=30_000)
    expect(page.get_by_role("button", name="Why this rank?")).to_have_count(2)
    assert page.locator(".why").count() == 0
    page.get_by_role("button", name="Why this rank?").nth(long_card).click()  # goes on from what was kept
    expect(page.locator(".why .why-span").first).to_be_visible(timeout=120_000)


def test_broken_text_and_a_bad_session_link_leave_the_page_working_and_the_inputs_kept(workbench_url, browser,
                                                                                        output_dir):
    """A lone surrogate pasted in (the browser sends it as bytes that are not UTF-8): said where it is, and every
    click still works; then an unknown session link says so, shows no server folder, and the inputs stay."""
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 390, "height": 1400})
    page.goto(workbench_url)
    expect(page.get_by_label("Query")).to_be_visible(timeout=90_000)
    page.get_by_label("Query").fill("capital \ud800 of China")
    page.get_by_label("Query").press("Enter")
    expect(page.get_by_text("The query holds a character that could not be read")).to_be_visible(timeout=10_000)
    box = page.get_by_label("Documents (one per line)")
    box.fill("Beijing is the capital.\nShanghai \udc00 is a port.")
    box.press("Control+Enter")
    expect(page.get_by_text("2 documents", exact=True)).to_be_visible(timeout=10_000)
    expect(page.get_by_text("The document #2 holds a character")).to_be_visible()
    expect(page.get_by_role("button", name="Rerank", exact=True)).to_be_enabled(timeout=90_000)
    page.get_by_role("button", name="Rerank", exact=True).click()
    expect(page.locator(".rank-card")).to_have_count(2, timeout=30_000)
    settled(page)
    page.screenshot(path=str(output_dir / "rerank-broken-text-390.png"), full_page=True)

    page.goto(f"{workbench_url}/?session=0123456789abcdef")
    expect(page.get_by_text("session 0123456789abcdef was not found")).to_be_visible(timeout=30_000)
    alert = page.get_by_test_id("stAlert").filter(has_text="was not found").inner_text()
    assert "/" not in alert and "data" not in alert
    expect(page.get_by_label("Query")).to_have_value("capital \ufffd of China")
    page.goto(workbench_url)
    expect(page.get_by_label("Query")).to_have_value("capital \ufffd of China", timeout=30_000)
    expect(page.get_by_label("Documents (one per line)")).to_have_value("Beijing is the capital.\nShanghai \ufffd is a "
                                                                        "port.")


def test_a_saved_session_comes_back_after_a_reload(workbench_url, browser, output_dir):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1440, "height": 1100})
    page.goto(workbench_url)
    expect(page.get_by_text("Engine ready")).to_be_visible(timeout=90_000)
    rerank_a_sample(page)
    settled(page)
    before = page.locator(".rank-card .doc-text").all_inner_texts()
    assert len(before) == 8  # the sample's documents
    page.get_by_text("Save or share this ranking").click()
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(re.compile(r"\?session=[0-9a-f]{16}$"), timeout=10_000)
    settled(page)

    page.reload()
    expect(page.get_by_text(re.compile("Saved at .* not scored again"))).to_be_visible(timeout=30_000)
    expect(page.locator(".rank-card")).to_have_count(len(before), timeout=30_000)
    assert page.locator(".rank-card .doc-text").all_inner_texts() == before
    expect(page.get_by_label("Query")).to_have_value(QUERY)
    assert page.get_by_text(re.compile(r"Scored \d+ of")).count() == 0  # no scoring run
    page.screenshot(path=str(output_dir / "rerank-restored-1440.png"))


def test_a_reload_or_a_closed_tab_loses_nothing(workbench_url, browser, output_dir, slow_documents):
    """The inputs and the last ranking come back after a reload and in a new tab of the same browser, even when the
    reload came in the middle of scoring; Compare's result too; and past rankings can be opened again."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1440, "height": 1100})
    page = context.new_page()
    page.goto(workbench_url)
    expect(page.get_by_text("Engine ready")).to_be_visible(timeout=90_000)
    rerank_a_sample(page)
    settled(page)
    ranked = page.locator(".rank-card .doc-text").all_inner_texts()
    page.reload()
    expect(page.locator(".rank-card")).to_have_count(len(ranked), timeout=30_000)
    assert page.locator(".rank-card .doc-text").all_inner_texts() == ranked
    expect(page.get_by_label("Query")).to_have_value(QUERY)
    assert page.get_by_text(re.compile(r"Scored \d+ of")).count() == 0  # shown as it was, not scored again

    # a reload in the middle of scoring 80 long documents keeps them (and the ranking before them)
    page.get_by_label("Query").fill("Which document is the longest?")
    documents = page.get_by_label("Documents (one per line)")
    documents.fill("\n".join(slow_documents))
    documents.press("Control+Enter")
    expect(page.get_by_text(f"{len(slow_documents)} documents")).to_be_visible(timeout=30_000)
    page.get_by_role("button", name="Rerank").click()
    expect(page.get_by_text(re.compile(rf"Scored \d+ of {len(slow_documents)} documents"))).to_be_visible(
        timeout=10_000)
    page.reload()
    expect(page.get_by_text(f"{len(slow_documents)} documents")).to_be_visible(timeout=30_000)
    expect(page.get_by_label("Query")).to_have_value("Which document is the longest?")
    expect(page.locator(".rank-card")).to_have_count(len(ranked))
    expect(page.get_by_text("The inputs or the model changed since this ranking")).to_be_visible()
    page.close()

    # Compare, then the tab closed: a new tab of the same browser has both pages as they were
    page = context.new_page()
    page.goto(f"{workbench_url}/compare_instructions")
    expect(page.get_by_text("in this process on cpu")).to_be_visible(timeout=30_000)
    settled(page)
    page.get_by_role("button", name="中文 · 睡眠质量").click()
    expect(page.get_by_label("Query")).to_have_value("如何提高睡眠质量？", timeout=10_000)
    settled(page)
    page.wait_for_timeout(500)  # as in rerank_a_sample: a click on a button being redrawn can be lost
    page.get_by_role("button", name="Compare", exact=True).click()
    expect(page.get_by_role("heading", name="Agreement")).to_be_visible(timeout=60_000)
    settled(page)
    page.close()
    page = context.new_page()
    page.goto(f"{workbench_url}/compare_instructions")
    expect(page.get_by_role("heading", name="Agreement")).to_be_visible(timeout=30_000)
    expect(page.get_by_label("Query")).to_have_value("如何提高睡眠质量？")
    page.goto(workbench_url)
    expect(page.get_by_label("Query")).to_have_value("Which document is the longest?", timeout=30_000)

    # the history: the first ranking opened again, unscored
    page.get_by_text(re.compile(r"Recent rankings in this browser \(1\)")).click()
    page.get_by_role("button", name="Open it again").click()
    expect(page.get_by_label("Query")).to_have_value(QUERY, timeout=30_000)
    expect(page.locator(".rank-card")).to_have_count(len(ranked))
    assert page.locator(".rank-card .doc-text").all_inner_texts() == ranked
    settled(page)
    page.screenshot(path=str(output_dir / "rerank-history-1440.png"), full_page=True)
    context.close()


def test_rerank_progress_moves_and_cancel_keeps_what_was_scored(workbench_url, browser, output_dir,
                                                                   slow_documents):
    """Several seconds of scoring: the progress under the button moves with elapsed time and time left, and Cancel
    stops it, keeping what was scored (in the session's cache); Rerank then finishes the job."""
    from playwright.sync_api import expect

    page = type_and_rerank(browser, workbench_url, "\n".join(slow_documents))
    expect(page.get_by_text(f"{len(slow_documents)} documents")).to_be_visible(timeout=30_000)
    page.get_by_role("button", name="Rerank").click()

    progress = page.get_by_text(re.compile(rf"Scored \d+ of {len(slow_documents)} documents · .* elapsed"))
    expect(progress).to_be_visible(timeout=10_000)
    seen = {progress.inner_text()}
    deadline = time.monotonic() + 20
    while len({re.match(r"Scored (\d+)", t).group(1) for t in seen}) < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
        if progress.count():
            seen.add(progress.inner_text())
    done = sorted({int(re.match(r"Scored (\d+)", t).group(1)) for t in seen})
    assert len(done) >= 3 and 0 < done[-1] < len(slow_documents), seen  # it moved, and the run had not ended
    assert any("left" in t for t in seen)
    page.screenshot(path=str(output_dir / "rerank-progress-1440.png"))
    page.get_by_role("button", name="Cancel").click()

    cancelled = page.get_by_text(re.compile(rf"Cancelled after \d+ of {len(slow_documents)} documents"))
    expect(cancelled).to_be_visible(timeout=10_000)
    kept = int(re.search(r"after (\d+)", cancelled.inner_text()).group(1))
    assert done[-1] <= kept < len(slow_documents)
    expect(page.locator(".rank-card")).to_have_count(0)
    settled(page)

    page.get_by_role("button", name="Rerank").click()
    expect(page.locator(".rank-card")).to_have_count(10, timeout=60_000)


def test_an_offline_start_says_so_in_seconds_and_clicks_never_wait(browser, tmp_path, output_dir):
    """The default hub model, with a hub that accepts connections and never answers, and nothing cached: the page
    comes at once and is usable while the model "loads"; the error comes within seconds; clicks never wait on it
    (the failure is remembered, not retried)."""
    from playwright.sync_api import expect

    with socket.socket() as silent_hub:  # listens (the kernel accepts connections) but never answers
        silent_hub.bind(("127.0.0.1", 0))
        silent_hub.listen(16)
        env = {**os.environ, "RERANKER_MODEL": "Qwen/Qwen3-Reranker-0.6B", "RERANKER_DATA_DIR": str(tmp_path / "data"),
               "HF_ENDPOINT": f"http://127.0.0.1:{silent_hub.getsockname()[1]}", "HF_HOME": str(tmp_path / "hf-home")}
        for name in ("RERANKER_API_URL", "RERANKER_SERVER", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_CACHE"):
            env.pop(name, None)
        with workbench_process(env, tmp_path / "streamlit.log") as url:
            page = browser.new_page(viewport={"width": 1440, "height": 1100})
            page.goto(url)
            expect(page.get_by_label("Query")).to_be_visible(timeout=10_000)
            loading = page.get_by_text(re.compile(r"Loading Qwen/Qwen3-Reranker-0\.6B .*: \d+ s so far"))
            expect(loading).to_be_visible(timeout=5_000)
            expect(page.get_by_role("button", name="Rerank")).to_be_disabled()
            page.get_by_role("button", name="English · capital of China").click()
            expect(page.get_by_label("Query")).to_have_value(QUERY, timeout=5_000)
            page.screenshot(path=str(output_dir / "rerank-loading-1440.png"))

            expect(page.get_by_text("Engine not loaded")).to_be_visible(timeout=20_000)
            error = page.get_by_text("Could not load the reranker model 'Qwen/Qwen3-Reranker-0.6B'")
            expect(error).to_be_visible()
            assert "`" not in error.inner_text() and ".." not in error.inner_text()
            page.get_by_role("button", name="中文 · 睡眠质量").click()
            expect(page.get_by_label("Query")).to_have_value("如何提高睡眠质量？", timeout=5_000)
            expect(page.get_by_role("button", name="Try again")).to_be_visible()
            page.screenshot(path=str(output_dir / "rerank-offline-1440.png"))

            # `streamlit run app.py` sets no cookie: the browser's id is in the address, and a reload keeps the work
            expect(page).to_have_url(re.compile(r"\?browser=[0-9a-f]{32}"))
            settled(page)
            page.reload()
            expect(page.get_by_label("Query")).to_have_value("如何提高睡眠质量？", timeout=10_000)
