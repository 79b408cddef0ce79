"""Grouping accuracy (GA) on Loghub-2k: ours vs drain3 (default, and fed our masked messages) vs the
published Drain figure (Zhu et al. 2019, tuned per data set).

.venv/bin/python bench/loghub_accuracy.py [--heldout DIR]

Reads ../shared/loghub (skips when absent). Held-out systems (other public Loghub-2k data sets, in the
same layout, e.g. ../shared/loghub-heldout) are reported apart when present or given: they are a check
that the one configuration generalises and must never be tuned on.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from drain3 import TemplateMiner
from drain3.template_miner_config import TemplateMinerConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cm_mcp.summarize.masking import mask_message
from cm_mcp.summarize.templates import group_messages
from tests.test_summarize_loghub import grouping_accuracy

SHARED = Path(__file__).resolve().parents[2] / "shared"
LOGHUB = SHARED / "loghub"
HELDOUT = SHARED / "loghub-heldout"
#: Published Drain GA (Zhu et al., ICSE-SEIP 2019, Table 3) for the public Loghub-2k systems.
PUBLISHED_DRAIN = {
    "Android": 0.911,
    "Apache": 1.0,
    "BGL": 0.963,
    "HDFS": 0.998,
    "HPC": 0.887,
    "Hadoop": 0.948,
    "HealthApp": 0.780,
    "Linux": 0.690,
    "Mac": 0.787,
    "OpenSSH": 0.788,
    "OpenStack": 0.733,
    "Proxifier": 0.527,
    "Spark": 0.920,
    "Thunderbird": 0.955,
    "Windows": 0.997,
    "Zookeeper": 0.967,
}


def drain3_default(messages: list[str]) -> list[int]:
    miner = TemplateMiner(config=TemplateMinerConfig())
    return [miner.add_log_message(m)["cluster_id"] for m in messages]


def drain3_masked(messages: list[str]) -> list[int]:
    """drain3 with its default settings over our masked messages: what our masking alone buys it."""
    miner = TemplateMiner(config=TemplateMinerConfig())
    return [miner.add_log_message(mask_message(m))["cluster_id"] for m in messages]


def ours(messages: list[str]) -> list[int]:
    return group_messages(messages).assignments


METHODS: dict[str, Callable[[list[str]], list[int]]] = {
    "ours": ours,
    "drain3": drain3_default,
    "d3+masks": drain3_masked,
}


def structured_files(root: Path, corrected: bool) -> list[tuple[str, Path]]:
    pattern = "*/corrected/*_2k.log_structured_corrected.csv" if corrected else "*/*_2k.log_structured.csv"
    return sorted((path.name.split("_2k")[0], path) for path in root.glob(pattern))


def table(title: str, files: list[tuple[str, Path]]) -> dict[str, float]:
    print(f"\n{title}")
    print(f"{'system':<12}" + "".join(f"{name:>9}" for name in METHODS) + f"{'paper':>9}")
    scores: dict[str, dict[str, float]] = {name: {} for name in METHODS}
    seconds = lines = 0.0
    for system, path in files:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        messages, truth = [r["Content"] for r in rows], [r["EventId"] for r in rows]
        for name, method in METHODS.items():
            start = time.perf_counter()
            predicted = method(messages)
            if name == "ours":
                seconds += time.perf_counter() - start
                lines += len(messages)
            scores[name][system] = grouping_accuracy(predicted, truth)
        paper = PUBLISHED_DRAIN.get(system, float("nan"))
        print(f"{system:<12}" + "".join(f"{scores[n][system]:9.3f}" for n in METHODS) + f"{paper:9.3f}")
    systems = [system for system, _ in files]
    means = {name: sum(scores[name].values()) / len(systems) for name in METHODS}
    paper_mean = sum(PUBLISHED_DRAIN.get(s, float("nan")) for s in systems) / len(systems)
    print(f"{'mean':<12}" + "".join(f"{means[n]:9.3f}" for n in METHODS) + f"{paper_mean:9.3f}")
    print(f"{'min':<12}" + "".join(f"{min(scores[n].values()):9.3f}" for n in METHODS))
    print(f"ours: {lines / seconds:,.0f} lines/s (each 2k file grouped from scratch)")
    return scores["ours"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heldout", type=Path, default=HELDOUT, help="held-out systems, same layout")
    args = parser.parse_args()
    if not LOGHUB.is_dir():
        print(f"skipped: {LOGHUB} not found")
        return
    summary = {
        "shared": table("shared systems, original ground truth", structured_files(LOGHUB, False)),
        "corrected": table("shared systems, corrected ground truth", structured_files(LOGHUB, True)),
    }
    heldout = structured_files(args.heldout, False) if args.heldout.is_dir() else []
    if heldout:
        summary["heldout"] = table("held-out systems (never tuned on), original ground truth", heldout)
        everything = {**summary["shared"], **summary["heldout"]}
        print(f"\nall {len(everything)} systems, ours: mean {sum(everything.values()) / len(everything):.3f}")
    print(json.dumps({part: round(sum(v.values()) / len(v), 4) for part, v in summary.items()}))


if __name__ == "__main__":
    main()
