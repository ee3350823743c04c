// Runs a wasm32-wasip1 program under Node's V8 (the engine workerd embeds), with one directory
// mapped in: node bench/wasi.mjs PROGRAM.wasm DIR  (the program sees DIR as /data).
import { readFile } from "node:fs/promises";
import { WASI } from "node:wasi";

const [program, dir] = process.argv.slice(2);
const wasi = new WASI({ version: "preview1", args: ["program", "/data"], env: {}, preopens: { "/data": dir } });
const module = await WebAssembly.compile(await readFile(program));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
process.exitCode = wasi.start(instance);
