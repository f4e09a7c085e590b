"""The hand-made feature table and summary of layers 2 and 8 (tests/helpers.py)."""

import pytest

from tests.helpers import hand_made_tables


@pytest.fixture
def tables(tmp_path):
    return hand_made_tables(tmp_path)
