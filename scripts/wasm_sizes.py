#!/usr/bin/env python3
"""Where a WebAssembly module's bytes go: sections, the largest functions, bytes per crate.
Standard library only, plus `c++filt` (binutils) to demangle Rust symbols if present.

The shipped module is stripped; build one that keeps the name section first, e.g.

    CARGO_PROFILE_WASM_STRIP=false CARGO_TARGET_DIR=target/named \\
        CC_wasm32_wasip1=clang AR_wasm32_wasip1=llvm-ar \\
        cargo build --lib --target wasm32-wasip1 --profile wasm --features proxy
    wasm-opt --strip-dwarf -g <features> target/named/wasm32-wasip1/wasm/actwarden.wasm -o n.wasm
    wasm-opt -Oz -g <features> n.wasm -o named.wasm     # WASM_OPT's flags, plus -g
    python3 scripts/wasm_sizes.py named.wasm [TOP]

(`--strip-dwarf` first: with DWARF present, `-g` makes wasm-opt optimise less.) A crate is
the first path segment of a function's demangled name (`<X as Trait>` counts under X's
crate; generic code counts under the crate that defines it, whoever instantiates it).
"""

from __future__ import annotations

import collections
import re
import shutil
import subprocess
import sys


def leb(b: bytes, i: int) -> tuple[int, int]:
    r = s = 0
    while True:
        x = b[i]
        i += 1
        r |= (x & 0x7F) << s
        s += 7
        if x < 0x80:
            return r, i


def parse(data: bytes):
    """[(section id, custom name, size)], [(function name, body bytes)]."""
    i, imported, bodies, names, sections = 8, 0, [], {}, []
    while i < len(data):
        sid = data[i]
        size, i = leb(data, i + 1)
        end, custom = i + size, None
        if sid == 0:
            n, j = leb(data, i)
            custom = data[j : j + n].decode()
            j += n
            while custom == "name" and j < end:
                sub = data[j]
                ss, j = leb(data, j + 1)
                sub_end = j + ss
                if sub == 1:
                    count, j = leb(data, j)
                    for _ in range(count):
                        idx, j = leb(data, j)
                        n, j = leb(data, j)
                        names[idx] = data[j : j + n].decode("utf-8", "replace")
                        j += n
                j = sub_end
        elif sid == 2:
            count, j = leb(data, i)
            for _ in range(count):
                for _ in range(2):
                    n, j = leb(data, j)
                    j += n
                kind = data[j]
                j += 1
                if kind == 0:
                    _, j = leb(data, j)
                    imported += 1
                elif kind == 1:
                    flags, j = leb(data, j + 1)
                    _, j = leb(data, j)
                    if flags & 1:
                        _, j = leb(data, j)
                elif kind == 2:
                    flags, j = leb(data, j)
                    _, j = leb(data, j)
                    if flags & 1:
                        _, j = leb(data, j)
                else:
                    j += 2
        elif sid == 10:
            count, j = leb(data, i)
            for k in range(count):
                n, body = leb(data, j)
                bodies.append((imported + k, body - j + n))
                j = body + n
        sections.append((sid, custom, size))
        i = end
    return sections, [(names.get(idx, f"func{idx}"), size) for idx, size in bodies]


def demangle(names: list[str]) -> list[str]:
    if shutil.which("c++filt"):
        out = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True)
        names = out.stdout.split("\n")[: len(names)]
    return [re.sub(r"::h[0-9a-f]{16}$", "", re.sub(r"\[[0-9a-f]+\]", "", n)) for n in names]


def crate(name: str) -> str:
    n = name.lstrip("<&* ")
    n = re.sub(r"^(dyn|mut|impl) ", "", n)
    m = re.match(r"([A-Za-z_][A-Za-z0-9_]*)::", n)
    if m and m.group(1) != "T":
        return m.group(1)
    if name.startswith(("ring_core_", "fiat_", "fe_", "x25519_", "ge_", "sc_", "nistz", "p256_", "p384_")):
        return "ring (C)"
    if name.startswith(("dlmalloc", "dlfree", "dispose_chunk", "realloc", "prepend_alloc", "malloc", "free")):
        return "dlmalloc (wasi-libc)"
    if name.startswith("byn$mgfn-shared$"):
        return "(merged by wasm-opt)"
    m = re.match(r"<\w+ as ([A-Za-z_][A-Za-z0-9_]*)::", name)
    return m.group(1) if m else "(other)"


def main(argv: list[str]) -> int:
    if not argv or argv[0].startswith("-"):
        print(__doc__)
        return 2
    top = int(argv[1]) if len(argv) > 1 else 30
    sections, funcs = parse(open(argv[0], "rb").read())
    funcs = list(zip(demangle([n for n, _ in funcs]), [s for _, s in funcs]))
    for sid, custom, size in sections:
        print(f"section {sid:2} {custom or '':16} {size:8}")
    funcs.sort(key=lambda f: -f[1])
    print(f"\ncode: {sum(s for _, s in funcs)} bytes in {len(funcs)} functions; the {top} largest:")
    for name, size in funcs[:top]:
        print(f"{size:7}  {name[:150]}")
    totals, counts = collections.Counter(), collections.Counter()
    for name, size in funcs:
        totals[crate(name)] += size
        counts[crate(name)] += 1
    print("\nbytes per crate (functions):")
    for c, size in totals.most_common():
        print(f"{size:8} ({counts[c]:4})  {c}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
