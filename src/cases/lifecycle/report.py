"""Markdown pieces every report shares: the data line and titled sections."""

from __future__ import annotations

from collections.abc import Iterable


def source_line(info: dict) -> str:
    """Which data the run used: description, rows (and the sample), source and content hash."""
    sampled = (f" (a seeded sample of {info['rows']:,} from {info['rows_available']:,})"
               if info.get("sampled") else "")
    return (f"**Data:** {info['description']}: {info['rows']:,} rows{sampled}; source "
            f"`{info['source']}`, content hash `{info['data_hash']}`.")


def sections(items: Iterable[tuple[str, str]]) -> list[str]:
    lines: list[str] = []
    for title, body in items:
        lines += [f"## {title}", "", body.strip(), ""]
    return lines
