#!/usr/bin/env python3
"""Tests of scripts/wasm_imports.py against WebAssembly modules assembled here by hand.

    python3 host-tests/configs/test_wasm_imports.py      # standalone (unittest)

check_gateway_configs.py runs the same tests (so they run in `make check-gateway-configs`).
When node is installed, the hand-assembled module is also checked to be a valid module
(`new WebAssembly.Module`), so the parser is tested on real wasm, not on bytes that only it
understands.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "wasm_imports.py")
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import wasm_imports  # noqa: E402


def uleb(n: int, pad_to: int = 0) -> bytes:
    """Unsigned LEB128; pad_to > 0 emits a longer (still valid) redundant encoding."""
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n or len(out) + 1 < pad_to:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def name(s: str) -> bytes:
    raw = s.encode("utf-8")
    return uleb(len(raw)) + raw


def section(section_id: int, body: bytes, pad: int = 0) -> bytes:
    return bytes([section_id]) + uleb(len(body), pad) + body


def func_import(module: str, field: str) -> bytes:
    return name(module) + name(field) + b"\x00" + uleb(0)  # func of type 0


def module(imports: list[bytes], custom: bool = True, pad: int = 0) -> bytes:
    out = b"\x00asm\x01\x00\x00\x00"
    if custom:  # a custom section first: must be skipped, whatever it holds
        out += section(0, name("producers") + b"\x02\x00\xff junk")
    out += section(1, uleb(1) + b"\x60\x00\x00")  # one type: func () -> ()
    out += section(2, uleb(len(imports)) + b"".join(imports), pad)
    return out


GOOD = [
    func_import("env", "proxy_log"),
    func_import("wasi_snapshot_preview1", "fd_write"),
    func_import("env", "proxy_get_property"),
]
BAD = [
    func_import("__wbindgen_placeholder__", "x"),
    func_import("env", "abort"),  # env, but not proxy_*
    name("env") + name("memory") + b"\x02\x01\x01\x10",  # memory, limits min 1 max 16
    name("js") + name("tbl") + b"\x01\x70\x00\x02",  # table funcref, limits min 2
    name("js") + name("g") + b"\x03\x7f\x00",  # global i32 immutable
]


def node_validates(data: bytes) -> bool | None:
    node = shutil.which("node")
    if node is None:
        return None
    js = "new WebAssembly.Module(require('fs').readFileSync(0));"
    return subprocess.run([node, "-e", js], input=data, capture_output=True).returncode == 0


class WasmImportsTest(unittest.TestCase):
    def run_script(self, data: bytes, *args: str) -> subprocess.CompletedProcess:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "m.wasm")
            with open(path, "wb") as f:
                f.write(data)
            return subprocess.run([sys.executable, SCRIPT, *args, path],
                                  capture_output=True, text=True)

    def test_hand_assembled_module_is_valid_wasm(self):
        ok = node_validates(module(GOOD + BAD, pad=3))
        if ok is None:
            self.skipTest("node not installed")
        self.assertTrue(ok, "node rejects the hand-assembled module: the test data is wrong")

    def test_lists_every_import_in_order_with_kind(self):
        got = wasm_imports.parse_imports(module(GOOD + BAD))
        self.assertEqual(
            [(i.module, i.name, i.kind) for i in got],
            [("env", "proxy_log", "func"), ("wasi_snapshot_preview1", "fd_write", "func"),
             ("env", "proxy_get_property", "func"), ("__wbindgen_placeholder__", "x", "func"),
             ("env", "abort", "func"), ("env", "memory", "memory"), ("js", "tbl", "table"),
             ("js", "g", "global")])

    def test_redundant_leb128_section_size(self):
        got = wasm_imports.parse_imports(module(GOOD, pad=5))
        self.assertEqual([str(i) for i in got],
                         ["env.proxy_log", "wasi_snapshot_preview1.fd_write", "env.proxy_get_property"])

    def test_offenders_are_exactly_the_non_proxy_non_wasi_imports(self):
        got = wasm_imports.offenders(wasm_imports.parse_imports(module(GOOD + BAD)))
        self.assertEqual([str(i) for i in got],
                         ["__wbindgen_placeholder__.x", "env.abort", "env.memory", "js.tbl", "js.g"])

    def test_check_fails_on_a_wbindgen_import_and_names_it(self):
        res = self.run_script(module(GOOD + BAD[:1]), "--check")
        self.assertEqual(res.returncode, 1, res.stderr)
        self.assertIn("__wbindgen_placeholder__.x", res.stderr)
        self.assertNotIn("env.proxy_log", res.stderr)

    def test_check_passes_when_all_imports_are_proxy_or_wasi(self):
        res = self.run_script(module(GOOD), "--check")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("3 imports", res.stdout)

    def test_list_mode_prints_module_dot_name(self):
        res = self.run_script(module(GOOD + BAD[:1]))
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(res.stdout.splitlines(),
                         ["env.proxy_log (func)", "wasi_snapshot_preview1.fd_write (func)",
                          "env.proxy_get_property (func)", "__wbindgen_placeholder__.x (func)"])

    def test_module_without_imports(self):
        data = b"\x00asm\x01\x00\x00\x00" + section(1, uleb(1) + b"\x60\x00\x00")
        self.assertEqual(wasm_imports.parse_imports(data), [])
        self.assertEqual(self.run_script(data, "--check").returncode, 0)

    def test_malformed_modules_exit_2(self):
        good = module(GOOD)
        cases = {
            "bad magic": b"\x00wasm" + good[5:],
            "component, not core module": good[:4] + b"\x0d\x00\x01\x00" + good[8:],
            "truncated": good[:-3],
            "section runs past the end": good[:8] + b"\x02\x7f\x00",
            "overlong LEB128": good[:8] + b"\x02\xff\xff\xff\xff\xff\x01",
            "unknown import kind": b"\x00asm\x01\x00\x00\x00"
                                   + section(2, uleb(1) + name("env") + name("x") + b"\x09\x00"),
        }
        for label, data in cases.items():
            with self.subTest(label):
                with self.assertRaises(wasm_imports.WasmError):
                    wasm_imports.parse_imports(data)
                res = self.run_script(data, "--check")
                self.assertEqual(res.returncode, 2, res.stdout + res.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
