"""The import's first pass over a file finds the same rows, on the same lines, as the second."""

from __future__ import annotations

import io

import pytest

from usecases.register_csv import FileRows, ImportRefused, iter_lines, iter_rows

HEADER = "customer_ref,name,phone_numbers,categories,reason,decided_by,decided_on,starts_on,ends_on"


@pytest.mark.parametrize(("text", "lines"), [
    # a blank line, a row of empty cells, a row of spaces: none of them is a row
    (HEADER + "\nQL-1,A\n\nQL-2,B\n,,,\n , ,\nQL-3\n", [2, 4, 7]),
    # a quoted cell over two lines: a row is named by the line it ends on
    (HEADER + '\nQL-1,"Flat 1\nHigh Street"\nQL-2,B\n', [3, 4]),
    # a cell beyond the named columns is not read: that row is empty
    (HEADER + "\n,,,,,,,,,extra\nQL-2\n", [3]),
    # a column named twice: its last cell counts, so the row with only its first is empty
    (HEADER + ",name\nQL-1,A,,,,,,,,\n,A,,,,,,,,\n,,,,,,,,,B\n", [2, 4]),
    (HEADER.replace(",", ";") + "\nQL-1;A\n\n\nQL-2\n", [2, 5]),
    ("\ufeff" + HEADER + "\r\nQL-1,A\r\n", [2]),
])
def test_the_first_pass_finds_each_row_on_its_line(text: str, lines: list[int]) -> None:
    assert list(iter_lines(io.StringIO(text))) == lines
    assert [line for line, _row in iter_rows(io.StringIO(text))] == lines
    assert list(FileRows(io.StringIO(text)).lines) == lines


def test_a_column_named_twice_is_read_from_its_last_cell() -> None:
    text = HEADER + ",name\nQL-1,First,,,,,,,,Second\n"
    assert [row["name"] for _line, row in iter_rows(io.StringIO(text))] == ["Second"]


@pytest.mark.parametrize(("text", "message"), [
    ("", "line 1, header: the file is empty"),
    ("customer_ref,name\nQL-1,A\n", "line 1, header: missing column(s): phone_numbers, "
                                    "categories, reason, decided_by, decided_on, starts_on, "
                                    "ends_on"),
])
def test_both_passes_refuse_a_file_without_its_header(text: str, message: str) -> None:
    for read in (iter_lines, lambda stream: list(iter_rows(stream))):
        with pytest.raises(ImportRefused) as refused:
            read(io.StringIO(text))
        assert [str(error) for error in refused.value.errors] == [message]
