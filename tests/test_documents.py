"""Parsing the "Documents (one per line)" box."""

from reranker.formats.documents import format_documents, parse_documents


def test_blank_lines_are_dropped_and_lines_stripped():
    parsed = parse_documents("first\n\n   \n  second  \r\nthird\n")
    assert parsed.documents == ["first", "second", "third"]
    assert parsed.line_numbers == [1, 4, 5]
    assert parsed.count == 3
    assert parsed.labels is None
    assert parsed.warnings() == []


def test_empty_text_has_no_documents():
    parsed = parse_documents("  \n\n")
    assert parsed.count == 0 and parsed.labels is None and parsed.warnings() == []


def test_duplicates_are_kept_and_flagged_with_their_lines():
    parsed = parse_documents("a\nb\n\na\nb\nc")
    assert parsed.documents == ["a", "b", "a", "b", "c"]
    assert parsed.duplicate_of == {2: 0, 3: 1}
    (note,) = parsed.warnings()
    assert "2 duplicate documents" in note and "line 4 repeats line 1" in note and "line 5 repeats line 2" in note


def test_trailing_tab_labels_are_read_when_every_line_has_one():
    parsed = parse_documents("Beijing is the capital.\t2\nShanghai is large.\t0\n北京是首都。 \t 1 \n")
    assert parsed.documents == ["Beijing is the capital.", "Shanghai is large.", "北京是首都。"]
    assert parsed.labels == [2.0, 0.0, 1.0]
    assert parsed.warnings() == []


def test_spreadsheet_rows_are_kept_whole():
    pasted = "Product\tPrice in 2024\tnotes\nWidget\tcheap\tsold out 3"
    parsed = parse_documents(pasted)
    assert parsed.documents == ["Product\tPrice in 2024\tnotes", "Widget\tcheap\tsold out 3"]
    assert parsed.labels is None


def test_a_label_on_some_lines_only_keeps_them_whole_and_says_why():
    parsed = parse_documents("alpha\t1\nbeta\ngamma\t0")
    assert parsed.documents == ["alpha\t1", "beta", "gamma\t0"]
    assert parsed.labels is None
    (note,) = parsed.warnings()
    assert "2 of 3 lines" in note and "every line" in note


def test_a_tab_and_text_then_label_keeps_the_inner_tab():
    parsed = parse_documents("title\tbody text\t2\nother\tthing\t0")
    assert parsed.documents == ["title\tbody text", "other\tthing"]
    assert parsed.labels == [2.0, 0.0]


def test_format_documents_parses_back():
    docs, labels = ["one", "二", "three <b>"], [0.0, 2.0, 1.0]
    parsed = parse_documents(format_documents(docs, labels))
    assert parsed.documents == docs and parsed.labels == labels
    assert parse_documents(format_documents(docs)).documents == docs


def test_a_line_with_nothing_visible_is_blank_and_the_drop_is_told():
    parsed = parse_documents("Beijing is the capital.\n\u200b\n \u2060\ufeff \nParis\u200b is in France.\n\n北京。")
    assert parsed.documents == ["Beijing is the capital.", "Paris\u200b is in France.", "北京。"]
    assert parsed.line_numbers == [1, 4, 6]
    (note,) = parsed.warnings()
    assert note.startswith("2 lines with nothing visible in them")
