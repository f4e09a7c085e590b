"""A missing user-supplied file names where it comes from."""

from saesteer.downloads import PAPER_REPOSITORY, missing_file


def test_a_missing_paper_file_says_how_to_fetch_it():
    message = missing_file("features.file", "resources/paper/gemma_2b_features.json")
    assert message.startswith("features.file: file not found: resources/paper/")
    assert "data/features/gemma_2b_features.json" in message and "make paper-data" in message
    assert PAPER_REPOSITORY in missing_file("concepts.released.data_dir", "x/data")


def test_any_other_file_says_no_rule_makes_it():
    assert "no rule makes this file" in missing_file("corpus.files", "mine.txt")
