#!/usr/bin/env python3
"""Measures the Consul Catalog provider against the fake Consul (scripts/fake_consul.py):

- the router's CPU while idle with N services (2 instances each) in the catalog, watching;
- the time from a catalog change (a new service registered) to the router routing it, with
  blocking queries (watch) and with polling (refreshInterval 1s), over several trials;
- the time to load the whole catalog at startup.

Usage: scripts/measure-consul.py [--services 1000] [--idle 30] [--trials 20]
Needs target/release/betaroute (cargo build --release -p betaroute-router).
"""

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "betaroute")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def call(port, method, path, body=None, host="127.0.0.1"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    data = None if body is None else json.dumps(body)
    c.request(method, path, body=data, headers={"Host": host})
    r = c.getresponse()
    out = r.read()
    c.close()
    return r.status, out


def start_fake():
    p = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "scripts", "fake_consul.py"), "--listen", "127.0.0.1:0", "--no-consul-service"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    url = p.stdout.readline().strip().rsplit(" ", 1)[-1]
    return p, int(url.rsplit(":", 1)[1])


def backend():
    """A tiny HTTP server answering 200 to everything (a thread in this process)."""
    import http.server
    import threading

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv.server_address[1]


def start_router(consul_port, options):
    d = tempfile.mkdtemp(prefix="betaroute-measure-")
    web, admin = free_port(), free_port()
    cfg = f"""[entryPoints.web]
address = "127.0.0.1:{web}"
[admin]
address = "127.0.0.1:{admin}"
[providers.consulCatalog]
{options}
[providers.consulCatalog.endpoint]
address = "127.0.0.1:{consul_port}"
"""
    path = os.path.join(d, "b.toml")
    open(path, "w").write(cfg)
    p = subprocess.Popen([BIN, "serve", "--config", path, "--threads", "1"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            call(admin, "GET", "/ping")
            break
        except OSError:
            time.sleep(0.05)
    return p, web, admin


def cpu_seconds(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(f[11]) + int(f[12])) / tick


def wait_routed(web, host, limit=30):
    t = time.monotonic()
    while time.monotonic() - t < limit:
        try:
            if call(web, "GET", "/", host=host)[0] == 200:
                return time.monotonic() - t
        except OSError:
            pass
        time.sleep(0.002)
    raise SystemExit(f"{host} never routed")


def register(consul, name, port):
    body = {"ID": name + "-1", "Name": name, "Address": "127.0.0.1", "Port": port,
            "Tags": [f"traefik.http.routers.{name}.rule=Host(`{name}.example`)"],
            "Check": {"TTL": "24h", "Status": "passing"}}
    assert call(consul, "PUT", "/v1/agent/service/register", body)[0] == 200


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--idle", type=float, default=30)
    ap.add_argument("--trials", type=int, default=20)
    a = ap.parse_args()
    if not os.path.exists(BIN):
        raise SystemExit("build it first: cargo build --release -p betaroute-router")
    port = backend()
    fake, consul = start_fake()
    try:
        services = []
        for i in range(a.services):
            for j in (1, 2):
                services.append({"ID": f"svc{i}-{j}", "Service": f"svc{i}", "Node": f"node{j}",
                                 "NodeAddress": "127.0.0.1", "Address": "127.0.0.1", "Port": port,
                                 "Tags": [f"traefik.http.routers.svc{i}.rule=Host(`svc{i}.example`)"],
                                 "Checks": [{"CheckID": f"c-svc{i}-{j}", "Name": "c", "Status": "passing"}]})
        assert call(consul, "PUT", "/_fake/state", {"services": services})[0] == 200
        results = {}
        for mode, options in (("watch", "watch = true"), ("poll", 'refreshInterval = "1s"')):
            t0 = time.monotonic()
            router, web, admin = start_router(consul, options)
            wait_routed(web, f"svc{a.services - 1}.example", 120)
            startup = time.monotonic() - t0
            if mode == "watch":
                time.sleep(2)
                c0, t1 = cpu_seconds(router.pid), time.monotonic()
                time.sleep(a.idle)
                idle = (cpu_seconds(router.pid) - c0) / (time.monotonic() - t1) * 100
            lat = []
            for k in range(a.trials):
                name = f"new-{mode}-{k}"
                register(consul, name, port)
                lat.append(wait_routed(web, f"{name}.example"))
            router.terminate()
            router.wait()
            results[mode] = {
                "startup_s": round(startup, 2),
                "change_to_traffic_ms": {
                    "median": round(statistics.median(lat) * 1000, 1),
                    "max": round(max(lat) * 1000, 1),
                },
            }
            if mode == "watch":
                results[mode]["idle_cpu_percent"] = round(idle, 3)
        print(json.dumps({"services": a.services, "instances": 2 * a.services, **results}, indent=1))
    finally:
        fake.terminate()


if __name__ == "__main__":
    main()
