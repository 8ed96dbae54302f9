#!/usr/bin/env python3
"""Prints the median of every criterion benchmark under target/criterion, then the
README's performance table for benches/compare/benches/engine.rs.

Criterion's console line shows the mean; the README's tables use medians. The
`added/*` rows are the layer's cost measured in pairs (with and without it in the
same samples, see `paired` in benches/layer.rs), steadier than the difference of two
separately timed medians on a machine whose speed drifts.
Usage: cargo bench --bench layer
       (cd benches/compare && CARGO_TARGET_DIR=../../target cargo bench --bench engine)
       python3 benches/medians.py
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

# BENCHMARKS.md's table: tiergate vs the floor vs jsonwebtoken::decode vs Cedar and regorus.
m = medians.get


def ratio(a, b):
    return f"{a / b:.2f}×" if a and b else "–"


print()
print("| work | tiergate | floor | `jsonwebtoken::decode` | Cedar `is_authorized` | regorus `eval_rule` |")
print("|---|---:|---:|---:|---:|---:|")
for alg in ("HS256", "EdDSA", "RS256"):
    ours = m(f"layer/verify/{alg}")
    floor = m(f"layer/floor_signature/{alg}")
    dec = m(f"layer/floor_jsonwebtoken_decode/{alg}")
    what = "HMAC-SHA256" if alg == "HS256" else "signature check"
    print(f"| verify a {alg} token (no cache) | {shown(ours)} | {shown(floor)} ({what}; tiergate = {ratio(ours, floor)}) | {shown(dec)} (tiergate = {ratio(ours, dec)}) | – | – |")
if m("layer/floor_signature_aws_lc/HS256"):
    a = m("layer/floor_signature_aws_lc/HS256")
    print(f"| bare HMAC-SHA256 of the same token with aws-lc (beside the RustCrypto floor above) | | {shown(a)} | | – | – |")
if m("layer/verify_general_path/HS256"):
    g = m("layer/verify_general_path/HS256")
    print(f"| verify HS256, general path (what the fast path replaces) | {shown(g)} | | {shown(m('layer/floor_jsonwebtoken_decode/HS256'))} | – | – |")
for alg in ("HS256", "EdDSA", "RS256"):
    dec, eng = m(f"layer/floor_jsonwebtoken_decode/{alg}"), m("layer/floor_engine_decision")
    for where, label in (("alone", "the layer alone"), ("axum", "in an axum router")):
        miss, hit = m(f"added/{where}_miss/{alg}"), m(f"added/{where}_hit/{alg}")
        if None in (miss, hit, dec, eng):
            continue
        print(f"| layer added, {label}, {alg}, cache miss | {shown(miss)} | | {shown(dec + eng)} with the engine (tiergate = {ratio(miss, dec + eng)}) | – | – |")
        print(f"| layer added, {label}, {alg}, cache hit | {shown(hit)} | | (tiergate = {ratio(hit, dec + eng)}) | – | – |")
if m("added/axum_noop_layer"):
    print(f"| a do-nothing layer added in an axum router (what axum charges any layer) | {shown(m('added/axum_noop_layer'))} | | | – | – |")
for routes in (10, 100, 1000):
    ours = m(f"decision/tiergate_3_plans/{routes}")
    ced = m(f"cedar/is_authorized/{routes}")
    reg = m(f"regorus/eval_rule/{routes}")
    print(f"| route decision, {routes:,} routes, 3 plans | {shown(ours)} | – | – | {shown(ced)} ({ratio(ced, ours)} tiergate) | {shown(reg)} ({ratio(reg, ours)} tiergate) |")
