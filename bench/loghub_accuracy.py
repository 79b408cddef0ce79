"""Grouping accuracy on Loghub-2k: our setting vs drain3 defaults vs the published Drain figure.

Run: .venv/bin/python bench/loghub_accuracy.py   (skips when ../shared/loghub is absent)
"""

from __future__ import annotations

import csv
import json
import sys
import time
from pathlib import Path

from drain3 import TemplateMiner
from drain3.template_miner_config import TemplateMinerConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cm_mcp.summarize.templates import group_messages
from tests.test_summarize_loghub import grouping_accuracy

LOGHUB = Path(__file__).resolve().parents[2] / "shared" / "loghub"


def default_drain3(messages: list[str]) -> list[int]:
    miner = TemplateMiner(config=TemplateMinerConfig())
    return [miner.add_log_message(m)["cluster_id"] for m in messages]


def main() -> None:
    if not LOGHUB.is_dir():
        print(f"skipped: {LOGHUB} not found")
        return
    published = json.loads((LOGHUB / "formats.json").read_text())
    for label, suffix in (
        ("original", "_2k.log_structured.csv"),
        ("corrected", "_2k.log_structured_corrected.csv"),
    ):
        rows_out = []
        lines = seconds = 0.0
        for system in sorted(published):
            path = (
                LOGHUB
                / system
                / (f"corrected/{system}{suffix}" if label == "corrected" else f"{system}{suffix}")
            )
            if not path.exists():
                continue
            with path.open(newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
            messages, truth = [r["Content"] for r in rows], [r["EventId"] for r in rows]
            start = time.perf_counter()
            ours = grouping_accuracy(group_messages(messages).assignments, truth)
            seconds += time.perf_counter() - start
            lines += len(messages)
            base = grouping_accuracy(default_drain3(messages), truth)
            rows_out.append((system, ours, base, published[system]["published_drain_ga_2019"]))
        if not rows_out:
            continue
        print(f"\n{label} ground truth")
        print(f"{'system':<10} {'ours':>6} {'drain3':>7} {'paper':>6}")
        for system, ours, base, paper in rows_out:
            print(f"{system:<10} {ours:6.3f} {base:7.3f} {paper:6.3f}")
        n = len(rows_out)
        means = [sum(r[i] for r in rows_out) / n for i in (1, 2, 3)]
        print(f"{'mean':<10} {means[0]:6.3f} {means[1]:7.3f} {means[2]:6.3f}")
        print(f"ours: {lines / seconds:,.0f} lines/s (each 2k file grouped from scratch)")


if __name__ == "__main__":
    main()
