import pandas as pd
import pytest

from cases.errors import CasebookError
from cases.lifecycle.ingest import Column, Schema, read_table, validate

SCHEMA = Schema((Column("a", "int", nullable=False, min=0, max=10), Column("b", "str"),
                 Column("t", "datetime")))


def test_validate_coerces_and_keeps_schema_columns():
    frame = pd.DataFrame({"a": ["1", "2"], "b": ["x", None], "t": ["2013-01-01", None],
                          "extra": [1, 2]})
    out = validate(frame, SCHEMA, "f.csv")
    assert list(out.columns) == ["a", "b", "t"]
    assert out["a"].tolist() == [1.0, 2.0]
    assert out["b"].tolist() == ["x", None]


def test_missing_column_names_file_and_column():
    with pytest.raises(CasebookError, match=r"f\.csv: missing column\(s\) b"):
        validate(pd.DataFrame({"a": [1], "t": ["2013-01-01"]}), SCHEMA, "f.csv")


def test_mistyped_column_names_value_and_row():
    frame = pd.DataFrame({"a": ["1", "x7"], "b": ["x", "y"], "t": [None, None]})
    with pytest.raises(CasebookError, match=r"column 'a': expected numbers \(int\), found 'x7' at row 3"):
        validate(frame, SCHEMA, "f.csv")


def test_out_of_range_and_missing_required():
    with pytest.raises(CasebookError, match=r"column 'a': expected values in \[0, 10\]"):
        validate(pd.DataFrame({"a": [11], "b": ["x"], "t": [None]}), SCHEMA, "f.csv")
    with pytest.raises(CasebookError, match=r"column 'a': expected no missing values"):
        validate(pd.DataFrame({"a": [1, None], "b": ["x", "y"], "t": [None, None]}), SCHEMA, "f")


def test_bad_datetime_is_named():
    with pytest.raises(CasebookError, match=r"column 't': expected date-times, found 'soon'"):
        validate(pd.DataFrame({"a": [1], "b": ["x"], "t": ["soon"]}), SCHEMA, "f.csv")


def test_read_table_refuses_missing_empty_and_headers_only(tmp_path):
    with pytest.raises(CasebookError, match="file not found"):
        read_table(tmp_path / "nope.csv", "flights file")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(CasebookError, match="file is empty"):
        read_table(empty, "flights file")
    header = tmp_path / "header.csv"
    header.write_text("a,b,t\n")
    with pytest.raises(CasebookError, match="header but no rows"):
        read_table(header, "flights file")
