#!/usr/bin/env python3
"""Tests for scripts/fake_consul.py (stdlib unittest; run: python3 scripts/test_fake_consul.py -v).

Each test class starts the fake as a subprocess on port 0 and talks to it
over HTTP with http.client, the way the Rust integration tests do.
"""

import base64
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from urllib.parse import quote, urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE = os.path.join(HERE, "fake_consul.py")


class Fake:
    def __init__(self, *args):
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([sys.executable, FAKE, "--listen", "127.0.0.1:0", *args],
                                     stdout=subprocess.PIPE, stderr=self.stderr)
        line = self.proc.stdout.readline().decode()
        if not line.startswith("fake consul listening on http://"):
            self.proc.kill()
            raise RuntimeError("fake did not start: %r" % line)
        self.url = line.strip().rsplit(" ", 1)[1]
        u = urlsplit(self.url)
        self.host, self.port = u.hostname, u.port

    def conn(self, timeout=15):
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def req(self, method, path, body=None, headers=None, timeout=15):
        c = self.conn(timeout)
        try:
            if isinstance(body, (dict, list)) or body is True:
                body = json.dumps(body)
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            c.close()

    def get(self, path, **kw):
        st, h, b = self.req("GET", path, **kw)
        return st, h, (json.loads(b) if b and h.get("content-type") == "application/json" else b)

    def put(self, path, body=None, **kw):
        return self.req("PUT", path, body, **kw)

    def index(self, path, **kw):
        st, h, _ = self.req("GET", path, **kw)
        assert st == 200, (path, st)
        return int(h["x-consul-index"])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(10)
        self.proc.stdout.close()
        self.stderr.seek(0)
        log = self.stderr.read().decode()
        self.stderr.close()
        return rc, log


def register(f, name, sid=None, tags=None, port=80, address="", status=None, checks=None,
             **extra):
    body = {"Name": name, "Tags": tags or [], "Port": port, "Address": address}
    if sid:
        body["ID"] = sid
    if checks is not None:
        body["Checks"] = checks
    elif status is not None:
        body["Check"] = {"TTL": "30s", "Status": status}
    body.update(extra)
    st, _, b = f.put("/v1/agent/service/register", body)
    assert st == 200, (st, b)


class BlockingCall(threading.Thread):
    def __init__(self, f, path, timeout=20):
        super().__init__(daemon=True)
        self.f, self.path, self.timeout = f, path, timeout
        self.result = self.error = None
        self.elapsed = None

    def run(self):
        t0 = time.monotonic()
        try:
            self.result = self.f.get(self.path, timeout=self.timeout)
        except Exception as e:  # noqa: BLE001
            self.error = e
        self.elapsed = time.monotonic() - t0


def wait_blocked(f, n=1, timeout=5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if f.get("/_fake/blocked")[2] >= n:
            return
        time.sleep(0.01)
    raise AssertionError("no blocking query parked")


class Base(unittest.TestCase):
    ARGS = ()

    @classmethod
    def setUpClass(cls):
        cls.f = Fake(*cls.ARGS)

    @classmethod
    def tearDownClass(cls):
        rc, cls.log = cls.f.stop()
        assert rc == 0, "fake exited with %r" % rc

    def setUp(self):
        self.f.put("/_fake/fault", {"mode": "ok"})
        self.f.put("/_fake/reset")
        self.f.req("DELETE", "/_fake/requests")


class CatalogAndHealth(Base):
    def test_register_and_shapes(self):
        f = self.f
        register(f, "web", "web-1", tags=["v1", "http"], port=8080, status="passing",
                 Meta={"version": "1"})
        st, h, services = f.get("/v1/catalog/services")
        self.assertEqual(st, 200)
        self.assertEqual(h["content-type"], "application/json")
        self.assertEqual(services["web"], ["http", "v1"])
        self.assertEqual(services["consul"], [])
        for k in ("x-consul-index", "x-consul-knownleader", "x-consul-lastcontact",
                  "x-consul-effective-consistency"):
            self.assertIn(k, h)
        self.assertEqual(h["x-consul-knownleader"], "true")
        self.assertEqual(h["x-consul-effective-consistency"], "leader")

        st, h, entries = f.get("/v1/health/service/web")
        self.assertEqual(len(entries), 1)
        e = entries[0]
        self.assertEqual(set(e), {"Node", "Service", "Checks"})
        self.assertEqual(set(e["Node"]), {"ID", "Node", "Address", "Datacenter",
                                          "TaggedAddresses", "Meta", "CreateIndex",
                                          "ModifyIndex"})
        self.assertEqual(e["Node"]["Node"], "fake-node")
        self.assertEqual(e["Node"]["Datacenter"], "dc1")
        s = e["Service"]
        self.assertEqual((s["ID"], s["Service"], s["Port"], s["Tags"]),
                         ("web-1", "web", 8080, ["v1", "http"]))
        self.assertEqual(s["Meta"], {"version": "1"})
        self.assertEqual(s["Weights"], {"Passing": 1, "Warning": 1})
        self.assertFalse(s["EnableTagOverride"])
        self.assertNotIn("Namespace", s)
        ids = [c["CheckID"] for c in e["Checks"]]
        self.assertEqual(ids, ["serfHealth", "service:web-1"])
        self.assertEqual(e["Checks"][1]["Status"], "passing")
        self.assertEqual(e["Checks"][1]["ServiceName"], "web")
        self.assertEqual(e["Checks"][1]["Name"], "Service 'web' check")

        st, h, cat = f.get("/v1/catalog/service/web")
        self.assertEqual(cat[0]["ServiceID"], "web-1")
        self.assertEqual(cat[0]["ServicePort"], 8080)
        self.assertEqual(cat[0]["ServiceTags"], ["v1", "http"])
        for k in ("ID", "Node", "Address", "Datacenter", "TaggedAddresses", "NodeMeta",
                  "ServiceName", "ServiceAddress", "ServiceMeta", "ServiceWeights",
                  "ServiceEnableTagOverride", "CreateIndex", "ModifyIndex"):
            self.assertIn(k, cat[0])

        st, _, agent = f.get("/v1/agent/services")
        self.assertEqual(list(agent), ["web-1"])
        st, _, checks = f.get("/v1/agent/checks")
        self.assertEqual(list(checks), ["service:web-1"])
        st, _, nodes = f.get("/v1/catalog/nodes")
        self.assertEqual([n["Node"] for n in nodes], ["fake-node"])
        self.assertEqual(f.get("/v1/catalog/datacenters")[2], ["dc1"])
        st, _, me = f.get("/v1/agent/self")
        self.assertEqual(me["Config"]["Datacenter"], "dc1")
        self.assertEqual(me["Config"]["NodeName"], "fake-node")
        self.assertEqual(me["Member"]["Port"], 8301)
        self.assertEqual(f.get("/v1/status/leader")[2], "127.0.0.1:8300")
        self.assertEqual(f.get("/v1/status/peers")[2], ["127.0.0.1:8300"])
        self.assertEqual(f.get("/v1/health/service/nope")[2], [])
        self.assertEqual(f.get("/v1/health/connect/web")[2], [])

    def test_default_check_status_is_critical_and_multi_check_ids(self):
        f = self.f
        register(f, "api", checks=[{"TTL": "30s"}, {"HTTP": "http://127.0.0.1:1/h",
                                                     "Interval": "10s", "Status": "passing"}])
        _, _, e = f.get("/v1/health/service/api")
        by_id = {c["CheckID"]: c for c in e[0]["Checks"]}
        self.assertEqual(by_id["service:api:1"]["Status"], "critical")
        self.assertEqual(by_id["service:api:1"]["Type"], "ttl")
        self.assertEqual(by_id["service:api:2"]["Status"], "passing")
        self.assertEqual(by_id["service:api:2"]["Type"], "http")
        self.assertEqual(by_id["service:api:2"]["Interval"], "10s")
        # non-TTL checks cannot be driven through the agent TTL API (as Consul)
        st, _, b = f.put("/v1/agent/check/fail/service:api:2")
        self.assertEqual(st, 500)
        self.assertIn(b"does not have associated TTL", b)
        st, _, b = f.put("/v1/agent/check/pass/nope")
        self.assertEqual(st, 404)
        # ... but through the fake's control endpoint
        st, _, _ = f.put("/_fake/check/service:api:2", {"Status": "critical"})
        self.assertEqual(st, 200)
        _, _, e = f.get("/v1/health/service/api")
        self.assertEqual({c["CheckID"]: c["Status"] for c in e[0]["Checks"]}["service:api:2"],
                         "critical")
        # invalid check definition
        st, _, b = f.put("/v1/agent/service/register", {"Name": "x", "Check": {"HTTP": "h"}})
        self.assertEqual(st, 400)
        st, _, b = f.put("/v1/agent/service/register", {"Tags": []})
        self.assertEqual((st, b), (400, b"Missing service name"))

    def test_tag_and_passing_filters(self):
        f = self.f
        register(f, "web", "a", tags=["blue", "prod"], status="passing")
        register(f, "web", "b", tags=["green", "prod"], status="warning")
        register(f, "web", "c", tags=["blue"], status="critical")
        ids = lambda q: sorted(e["Service"]["ID"] for e in f.get("/v1/health/service/web" + q)[2])
        self.assertEqual(ids(""), ["a", "b", "c"])
        self.assertEqual(ids("?tag=blue"), ["a", "c"])
        self.assertEqual(ids("?tag=blue&tag=prod"), ["a"])
        self.assertEqual(ids("?tag=BLUE"), ["a", "c"])  # Consul compares tags case-insensitively
        self.assertEqual(ids("?tag=nope"), [])
        self.assertEqual(ids("?passing"), ["a"])
        self.assertEqual(ids("?passing=true"), ["a"])
        self.assertEqual(ids("?passing=false"), ["a", "b", "c"])
        self.assertEqual(ids("?passing&tag=prod"), ["a"])
        self.assertEqual(f.get("/v1/health/service/web?passing=maybe")[0], 400)
        cat = f.get("/v1/catalog/service/web?tag=prod")[2]
        self.assertEqual(sorted(e["ServiceID"] for e in cat), ["a", "b"])
        # maintenance is a critical check: excluded by ?passing
        self.assertEqual(f.put("/v1/agent/service/maintenance/a?enable=true&reason=x")[0], 200)
        self.assertEqual(ids("?passing"), [])
        chk = [c for c in f.get("/v1/health/service/web?tag=green&tag=prod")[2][0]["Checks"]]
        self.assertEqual(len(chk), 2)
        e = [e for e in f.get("/v1/health/service/web")[2] if e["Service"]["ID"] == "a"][0]
        m = [c for c in e["Checks"] if c["CheckID"] == "_service_maintenance:a"][0]
        self.assertEqual((m["Status"], m["Name"], m["Notes"]),
                         ("critical", "Service Maintenance Mode", "x"))
        self.assertEqual(f.put("/v1/agent/service/maintenance/a?enable=false")[0], 200)
        self.assertEqual(ids("?passing"), ["a"])
        self.assertEqual(f.put("/v1/agent/service/maintenance/a")[0], 400)
        self.assertEqual(f.put("/v1/agent/service/maintenance/zz?enable=true")[0], 404)
        # node maintenance takes every instance on the node out
        self.assertEqual(f.put("/v1/agent/maintenance?enable=true")[0], 200)
        self.assertEqual(ids("?passing"), [])
        st, _, crit = f.get("/v1/health/state/critical")
        self.assertIn("_node_maintenance", [c["CheckID"] for c in crit])
        self.assertEqual(f.put("/v1/agent/maintenance?enable=false")[0], 200)
        self.assertEqual(ids("?passing"), ["a"])

    def test_empty_service_address_and_external_nodes(self):
        f = self.f
        body = {"Node": "ext-1", "Address": "10.0.0.7", "NodeMeta": {"rack": "r1"},
                "Service": {"Service": "db", "ID": "db-1", "Port": 5432, "Address": ""},
                "Check": {"CheckID": "db-ok", "Name": "db", "Status": "passing",
                          "ServiceID": "db-1"}}
        st, _, b = f.put("/v1/catalog/register", body)
        self.assertEqual((st, b), (200, b"true"))
        body2 = {"Node": "ext-2", "Address": "10.0.0.8",
                 "Service": {"Service": "db", "ID": "db-2", "Port": 5432,
                             "Address": "192.168.1.9"}}
        self.assertEqual(f.put("/v1/catalog/register", body2)[0], 200)
        _, _, e = f.get("/v1/health/service/db")
        by = {x["Service"]["ID"]: x for x in e}
        self.assertEqual(by["db-1"]["Service"]["Address"], "")
        self.assertEqual(by["db-1"]["Node"]["Address"], "10.0.0.7")
        self.assertEqual(by["db-1"]["Node"]["Meta"], {"rack": "r1"})
        self.assertEqual(by["db-2"]["Service"]["Address"], "192.168.1.9")
        # external nodes have no serfHealth, as in Consul
        self.assertEqual([c["CheckID"] for c in by["db-1"]["Checks"]], ["db-ok"])
        self.assertEqual(by["db-2"]["Checks"], [])
        _, _, cat = f.get("/v1/catalog/service/db")
        self.assertEqual({x["ServiceID"]: x["Address"] for x in cat},
                         {"db-1": "10.0.0.7", "db-2": "10.0.0.8"})
        self.assertEqual(len(f.get("/v1/health/service/db?node-meta=rack:r1")[2]), 1)
        # not agent-local
        self.assertNotIn("db-1", f.get("/v1/agent/services")[2])
        self.assertEqual(f.put("/v1/catalog/register",
                               {"Node": "ext-1", "Address": "10.0.0.7",
                                "Check": {"CheckID": "x", "ServiceID": "nope"}})[0], 500)
        self.assertEqual(f.put("/v1/catalog/deregister",
                               {"Node": "ext-2", "ServiceID": "db-2"})[2], b"true")
        self.assertEqual([x["Service"]["ID"] for x in f.get("/v1/health/service/db")[2]],
                         ["db-1"])
        self.assertEqual(f.put("/v1/catalog/deregister", {"Node": "ext-1"})[0], 200)
        self.assertEqual(f.get("/v1/health/service/db")[2], [])
        self.assertNotIn("ext-1", [n["Node"] for n in f.get("/v1/catalog/nodes")[2]])
        self.assertEqual(f.put("/v1/catalog/register", {"Node": "n", "Address": "1.2.3.4",
                                                        "Datacenter": "dc9"})[0], 500)

    def test_index_monotonic_and_per_result(self):
        f = self.f
        register(f, "a", status="passing")
        register(f, "b", status="passing")
        ia = f.index("/v1/health/service/a")
        ib = f.index("/v1/health/service/b")
        isvc = f.index("/v1/catalog/services")
        self.assertGreaterEqual(ia, 1)
        # a check change on b: b moves, a does not, the services list does not
        self.assertEqual(f.put("/v1/agent/check/warn/service:b")[0], 200)
        self.assertEqual(f.index("/v1/health/service/a"), ia)
        ib2 = f.index("/v1/health/service/b")
        self.assertGreater(ib2, ib)
        self.assertEqual(f.index("/v1/catalog/services"), isvc)
        # a same-status update is not a write
        self.assertEqual(f.put("/v1/agent/check/warn/service:b")[0], 200)
        self.assertEqual(f.index("/v1/health/service/b"), ib2)
        # re-registering b with new tags: a unchanged
        register(f, "b", tags=["x"], status="passing")
        self.assertEqual(f.index("/v1/health/service/a"), ia)
        self.assertGreater(f.index("/v1/catalog/services"), isvc)
        # deregistering a raises a's index
        before = f.index("/v1/health/service/a")
        self.assertEqual(f.put("/v1/agent/service/deregister/a")[0], 200)
        after = f.index("/v1/health/service/a")
        self.assertGreater(after, before)
        self.assertEqual(f.get("/v1/health/service/a")[2], [])
        self.assertEqual(f.put("/v1/agent/service/deregister/a")[0], 404)
        # indexes never go down while the store lives
        seen = after
        for _ in range(3):
            register(f, "b", tags=["y%d" % _], status="passing")
            now = f.index("/v1/health/service/a")
            self.assertGreaterEqual(now, seen)
            seen = now
        st, h, _ = f.req("GET", "/v1/kv/missing?recurse")
        self.assertEqual(st, 404)
        self.assertGreaterEqual(int(h["x-consul-index"]), 1)  # never 0

    def test_blocking_returns_on_change(self):
        f = self.f
        register(f, "web", status="passing")
        idx = f.index("/v1/health/service/web")
        call = BlockingCall(f, "/v1/health/service/web?index=%d&wait=10s" % idx)
        call.start()
        wait_blocked(f)
        t0 = time.monotonic()
        self.assertEqual(f.put("/v1/agent/check/fail/service:web?note=down")[0], 200)
        call.join(5)
        self.assertIsNone(call.error)
        st, h, body = call.result
        self.assertLess(time.monotonic() - t0, 1.0)
        self.assertGreater(int(h["x-consul-index"]), idx)
        self.assertEqual(body[0]["Checks"][1]["Status"], "critical")
        self.assertEqual(body[0]["Checks"][1]["Output"], "down")
        self.assertEqual(f.get("/_fake/blocked")[2], 0)

    def test_blocking_on_a_missing_key_of_an_empty_kv_waits_for_it(self):
        # Consul reports an index of at least 1, and a query for that index blocks until the
        # key is written (Consul's blockingQuery), also when the KV table has never been written.
        f = self.f
        st, h, _ = f.get("/v1/kv/switch")
        self.assertEqual(st, 404)
        idx = int(h["x-consul-index"])
        self.assertGreaterEqual(idx, 1)
        call = BlockingCall(f, "/v1/kv/switch?raw=&index=%d&wait=10s" % idx)
        call.start()
        wait_blocked(f)
        self.assertEqual(f.put("/v1/kv/switch", b"false")[0], 200)
        call.join(5)
        self.assertIsNone(call.error)
        st, _, body = call.result
        self.assertEqual(st, 200)
        self.assertLess(call.elapsed, 5)

    def test_blocking_unrelated_change_keeps_waiting_then_times_out(self):
        f = self.f
        register(f, "web", status="passing")
        register(f, "other", status="passing")
        idx = f.index("/v1/health/service/web")
        call = BlockingCall(f, "/v1/health/service/web?index=%d&wait=1s" % idx)
        call.start()
        wait_blocked(f)
        f.put("/v1/agent/check/fail/service:other")  # must not wake web's watch
        call.join(5)
        self.assertIsNone(call.error)
        st, h, body = call.result
        self.assertEqual(st, 200)
        self.assertEqual(int(h["x-consul-index"]), idx)
        self.assertGreaterEqual(call.elapsed, 0.95)
        self.assertLess(call.elapsed, 1.0 + 1.0 / 16 + 0.5)
        self.assertEqual(len(body), 1)

    def test_identical_reregistration_is_not_a_write(self):
        f = self.f
        register(f, "web", "w", tags=["a"], status="passing")
        idx = f.index("/v1/health/service/web")
        register(f, "web", "w", tags=["a"], status="passing")
        self.assertEqual(f.index("/v1/health/service/web"), idx)
        self.assertEqual(f.get("/_fake/state")[2]["index"], idx)

    def test_disconnected_watcher_is_unparked(self):
        f = self.f
        idx = f.index("/v1/catalog/services")
        import socket
        s = socket.create_connection((f.host, f.port))
        s.sendall(("GET /v1/catalog/services?index=%d&wait=30s HTTP/1.1\r\n"
                   "Host: x\r\n\r\n" % idx).encode())
        wait_blocked(f)
        s.close()
        deadline = time.monotonic() + 3
        while f.get("/_fake/blocked")[2] and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(f.get("/_fake/blocked")[2], 0)

    def test_connect_endpoint(self):
        f = self.f
        register(f, "web", status="passing")
        register(f, "web-sidecar-proxy", port=21000, Kind="connect-proxy",
                 Proxy={"DestinationServiceName": "web"}, status="passing")
        register(f, "native", Connect={"Native": True}, status="passing")
        _, _, e = f.get("/v1/health/connect/web")
        self.assertEqual([(x["Service"]["ID"], x["Service"]["Kind"]) for x in e],
                         [("web-sidecar-proxy", "connect-proxy")])
        self.assertEqual(len(f.get("/v1/health/connect/native")[2]), 1)
        self.assertNotIn("Kind", f.get("/v1/health/service/web")[2][0]["Service"])
        self.assertEqual(f.put("/v1/agent/service/register",
                               {"Name": "p", "Kind": "connect-proxy", "Port": 1})[0], 400)

    def test_index_backwards_answers_at_once(self):
        f = self.f
        t0 = time.monotonic()
        st, h, _ = f.get("/v1/catalog/services?index=999999&wait=5s")
        self.assertEqual(st, 200)
        self.assertLess(time.monotonic() - t0, 0.5)
        self.assertLess(int(h["x-consul-index"]), 999999)
        # a reset while a client waits: it gets the (lower) index at once
        register(f, "web", status="passing")
        idx = f.index("/v1/health/service/web")
        call = BlockingCall(f, "/v1/health/service/web?index=%d&wait=10s" % idx)
        call.start()
        wait_blocked(f)
        f.put("/_fake/reset")
        call.join(5)
        st, h, body = call.result
        self.assertLess(call.elapsed, 2)
        self.assertLessEqual(int(h["x-consul-index"]), idx)
        self.assertEqual(body, [])

    def test_params(self):
        f = self.f
        st, _, b = f.req("GET", "/v1/catalog/services?dc=other")
        self.assertEqual((st, b), (500, b"No path to datacenter"))
        self.assertEqual(f.req("GET", "/v1/health/service/x?dc=dc1")[0], 200)
        st, _, b = f.req("GET", "/v1/health/service/x?filter=Service.Port==80")
        self.assertEqual((st, b), (400, b"filter is not supported by the fake"))
        self.assertEqual(f.req("GET", "/v1/catalog/services?index=1&wait=10")[0], 400)
        self.assertEqual(f.req("GET", "/v1/catalog/services?index=x")[0], 400)
        st, h, _ = f.req("GET", "/v1/catalog/services?stale")
        self.assertEqual(h["x-consul-effective-consistency"], "stale")
        st, h, _ = f.req("GET", "/v1/catalog/services?cached")
        self.assertEqual((h["x-cache"], h["age"]), ("MISS", "0"))
        self.assertEqual(f.req("GET", "/v1/catalog/services?stale&consistent")[0], 400)
        self.assertEqual(f.req("GET", "/v1/health/service/x?ns=default&near=_agent")[0], 200)
        st, _, b = f.req("GET", "/v1/nope")
        self.assertEqual(st, 404)
        st, h, _ = f.req("POST", "/v1/catalog/services")
        self.assertEqual(st, 405)
        self.assertIn("allow", h)
        self.assertEqual(f.req("GET", "/v1/agent/service/register")[0], 405)
        self.assertEqual(f.req("GET", "/v1/health/service/")[0], 400)

    def test_keep_alive_many_requests_one_connection(self):
        f = self.f
        c = f.conn()
        try:
            for _ in range(20):
                c.request("GET", "/v1/catalog/services")
                r = c.getresponse()
                self.assertEqual(r.status, 200)
                self.assertIsNotNone(r.getheader("Content-Length"))
                r.read()
        finally:
            c.close()

    def test_requests_log(self):
        f = self.f
        f.get("/v1/catalog/services?token=abc&stale")
        f.get("/v1/health/service/web", headers={"X-Consul-Token": "t"})
        _, _, reqs = f.get("/_fake/requests")
        self.assertEqual([r["path"] for r in reqs],
                         ["/v1/catalog/services", "/v1/health/service/web"])
        self.assertEqual(reqs[0]["query"], {"token": ["***"], "stale": [""]})
        self.assertTrue(reqs[0]["had_token"] and reqs[1]["had_token"])
        self.assertFalse(reqs[0]["had_basic_auth"])
        self.assertIsInstance(reqs[0]["time"], float)
        f.req("DELETE", "/_fake/requests")
        self.assertEqual(f.get("/_fake/requests")[2], [])

    def test_state_round_trip(self):
        f = self.f
        state = {
            "services": [
                {"ID": "w1", "Service": "web", "Tags": ["t"], "Address": "", "Port": 81,
                 "Meta": {"m": "1"}, "Node": "n1", "NodeAddress": "10.1.0.1",
                 "Checks": [{"CheckID": "w1-ok", "Name": "ok", "Status": "passing"}]},
                {"ID": "w2", "Service": "web", "Tags": [], "Address": "10.9.9.9", "Port": 82,
                 "Meta": {}, "Node": "n2", "NodeAddress": "10.1.0.2",
                 "Checks": [{"CheckID": "w2-ok", "Name": "ok", "Status": "critical"}]},
                {"ID": "local", "Service": "api", "Port": 9000},
            ],
            "kv": {"cfg/a": "1", "cfg/b": "two"},
        }
        st, _, b = f.put("/_fake/state", state)
        self.assertEqual(st, 200, b)
        _, _, got = f.get("/_fake/state")
        self.assertIn("index", got)
        self.assertEqual(got["kv"], state["kv"])
        by = {s["ID"]: s for s in got["services"]}
        self.assertEqual(set(by), {"w1", "w2", "local"})
        for s in state["services"][:2]:
            g = by[s["ID"]]
            for k in ("Service", "Tags", "Address", "Port", "Meta", "Node", "NodeAddress"):
                self.assertEqual(g[k], s[k], k)
            self.assertEqual([(c["CheckID"], c["Status"]) for c in g["Checks"]],
                             [(c["CheckID"], c["Status"]) for c in s["Checks"]])
        self.assertEqual(by["local"]["Node"], "fake-node")
        ids = sorted(e["Service"]["ID"] for e in f.get("/v1/health/service/web?passing")[2])
        self.assertEqual(ids, ["w1"])
        self.assertEqual(sorted(e["Node"]["Address"] for e in
                                f.get("/v1/health/service/web")[2]), ["10.1.0.1", "10.1.0.2"])
        self.assertEqual(f.get("/v1/kv/cfg/b?raw")[2], b"two")
        # putting back what we read changes nothing
        idx = got["index"]
        f.put("/_fake/state", {k: v for k, v in got.items() if k != "index"})
        self.assertEqual(f.get("/_fake/state")[2]["index"], idx)
        # changing only web leaves api's index alone; one bump for the whole write
        api_idx = f.index("/v1/health/service/api")
        state["services"][1]["Checks"][0]["Status"] = "passing"
        f.put("/_fake/state", state)
        self.assertEqual(f.index("/v1/health/service/api"), api_idx)
        new_idx = f.get("/_fake/state")[2]["index"]
        self.assertEqual(new_idx, idx + 1)
        self.assertEqual(f.index("/v1/health/service/web"), new_idx)
        # dropping a service raises its index (tombstone)
        del state["services"][2]
        f.put("/_fake/state", state)
        self.assertGreater(f.index("/v1/health/service/api"), api_idx)
        self.assertEqual(f.get("/v1/health/service/api")[2], [])
        self.assertEqual(f.put("/_fake/state", {"services": [{"Port": 1}]})[0], 400)

    def test_kv(self):
        f = self.f
        st, h, _ = f.req("GET", "/v1/kv/app/x")
        self.assertEqual(st, 404)
        self.assertIn("x-consul-index", h)
        self.assertEqual(f.put("/v1/kv/app/x", b"hello")[2], b"true")
        self.assertEqual(f.put("/v1/kv/app/y?flags=42", b"")[2], b"true")
        _, h, e = f.get("/v1/kv/app/x")
        self.assertEqual(e[0]["Key"], "app/x")
        self.assertEqual(base64.b64decode(e[0]["Value"]), b"hello")
        self.assertEqual((e[0]["Flags"], e[0]["LockIndex"]), (0, 0))
        self.assertEqual(set(e[0]), {"Key", "Value", "Flags", "CreateIndex", "ModifyIndex",
                                     "LockIndex"})
        st, h, raw = f.req("GET", "/v1/kv/app/x?raw")
        self.assertEqual((st, raw), (200, b"hello"))
        _, _, lst = f.get("/v1/kv/app/?recurse")
        self.assertEqual([x["Key"] for x in lst], ["app/x", "app/y"])
        self.assertIsNone(lst[1]["Value"])
        self.assertEqual(lst[1]["Flags"], 42)
        self.assertEqual(f.get("/v1/kv/?keys&separator=/")[2], ["app/"])
        mi = lst[0]["ModifyIndex"]
        self.assertEqual(f.put("/v1/kv/app/x?cas=%d" % (mi + 100), b"no")[2], b"false")
        self.assertEqual(f.put("/v1/kv/app/x?cas=0", b"no")[2], b"false")
        self.assertEqual(f.put("/v1/kv/app/x?cas=%d" % mi, b"yes")[2], b"true")
        # blocking on a key: another key's change does not wake it; its own does
        _, h, _ = f.get("/v1/kv/app/x")
        idx = int(h["x-consul-index"])
        call = BlockingCall(f, "/v1/kv/app/x?index=%d&wait=5s" % idx)
        call.start()
        wait_blocked(f)
        f.put("/v1/kv/other", b"1")
        time.sleep(0.2)
        self.assertTrue(call.is_alive())
        f.put("/v1/kv/app/x", b"new")
        call.join(5)
        st, h, e = call.result
        self.assertLess(call.elapsed, 2)
        self.assertEqual(base64.b64decode(e[0]["Value"]), b"new")
        self.assertGreater(int(h["x-consul-index"]), idx)
        # delete bumps a recurse query's index (tombstone) and gives 404
        ridx = f.index("/v1/kv/app/?recurse")
        self.assertEqual(f.req("DELETE", "/v1/kv/app/y")[2], b"true")
        st, h, _ = f.req("GET", "/v1/kv/app/y")
        self.assertEqual(st, 404)
        self.assertGreater(f.index("/v1/kv/app/?recurse"), ridx)
        self.assertEqual(f.req("DELETE", "/v1/kv/app/?recurse")[0], 200)
        self.assertEqual(f.req("GET", "/v1/kv/app/?recurse")[0], 404)
        self.assertEqual(f.put("/v1/kv/", b"x")[0], 400)

    def test_ttl_expiry(self):
        f = self.f
        register(f, "ttl", checks=[{"TTL": "300ms", "Status": "passing"}])
        self.assertEqual(f.put("/v1/agent/check/pass/service:ttl?note=fine")[0], 200)
        time.sleep(0.6)
        _, _, e = f.get("/v1/health/service/ttl")
        c = e[0]["Checks"][1]
        self.assertEqual(c["Status"], "critical")
        self.assertTrue(c["Output"].startswith("TTL expired"), c["Output"])
        st, _, _ = f.put("/v1/agent/check/update/service:ttl",
                         {"Status": "warning", "Output": "meh"})
        self.assertEqual(st, 200)
        _, _, e = f.get("/v1/health/service/ttl")
        self.assertEqual((e[0]["Checks"][1]["Status"], e[0]["Checks"][1]["Output"]),
                         ("warning", "meh"))
        self.assertEqual(f.put("/v1/agent/check/update/service:ttl", {"Status": "bad"})[0], 400)
        # re-registration keeps the current status (Consul snapshots check state)
        register(f, "ttl", checks=[{"TTL": "30s"}])
        _, _, e = f.get("/v1/health/service/ttl")
        self.assertEqual(e[0]["Checks"][1]["Status"], "warning")

    def test_many_services_stay_cheap(self):
        f = self.f
        services = [{"ID": "s%d" % i, "Service": "svc%d" % i, "Tags": ["t%d" % (i % 7)],
                     "Port": 1000 + i,
                     "Checks": [{"CheckID": "c%d" % i, "Status": "passing"}]}
                    for i in range(1000)]
        t0 = time.monotonic()
        self.assertEqual(f.put("/_fake/state", {"services": services})[0], 200)
        _, _, cat = f.get("/v1/catalog/services")
        self.assertEqual(len(cat), 1001)
        c = f.conn()
        for i in range(0, 1000, 10):
            c.request("GET", "/v1/health/service/svc%d?passing" % i)
            r = c.getresponse()
            self.assertEqual(len(json.loads(r.read())), 1)
        c.close()
        self.assertLess(time.monotonic() - t0, 5)

    def test_fault_modes(self):
        f = self.f
        f.put("/_fake/fault", {"mode": "error500"})
        st, _, b = f.req("GET", "/v1/catalog/services")
        self.assertEqual((st, b), (500, b"rpc error: fake fault"))
        self.assertEqual(f.get("/_fake/blocked")[0], 200)  # control endpoints unaffected

        f.put("/_fake/fault", {"mode": "garbage"})
        st, h, b = f.req("GET", "/v1/health/service/web")
        self.assertEqual(st, 200)
        self.assertEqual(h["content-type"], "application/json")
        self.assertIn("x-consul-index", h)
        with self.assertRaises(ValueError):
            json.loads(b)

        f.put("/_fake/fault", {"mode": "close"})
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            f.req("GET", "/v1/catalog/services")

        f.put("/_fake/fault", {"mode": "slow", "delay_ms": 300})
        t0 = time.monotonic()
        self.assertEqual(f.req("GET", "/v1/catalog/services")[0], 200)
        self.assertGreaterEqual(time.monotonic() - t0, 0.29)

        f.put("/_fake/fault", {"mode": "error500", "paths": ["/v1/kv/"]})
        self.assertEqual(f.req("GET", "/v1/catalog/services")[0], 200)
        self.assertEqual(f.req("GET", "/v1/kv/x")[0], 500)

        f.put("/_fake/fault", {"mode": "hang"})
        c = f.conn(timeout=0.3)
        c.request("GET", "/v1/catalog/services")
        with self.assertRaises(OSError):  # socket.timeout: no answer
            c.getresponse()
        c.close()
        c = f.conn(timeout=5)
        c.request("GET", "/v1/catalog/services")
        holder = {}

        def read():
            try:
                c.getresponse()
            except Exception as e:  # noqa: BLE001
                holder["err"] = e
        th = threading.Thread(target=read, daemon=True)
        th.start()
        time.sleep(0.3)
        self.assertTrue(th.is_alive())
        t0 = time.monotonic()
        f.put("/_fake/fault", {"mode": "ok"})
        th.join(3)
        self.assertLess(time.monotonic() - t0, 2.5)
        self.assertIsInstance(holder.get("err"), (http.client.RemoteDisconnected,
                                                  ConnectionError))
        c.close()
        self.assertEqual(f.req("GET", "/v1/catalog/services")[0], 200)
        self.assertEqual(f.put("/_fake/fault", {"mode": "nope"})[0], 400)


class TokenAuth(Base):
    ARGS = ("--token", "s3cr3t-value")

    def test_token_required(self):
        f = self.f
        st, _, b = f.req("GET", "/v1/catalog/services")
        self.assertEqual((st, b), (403, b"ACL not found"))
        self.assertEqual(f.req("GET", "/v1/catalog/services?token=wrong")[0], 403)
        self.assertEqual(f.req("GET", "/v1/catalog/services",
                               headers={"X-Consul-Token": "wrong"})[0], 403)
        self.assertEqual(f.req("GET", "/v1/catalog/services",
                               headers={"X-Consul-Token": "s3cr3t-value"})[0], 200)
        self.assertEqual(f.req("GET", "/v1/catalog/services",
                               headers={"Authorization": "Bearer s3cr3t-value"})[0], 200)
        self.assertEqual(f.req("GET", "/v1/catalog/services?token=s3cr3t-value")[0], 200)
        self.assertEqual(f.req("PUT", "/v1/kv/k", b"v")[0], 403)
        self.assertEqual(f.req("PUT", "/v1/kv/k?token=s3cr3t-value", b"v")[0], 200)
        self.assertEqual(f.req("GET", "/_fake/requests")[0], 200)  # no ACL on control
        self.assertEqual(f.req("GET", "/v1/status/leader")[0], 200)  # as Consul
        reqs = f.get("/_fake/requests")[2]
        self.assertEqual(reqs[2]["had_token"], True)
        self.assertEqual(reqs[0]["had_token"], False)
        self.assertNotIn("s3cr3t", json.dumps(reqs))

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        assert "s3cr3t" not in cls.log, "token leaked into the log"
        assert "token=***" in cls.log


class BasicAuth(Base):
    ARGS = ("--basic-auth", "alice:pw", "--datacenter", "east", "--node-name", "n0")

    def test_basic_auth(self):
        f = self.f
        st, h, _ = f.req("GET", "/v1/catalog/services")
        self.assertEqual(st, 401)
        self.assertEqual(h["www-authenticate"], 'Basic realm="consul"')
        bad = "Basic " + base64.b64encode(b"alice:nope").decode()
        self.assertEqual(f.req("GET", "/v1/catalog/services",
                               headers={"Authorization": bad})[0], 401)
        good = {"Authorization": "Basic " + base64.b64encode(b"alice:pw").decode()}
        self.assertEqual(f.req("GET", "/v1/catalog/services", headers=good)[0], 200)
        self.assertEqual(f.req("GET", "/v1/catalog/services?dc=dc1", headers=good)[0], 500)
        self.assertEqual(f.get("/v1/catalog/datacenters", headers=good)[2], ["east"])
        self.assertEqual(f.get("/v1/agent/self", headers=good)[2]["Config"]["NodeName"], "n0")
        self.assertTrue(f.get("/_fake/requests")[2][-1]["had_basic_auth"])


class Lifecycle(unittest.TestCase):
    def test_state_file_and_sigint(self):
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as tf:
            json.dump({"services": [{"ID": "x1", "Service": "x", "Port": 1,
                                     "Checks": [{"Status": "passing"}]}],
                       "kv": {"a": "b"}}, tf)
        try:
            f = Fake("--state", tf.name, "--no-consul-service")
            try:
                self.assertEqual(list(f.get("/v1/catalog/services")[2]), ["x"])
                self.assertEqual(f.get("/v1/kv/a?raw")[2], b"b")
                self.assertEqual(len(f.get("/v1/health/service/x?passing")[2]), 1)
            finally:
                f.proc.send_signal(signal.SIGINT)
                rc, log = f.stop()
            self.assertEqual(rc, 0)
        finally:
            os.unlink(tf.name)

    def test_sigterm_with_parked_watch(self):
        f = Fake()
        call = BlockingCall(f, "/v1/catalog/services?index=%d&wait=30s"
                            % f.index("/v1/catalog/services"))
        call.start()
        wait_blocked(f)
        t0 = time.monotonic()
        rc, _ = f.stop()
        self.assertEqual(rc, 0)
        self.assertLess(time.monotonic() - t0, 3)


if __name__ == "__main__":
    unittest.main()
