// WebSocket echo load for scripts/bench.sh, on npm's `ws` (the version the tests pin).
//   node bench/ws.mjs serve PORT                  an echo server
//   node bench/ws.mjs load URL SECONDS CONNS SIZE  CONNS connections, each sending a SIZE-byte
//                                                 binary message and waiting for its echo, again
//                                                 and again; prints "messages_per_second p99_ms"
import { WebSocket, WebSocketServer } from "ws";

const [mode, ...args] = process.argv.slice(2);

if (mode === "serve") {
  const wss = new WebSocketServer({ port: Number(args[0]), host: "127.0.0.1", perMessageDeflate: false });
  wss.on("connection", (ws) => ws.on("message", (data, binary) => ws.send(data, { binary })));
} else if (mode === "load") {
  const [url, seconds, conns, size] = [args[0], Number(args[1]), Number(args[2]), Number(args[3])];
  const payload = Buffer.alloc(size, 7);
  const samples = [];
  let done = 0;
  let running = true;
  const open = [];
  for (let i = 0; i < conns; i++) {
    open.push(
      new Promise((resolve, reject) => {
        const ws = new WebSocket(url, { perMessageDeflate: false });
        let sent = 0;
        const send = () => {
          sent = performance.now();
          ws.send(payload, { binary: true });
        };
        ws.on("open", () => resolve({ ws, send }));
        ws.on("error", reject);
        ws.on("message", () => {
          done++;
          if (samples.length < 200000) samples.push(performance.now() - sent);
          if (running) send();
          else ws.close();
        });
      }),
    );
  }
  const sockets = await Promise.all(open);
  // Warm up for a second, then count.
  sockets.forEach((s) => s.send());
  await new Promise((r) => setTimeout(r, 1000));
  done = 0;
  samples.length = 0;
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const n = done;
  const t = (performance.now() - t0) / 1000;
  running = false;
  samples.sort((a, b) => a - b);
  const p99 = samples[Math.floor(samples.length * 0.99)] ?? 0;
  console.log(`${(n / t).toFixed(0)} ${p99.toFixed(3)}`);
  setTimeout(() => process.exit(0), 200);
} else {
  console.error("usage: ws.mjs serve PORT | load URL SECONDS CONNS SIZE");
  process.exit(2);
}
