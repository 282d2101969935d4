// Runs the wasm32-wasip1 build of verify-bench under Node's WASI (V8: the stand-in for
// Envoy's V8 wasm runtime) and lets it print the same JSON as the native build.
//
//   node host-tests/verify-bench/run-v8.mjs [path/to/verify-bench.wasm]
//
// Default path: target/wasm32-wasip1/release/verify-bench.wasm (from the repository root).
// The VERIFY_BENCH_* and DECIDE_BENCH_* variables are passed through (the same runner
// runs decide-bench.wasm for `make profile-v8`); the clock is WASI's clock_time_get.
import { readFile } from "node:fs/promises";
import { WASI } from "node:wasi";
import { argv, env, exit } from "node:process";

const path = argv[2] ?? "target/wasm32-wasip1/release/verify-bench.wasm";
const passed = Object.fromEntries(
  Object.entries(env).filter(([k]) => k.startsWith("VERIFY_BENCH_") || k.startsWith("DECIDE_BENCH_")),
);

const wasi = new WASI({
  version: "preview1",
  args: ["verify-bench"],
  env: passed,
  returnOnExit: true,
});

let bytes;
try {
  bytes = await readFile(path);
} catch (e) {
  console.error(`run-v8: cannot read ${path}: ${e.message}`);
  exit(2);
}
const module = await WebAssembly.compile(bytes);
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
const code = wasi.start(instance);
exit(code ?? 0);
