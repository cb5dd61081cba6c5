"""The report's "Teacher mass in the target's vocabulary" section, from the align stage.

For each mode and source, the align stage's summary (``mass``, see
`profuser.align.project.count_mass`) gives the share of target positions
anchored to a source token and how the teacher's mass there reached the target
vocabulary: the source token's text is one target token (``exact``), the target
spells it in several tokens and takes the first (``prefix``), the target's unk
token (``unk``), or no target token at all (``dropped``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MODES = (("train_mode", "training"), ("infer_mode", "inference"))
COLUMNS = ("positions_aligned", "exact", "prefix", "unk", "dropped", "stored_mass")


def alignment_section(summary: Mapping[str, Any]) -> dict[str, dict]:
    """results.json's ``alignment``: per mode, the aligned fraction and the per-source mass."""
    out = {}
    for key, _ in MODES:
        mode = summary.get(key)
        if mode and mode.get("mass"):
            out[key] = {"aligned_fraction": mode.get("aligned_fraction"), "mass": mode["mass"]}
    return out


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.2f}%"


def alignment_markdown(section: Mapping[str, Any], target: str) -> list[str]:
    """The section's Markdown lines; none where the align stage gave no figures."""
    if not section:
        return []
    lines = [
        f"## Teacher mass in the target's vocabulary (target {target})",
        "",
        "Per source: the share of target answer tokens that start where one of its tokens "
        "starts, and of its top-k mass there (each position's kept candidates renormalised) "
        "the share whose token is one target token (exact), is spelt by the target in several "
        "tokens and goes to the first (prefix), goes to the target's unk token, or is dropped. "
        "Training mode counts the MinCE winners' rows, inference mode the voted answers'.",
        "",
        "| mode | source | positions aligned | exact | prefix | unk | dropped | stored top-k mass |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, label in MODES:
        for source, row in (section.get(key) or {}).get("mass", {}).items():
            cells = [_pct(row.get(c)) for c in COLUMNS]
            lines.append(f"| {label} | {source} | " + " | ".join(cells) + " |")
    return [*lines, ""]
