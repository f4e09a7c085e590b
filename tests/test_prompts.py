"""The generation prefixes: the method's, a list, or a file; the first n."""

import pytest

from saesteer.errors import ConfigError
from saesteer.prompts import PREFIXES, resolve_prefixes


def test_prefixes_from_the_method_a_list_or_a_file(tmp_path):
    assert resolve_prefixes("method") == list(PREFIXES) and len(PREFIXES) == 50
    assert resolve_prefixes("method", 2) == list(PREFIXES[:2])
    assert resolve_prefixes(("a", "b c")) == ["a", "b c"]
    path = tmp_path / "p.txt"
    path.write_text("one\n\n two \n")
    assert resolve_prefixes({"file": str(path)}) == ["one", "two"]


@pytest.mark.parametrize(
    ("spec", "n", "message"),
    [
        ([], None, "need one or more non-empty prefixes"),
        (["a", ""], None, "need one or more non-empty prefixes"),
        (["a"], 2, "n_prefixes: 2 > the 1 prefixes"),
        ({"file": "nowhere.txt"}, None, "prefixes.file: nowhere.txt not found"),
    ],
)
def test_bad_prefixes_name_the_field(spec, n, message):
    with pytest.raises(ConfigError, match=message):
        resolve_prefixes(spec, n)
