#!/usr/bin/env python3
"""Prints criterion medians as markdown tables: one per benchmark group,
with each implementation's median and its ratio to mqtt-codec's.

Usage: scripts/bench-table.py [target/criterion] [group-prefix]
"""
import json
import pathlib
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")
prefix = sys.argv[2] if len(sys.argv) > 2 else ""


def fmt(ns):
    if ns >= 1000:
        return f"{ns / 1000:.2f} µs"
    return f"{ns:.1f} ns"


groups = {}
for est in root.glob("**/new/estimates.json"):
    bench = json.loads((est.parent / "benchmark.json").read_text())
    group, func = bench["group_id"], bench["function_id"]
    if not group.startswith(prefix):
        continue
    median = json.loads(est.read_text())["median"]["point_estimate"]
    groups.setdefault(group, {})[func] = median

for group in sorted(groups):
    rows = groups[group]
    ours = rows.get("mqtt-codec")
    print(f"\n#### `{group}`\n")
    print("| implementation | median | ratio to mqtt-codec |")
    print("|---|---:|---:|")
    for func, median in sorted(rows.items(), key=lambda kv: kv[1]):
        ratio = f"{median / ours:.2f}x" if ours else "-"
        print(f"| {func} | {fmt(median)} | {ratio} |")
