#!/usr/bin/env python3
"""Prints the median of every criterion benchmark under target/criterion, then the
README's performance table for benches/engine.rs.

Criterion's console line shows the mean; the README's tables use medians.
Usage: cargo bench --bench engine --bench layer && python3 benches/medians.py
"""
import glob
import json

medians = {}
for path in sorted(glob.glob("target/criterion/**/new/estimates.json", recursive=True)):
    name = path.split("target/criterion/")[1].rsplit("/new/", 1)[0]
    medians[name] = json.load(open(path))["median"]["point_estimate"]


def shown(ns):
    if ns is None:
        return "–"
    return f"{ns / 1e6:.2f} ms" if ns >= 1e6 else f"{ns / 1e3:.1f} µs" if ns >= 1e3 else f"{ns:.0f} ns"


for name, ns in medians.items():
    print(f"{name:48s} {shown(ns):>12s}")

print()
print("| routes | tiergate, 3 plans | 30 plans | 300 plans | Cedar `is_authorized` | Cedar incl. building request + entities | Cedar ÷ tiergate (3 plans) |")
print("|---:|---:|---:|---:|---:|---:|---:|")
for routes in (10, 100, 1000, 10000):
    t = [medians.get(f"decision/tiergate_{p}_plans/{routes}") for p in (3, 30, 300)]
    c = medians.get(f"cedar/is_authorized/{routes}")
    cb = medians.get(f"cedar/build_and_authorize/{routes}")
    ratio = f"{c / t[0]:,.0f}× ({cb / t[0]:,.0f}×)" if c and cb and t[0] else "–"
    print(f"| {routes:,} | {' | '.join(shown(x) for x in t)} | {shown(c)} | {shown(cb)} | {ratio} |")
print()
for key, label in (
    ("parts/entitlements", "claims → Entitlements (per token; 1,000 routes, 3 plans)"),
    ("parts/entitlements_and_decision", "claims → Entitlements → decision, together"),
    ("compile/1000_routes_300_plans", "compile a 1,000-route, 300-plan policy (parse, validate, compile)"),
):
    print(f"| {label} | {shown(medians.get(key))} |")

print()
print("| token | router alone | router + layer | layer adds | floor: `jsonwebtoken::decode` + engine decision | layer ÷ floor |")
print("|---|---:|---:|---:|---:|---:|")
engine = medians.get("layer/floor_engine_decision")
for alg in ("HS256", "EdDSA", "RS256"):
    plain = medians.get(f"layer/without_layer/{alg}")
    gated = medians.get(f"layer/with_layer/{alg}")
    decode = medians.get(f"layer/floor_jsonwebtoken_decode/{alg}")
    if None in (plain, gated, decode, engine):
        continue
    added = gated - plain
    floor = decode + engine
    print(f"| {alg} | {shown(plain)} | {shown(gated)} | {shown(added)} | {shown(decode)} + {shown(engine)} = {shown(floor)} | {added / floor:.2f}× |")
