// A demo origin: answers every request with JSON naming itself and echoing what it received, so
// a tester sees exactly which headers betaroute added or removed.
import http from "node:http";

const name = process.argv[2] ?? "origin";
const port = Number(process.argv[3] ?? 8080);

http
  .createServer((req, res) => {
    const headers = {};
    for (let i = 0; i < req.rawHeaders.length; i += 2) headers[req.rawHeaders[i]] = req.rawHeaders[i + 1];
    let size = 0;
    req.on("data", (c) => (size += c.length));
    req.on("end", () => {
      res.writeHead(200, { "content-type": "application/json", "x-served-by": name });
      res.end(JSON.stringify({ server: name, method: req.method, url: req.url, headers, bodyBytes: size }, null, 2) + "\n");
    });
  })
  .listen(port, "127.0.0.1", () => console.log(`demo origin "${name}" listening on http://127.0.0.1:${port}`));
