#!/usr/bin/env python3
"""Prints the median of every criterion benchmark under target/criterion, one per line.

Criterion's console line shows the mean; the README's tables use medians.
Usage: cargo bench --bench engine && python3 benches/medians.py
"""
import glob
import json

for path in sorted(glob.glob("target/criterion/**/new/estimates.json", recursive=True)):
    name = path.split("target/criterion/")[1].rsplit("/new/", 1)[0]
    median = json.load(open(path))["median"]["point_estimate"]
    shown = f"{median / 1e6:.2f} ms" if median >= 1e6 else f"{median / 1e3:.2f} µs" if median >= 1e3 else f"{median:.0f} ns"
    print(f"{name:48s} {shown:>12s}")
