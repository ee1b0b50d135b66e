import pytest

from cases.lifecycle.io import frame_hash, outputs


def test_outputs_publish_all_or_nothing(tmp_path):
    final_a, final_b = tmp_path / "r" / "a.json", tmp_path / "r" / "b.md"
    with pytest.raises(RuntimeError), outputs() as out:
        out.write_json(final_a, {"x": 1})
        raise RuntimeError("stage failed halfway")
    assert not final_a.exists() and not final_b.exists()
    assert list((tmp_path / "r").iterdir()) == []  # no temporary files left behind
    with outputs() as out:
        out.write_json(final_a, {"x": 1})
        folder = out.path(tmp_path / "r" / "plots")
        (folder / "p.png").write_bytes(b"png")
        out.write_text(final_b, "# hi")
    assert final_a.read_text().strip().startswith("{")
    assert (tmp_path / "r" / "plots" / "p.png").exists()
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["a.json", "b.md", "plots"]


def test_frame_hash_is_content_based():
    import pandas as pd

    a = pd.DataFrame({"x": [1, 2], "y": ["a", "b"]})
    assert frame_hash(a) == frame_hash(a.copy())
    assert frame_hash(a) != frame_hash(a.assign(x=[1, 3]))
    assert frame_hash(a) != frame_hash(a.rename(columns={"x": "z"}))


def test_a_folder_we_did_not_write_is_never_replaced(tmp_path):
    from cases.errors import CasebookError
    from cases.lifecycle.io import MARKER

    theirs = tmp_path / "prepared"
    theirs.mkdir()
    (theirs / "thesis.tex").write_text("years of work")
    with pytest.raises(CasebookError, match=r"prepared exists and was not written by casebook"):
        with outputs() as out:
            (out.path(theirs) / "t.parquet").write_bytes(b"x")
    assert (theirs / "thesis.tex").read_text() == "years of work"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prepared"]  # no temp left
    # a folder we published carries the marker and is replaced on the next run
    ours = tmp_path / "plots"
    for content in (b"one", b"two"):
        with outputs() as out:
            (out.path(ours) / "p.png").write_bytes(content)
        assert (ours / MARKER).exists() and (ours / "p.png").read_bytes() == content
    assert sorted(p.name for p in ours.iterdir()) == [MARKER, "p.png"]


def test_published_files_respect_the_umask(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        with outputs() as out:
            out.write_text(tmp_path / "a.md", "x")
            (out.path(tmp_path / "d") / "f.txt").write_text("y")
    finally:
        os.umask(old)
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    assert mode(tmp_path / "a.md") == 0o644
    assert mode(tmp_path / "d") == 0o755 and mode(tmp_path / "d" / "f.txt") == 0o644


def test_stale_temps_are_found_by_name_only(tmp_path):
    from cases.lifecycle.io import remove_stale_temps, stale_temps

    (tmp_path / ".metrics.json.k2j3_x.tmp").write_text("{")
    (tmp_path / ".prepared.abc123.tmp").mkdir()
    (tmp_path / ".prepared.abc123.tmp" / "t.parquet").write_bytes(b"x")
    (tmp_path / "keep.tmp").write_text("a user's file")
    (tmp_path / ".hidden").write_text("not ours")
    (tmp_path / ".flights.json.q1.tmp").write_text("another case's card")
    assert [p.name for p in stale_temps(tmp_path, "metrics")] == [".metrics.json.k2j3_x.tmp"]
    removed = remove_stale_temps(tmp_path)
    assert {p.name for p in removed} == {".metrics.json.k2j3_x.tmp", ".prepared.abc123.tmp",
                                         ".flights.json.q1.tmp"}
    assert sorted(p.name for p in tmp_path.iterdir()) == [".hidden", "keep.tmp"]
