"""Atomic writes, locks and strict JSON."""

import threading

import pytest

from saesteer.errors import DataFileError
from saesteer.io import atomic_path, exclusive, is_finite_number, loads_json, read_json_object


def test_a_failed_write_leaves_neither_the_file_nor_a_temp_file(tmp_path):
    path = tmp_path / "sub" / "out.txt"
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert list((tmp_path / "sub").iterdir()) == []
    with atomic_path(path) as tmp:
        tmp.write_text("whole")
    assert path.read_text() == "whole" and list((tmp_path / "sub").iterdir()) == [path]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"a": NaN}', "NaN is not a JSON number"),
        ("[-Infinity]", "-Infinity is not a JSON number"),
        ("[1e999]", "1e999 is not a finite number"),
        ("{", "Expecting property name"),
    ],
)
def test_json_numbers_must_be_finite(text, message):
    with pytest.raises(DataFileError, match=f"where: not valid JSON.*{message}"):
        loads_json(text, "where")


def test_a_json_object_file(tmp_path):
    path = tmp_path / "x.json"
    with pytest.raises(DataFileError, match="x: file not found"):
        read_json_object(path, "x", "{...}")
    path.write_text("[1]")
    with pytest.raises(DataFileError, match=r"x: expected \{k: v\}, got list"):
        read_json_object(path, "x", "{k: v}")
    path.write_text('{"k": 1.5}')
    assert read_json_object(path, "x", "{k: v}") == {"k": 1.5}


def test_finite_numbers():
    assert is_finite_number(3) and is_finite_number(-2.5)
    assert not any(map(is_finite_number, [True, float("nan"), float("inf"), 10**400, "1"]))


def test_exclusive_admits_one_holder_at_a_time(tmp_path):
    lock, order = tmp_path / "models" / ".model.lock", []

    def second():
        with exclusive(lock):
            order.append("second")

    with exclusive(lock):
        waiting = threading.Thread(target=second)
        waiting.start()
        waiting.join(0.5)
        assert waiting.is_alive()  # blocked while the first holds the lock
        order.append("first")
    waiting.join(10)
    assert order == ["first", "second"]
