#!/usr/bin/env python3
"""Sums a V8 CPU profile (`node --cpu-prof`) per function below one frame.

    python3 scripts/v8_profile.py PROFILE.cpuprofile [ROOT] [N]

ROOT (default `decide_with`): only samples whose stack holds a frame whose name contains
it count, and each function's share is of their time. Prints the N (default 40) largest
inclusive shares, then the largest self shares. Names are the wasm module's name section
(`make profile-v8` keeps it), Rust-mangled and shortened here.
"""
import collections
import json
import re
import sys


def short(name):
    name = re.sub(r"17h[0-9a-f]{16}E$", "", name)
    return re.sub(r"^_ZN", "", name)[:140]


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    root = sys.argv[2] if len(sys.argv) > 2 else "decide_with"
    top = int(sys.argv[3]) if len(sys.argv) > 3 else 40
    with open(sys.argv[1], encoding="utf-8") as f:
        profile = json.load(f)
    nodes = {n["id"]: n for n in profile["nodes"]}
    parent = {c: n["id"] for n in profile["nodes"] for c in n.get("children", [])}
    inclusive, own, total = collections.Counter(), collections.Counter(), 0
    for sample, delta in zip(profile["samples"], profile["timeDeltas"]):
        stack, node = [], sample
        while node is not None:
            stack.append(nodes[node]["callFrame"]["functionName"])
            node = parent.get(node)
        below = [i for i, name in enumerate(stack) if root in name]
        if not below:
            continue
        total += delta
        own[stack[0]] += delta
        for name in set(stack[: below[-1] + 1]):
            inclusive[name] += delta
    if total == 0:
        sys.exit(f"no sample below a frame named like `{root}`")
    print(f"{total / 1000:.1f} ms below `{root}`\ninclusive:")
    for name, t in inclusive.most_common(top):
        print(f"{100 * t / total:5.1f}% {short(name)}")
    print("self:")
    for name, t in own.most_common(top // 2):
        print(f"{100 * t / total:5.1f}% {short(name)}")


if __name__ == "__main__":
    main()
