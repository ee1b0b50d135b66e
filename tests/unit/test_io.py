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
