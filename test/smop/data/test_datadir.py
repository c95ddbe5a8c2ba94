"""The one reader of Kaldi tables: data dirs, scp files, hypotheses and key lists."""

import pytest

from smop.data.datadir import DataDirError, read_table


def test_values_are_kept_as_written_and_lines_named(tmp_path):
    table = tmp_path / "text"
    table.write_text("a hello  world \nb x\n")
    assert read_table(table) == [("a", "hello  world "), ("b", "x")]
    table.write_text("a hello\nb \n")
    with pytest.raises(DataDirError, match=r"text:2: no value for 'b'"):
        read_table(table)


def test_hypotheses_and_key_lists_need_no_value_but_no_repeat(tmp_path):
    keys = tmp_path / "keys.1.scp"
    keys.write_text("b\na\n")
    assert read_table(keys, unique=True, value_required=False) == [("b", ""), ("a", "")]
    keys.write_text("b\na\nb\n")
    with pytest.raises(DataDirError, match=r"keys.1.scp:3: duplicate utterance id 'b'"):
        read_table(keys, unique=True, value_required=False)
    keys.write_text("b\n\na\n")
    with pytest.raises(DataDirError, match=r"keys.1.scp:2: empty line"):
        read_table(keys, value_required=False)
