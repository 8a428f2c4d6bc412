"""What a measured plan (``tests._plans.generic_plan``) read from one table."""

from __future__ import annotations


def reads(node: dict, table: str) -> list[tuple[str, str | None, int]]:
    """Every scan of ``table`` in the plan: its type, its index and the rows it read, over all
    its loops (those it returned and those its filters removed, which a row count hides)."""
    out = []
    if node.get("Relation Name") == table:
        per_loop = (
            node.get("Actual Rows", 0)
            + node.get("Rows Removed by Filter", 0)
            + node.get("Rows Removed by Index Recheck", 0)
        )
        out.append(
            (node["Node Type"], node.get("Index Name"), round(per_loop * node["Actual Loops"]))
        )
    for child in node.get("Plans", []):
        out += reads(child, table)
    return out
