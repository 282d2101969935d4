#!/usr/bin/env python3
"""List (and police) the imports of a WebAssembly module. Standard library only.

    python3 scripts/wasm_imports.py FILE.wasm          # one `module.name (kind)` per import
    python3 scripts/wasm_imports.py --check FILE.wasm  # exit 1 unless every import is allowed

The filter shipped to Envoy and Istio may import only what a proxy-wasm host provides:
`env.proxy_*` (the proxy-wasm ABI) and `wasi_snapshot_preview1.*` (WASI, which Envoy
implements partially). Anything else, e.g. `__wbindgen_placeholder__.*` from a wasm-bindgen
dependency leaking into the proxy build, makes Envoy refuse the module at load time
("Failed to load Wasm module due to a missing import"), so `make check-wasm-imports` catches
it at build time instead.

Importable: `parse_imports(data) -> [Import]`, `offenders(imports) -> [Import]`.
Exit codes: 0 ok, 1 a disallowed import (with --check), 2 unreadable or malformed module.
"""

from __future__ import annotations

import sys
from typing import NamedTuple

MAGIC = b"\x00asm"
VERSION = b"\x01\x00\x00\x00"
IMPORT_SECTION = 2
KINDS = {0: "func", 1: "table", 2: "memory", 3: "global", 4: "tag"}
ALLOWED = (("env", "proxy_"), ("wasi_snapshot_preview1", ""))


class WasmError(ValueError):
    """The bytes are not a WebAssembly module this parser understands."""


class Import(NamedTuple):
    module: str
    name: str
    kind: str

    def __str__(self) -> str:
        return f"{self.module}.{self.name}"


class _Reader:
    def __init__(self, data: bytes, pos: int = 0, end: int | None = None):
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    def byte(self) -> int:
        if self.pos >= self.end:
            raise WasmError(f"unexpected end of data at offset {self.pos}")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def uleb(self, max_bits: int = 32) -> int:
        """Unsigned LEB128 (at most ceil(max_bits / 7) bytes, as the spec requires)."""
        result = shift = 0
        for _ in range((max_bits + 6) // 7):
            b = self.byte()
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                if result >> max_bits:
                    raise WasmError(f"LEB128 value too large at offset {self.pos - 1}")
                return result
            shift += 7
        raise WasmError(f"LEB128 longer than {max_bits} bits at offset {self.pos}")

    def bytes(self, n: int) -> bytes:
        if n > self.end - self.pos:
            raise WasmError(f"length {n} at offset {self.pos} runs past the end")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def name(self) -> str:
        raw = self.bytes(self.uleb())
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise WasmError(f"import name is not UTF-8: {raw!r}") from e

    def limits(self) -> None:
        flags = self.byte()
        self.uleb(64)
        if flags & 0x01:
            self.uleb(64)

    def skip_import_desc(self, kind: int) -> None:
        if kind == 0:  # func: type index
            self.uleb()
        elif kind == 1:  # table: reftype, limits
            self.byte()
            self.limits()
        elif kind == 2:  # memory: limits
            self.limits()
        elif kind == 3:  # global: valtype, mutability
            self.byte()
            self.byte()
        elif kind == 4:  # tag (exception handling): attribute, type index
            self.byte()
            self.uleb()
        else:
            raise WasmError(f"unknown import kind 0x{kind:02x} at offset {self.pos - 1}")


def parse_imports(data: bytes) -> list[Import]:
    """Every import of the module, in order. Raises WasmError on malformed input."""
    if data[:4] != MAGIC:
        raise WasmError("not a WebAssembly module (bad magic)")
    if data[4:8] != VERSION:
        raise WasmError("unsupported WebAssembly version (not a core module v1)")
    r = _Reader(data, 8)
    imports: list[Import] = []
    while r.pos < r.end:
        section_id = r.byte()
        size = r.uleb()
        start = r.pos
        if size > r.end - start:
            raise WasmError(f"section {section_id} at offset {start} runs past the end")
        if section_id == IMPORT_SECTION:
            s = _Reader(data, start, start + size)
            for _ in range(s.uleb()):
                module = s.name()
                name = s.name()
                kind = s.byte()
                s.skip_import_desc(kind)
                imports.append(Import(module, name, KINDS[kind]))
            if s.pos != s.end:
                raise WasmError("import section has trailing bytes")
        r.pos = start + size
    return imports


def allowed(imp: Import) -> bool:
    return any(imp.module == module and imp.name.startswith(prefix) for module, prefix in ALLOWED)


def offenders(imports: list[Import]) -> list[Import]:
    return [imp for imp in imports if not allowed(imp)]


def main(argv: list[str]) -> int:
    args = [a for a in argv if a != "--check"]
    check = len(args) != len(argv)
    if len(args) != 1 or args[0].startswith("-"):
        print("usage: wasm_imports.py [--check] FILE.wasm", file=sys.stderr)
        return 2
    path = args[0]
    try:
        with open(path, "rb") as f:
            imports = parse_imports(f.read())
    except (OSError, WasmError) as e:
        print(f"wasm_imports: {path}: {e}", file=sys.stderr)
        return 2
    if not check:
        for imp in imports:
            print(f"{imp} ({imp.kind})")
        return 0
    bad = offenders(imports)
    if bad:
        print(f"wasm_imports: {path}: {len(bad)} of {len(imports)} imports are neither "
              "env.proxy_* nor wasi_snapshot_preview1.*:", file=sys.stderr)
        for imp in bad:
            print(f"  {imp} ({imp.kind})", file=sys.stderr)
        return 1
    print(f"wasm_imports: {path}: {len(imports)} imports, all env.proxy_* or wasi_snapshot_preview1.*")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except BrokenPipeError:  # e.g. piped into `head`
        sys.exit(0)
