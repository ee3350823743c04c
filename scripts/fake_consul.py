#!/usr/bin/env python3
"""fake_consul.py: an in-memory fake of the Consul HTTP API, for tests and the demo.

This file is NOT Consul. The real Consul cannot be installed on this machine,
so betaroute's Rust integration tests (which spawn this script as a process)
and scripts/demo.sh talk to this fake instead. It uses only the Python 3
standard library. It copies Consul where a service-discovery client looks:
response shapes and field names, the X-Consul-* headers, blocking queries
(index/wait, jitter, per-result indexes that ignore unrelated writes), the
agent and catalog write APIs, and the error codes and bodies.

Usage:
  python3 scripts/fake_consul.py [--listen 127.0.0.1:0] [--datacenter dc1]
      [--node-name fake-node] [--token SECRET] [--basic-auth user:pass]
      [--state FILE.json] [--no-consul-service]
      [--tls-cert CERT.pem --tls-key KEY.pem [--tls-client-ca CA.pem]]

Once the port accepts connections it prints exactly one line to stdout:
  fake consul listening on http://127.0.0.1:PORT
It logs one line per request to stderr (method, path and query with token
values shown as ***, status, duration). It never prints a token. SIGTERM and
SIGINT make it exit with status 0.

Implemented (all under /v1/):
  GET  catalog/services, catalog/service/<name>, catalog/nodes,
       catalog/node/<node>, catalog/datacenters
  PUT  catalog/register, catalog/deregister
  GET  health/service/<name>, health/connect/<name>, health/state/<state>,
       health/checks/<service>, health/node/<node>
  GET  agent/self, agent/members, agent/services, agent/service/<id>,
       agent/checks
  PUT  agent/service/register[?replace-existing-checks],
       agent/service/deregister/<id>,
       agent/service/maintenance/<id>?enable=&reason=, agent/maintenance,
       agent/check/register, agent/check/deregister/<id>,
       agent/check/pass|warn|fail/<id>[?note=], agent/check/update/<id>
  GET  status/leader, status/peers
  GET/PUT/DELETE kv/<key> (recurse, keys, separator, raw, cas, flags)
Query parameters on reads: dc (an unknown dc gives 500 "No path to
datacenter"), index + wait (blocking), stale, consistent, cached (adds
"X-Cache: MISS" and "Age: 0" where Consul's agent cache applies), ns
(accepted and ignored), near (ignored), tag (repeatable, all must match,
case-insensitive like Consul), passing, node-meta, pretty. "filter" is
refused with 400 "filter is not supported by the fake", so that no test
relies on it by accident.

Blocking queries: if index > 0 and the result's index equals it, the request
waits until the result changes or until wait (Go duration; default 5m,
capped at 10m) plus a random jitter of up to wait/16 has passed. Each result
has its own index, as in Consul. /v1/health/service/<name> and
/v1/catalog/service/<name> use an index for that service name, raised by
writes to that service's instances, to their checks, and to the nodes that
host them. It is kept as a tombstone after the last instance is
deregistered. A name never seen uses the services-table index. Catalog
lists use their table's index. kv/<key> returns the KV table's index but
wakes only when that key changes, as Consul does.

Control endpoints for tests (not Consul; no token or basic auth needed):
  PUT/GET  /_fake/state     replace / read the whole catalog and KV
  PUT/GET  /_fake/fault     {"mode": ok|error500|garbage|hang|close|slow,
                              "paths": [prefixes], "delay_ms": N}
  GET/DELETE /_fake/requests  the /v1/ requests received (last 10,000)
  GET      /_fake/blocked   number of blocking queries now waiting
  PUT      /_fake/check/<checkID>[?node=N]  {"Status":..,"Output":..}
           sets any check's status (HTTP/TCP/external checks included)
  PUT      /_fake/reset     empty catalog and KV, index back to 1 (waiters
                            are answered at once: "index went backwards")

Not implemented: Raft, several servers, sessions and locks (KV acquire and
release answer 500), ACL policies, roles and the ACL API (with --token there
is exactly one token, which can do everything), filter expressions,
namespaces and partitions (ns is accepted and ignored), prepared queries,
events, Connect CA and intentions, sidecar_service expansion, peering,
hash-based blocking on agent endpoints, DeregisterCriticalServiceAfter.

Health checks: TTL checks work as in Consul. They start "critical" (or with
the given Status), /v1/agent/check/pass|warn|fail|update sets them, and they
go critical with Output "TTL expired..." when not updated in time. HTTP, TCP,
gRPC, script and other active checks are never run. Such a check keeps its
initial Status (default "critical", as in Consul). Change it with
PUT /_fake/check/<id>, PUT /_fake/state, or PUT /v1/catalog/register. As in
Consul, /v1/agent/check/pass etc. refuse checks that have no TTL.

Differences from Consul (all intended):
  * With --token, a missing or wrong token gives 403 "ACL not found" on every
    /v1/ endpoint except status/*, which Consul serves without ACL. A real
    Consul with default-deny often answers an anonymous read with 200 and an
    empty, ACL-filtered result instead.
  * A blocking query whose index is above the result's current index (the
    index went backwards) is answered at once. Consul would wait for "wait";
    clients must reset their index to 0 in that case either way.
  * Services and checks registered through the agent API are written to the
    catalog at once (no anti-entropy delay). The agent's own node always has
    address 127.0.0.1.
  * Nodes created with /v1/catalog/register are "external nodes": like in
    Consul they get no serfHealth check. Nodes created by /_fake/state and the
    agent's node have a passing serfHealth check.
  * A catalog entry for the "consul" service itself (port 8300, on the
    agent's node) exists, as on a real server; --no-consul-service removes it.

Consul behaviour a client may not expect (copied on purpose):
  * Maintenance mode adds a check whose Status is "critical" (Type
    "maintenance"). Consul has no "maintenance" check status, so ?passing and
    health/state/critical see it like any failing check.
  * ?passing drops an instance if any of its checks, node checks included, is
    not "passing". ?tag compares case-insensitively.
  * Only blocking-capable reads (catalog, health, kv) carry X-Consul-Index,
    X-Consul-Knownleader, X-Consul-Lastcontact and
    X-Consul-Effective-Consistency. The names are in Go's canonical case,
    as Consul sends them. agent/* and status/* carry none of them.
  * Writes that change nothing (same TTL status and output, an identical
    re-registration, an identical KV PUT) do not raise any index.
  * A re-registered service keeps the current status and output of checks
    whose CheckID it had before. Checks it no longer lists are kept unless
    ?replace-existing-checks is given.
  * Empty Tags are [] and empty Meta are {}. TaggedAddresses is null for
    nodes registered without them. An empty KV value is "Value": null.
  * A missing KV key (and an empty recurse/keys result) is 404 with an empty
    body and an X-Consul-Index header. ?raw answers the bytes as text/plain.

/_fake/state body: {"services": [{"ID", "Service", "Tags", "Address", "Port",
"Meta", "Node" (default: the agent's node), "NodeAddress" (default
127.0.0.1), "Checks": [{"CheckID" (default service:<ID>), "Name", "Status"
(default "critical", as in Consul), "Output", "Notes", "TTL"?}], optional
"Kind", "Proxy", "Connect", "Weights"}], "nodes": [{"Node", "Address",
"Meta", "Checks"}] (optional; node checks; serfHealth is added as passing
unless listed), "kv": {key: "string" or {"base64": ...}}}. The write
replaces everything but the agent's node and the consul service. Unchanged
objects keep their indexes, so only the results that change get a new index.
All changes share one index. GET returns the same shape plus "index".
"""

import argparse
import base64
import binascii
import hashlib
import hmac
import json
import os
import random
import re
import select
import signal
import socket
import sys
import threading
import time
import traceback
import uuid
from collections import deque
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

CONSUL_VERSION = "1.20.0"
DEFAULT_WAIT = 300.0  # 5m, as Consul
MAX_WAIT = 600.0  # 10m, as Consul
JITTER_FRACTION = 16
KV_MAX_VALUE = 512 * 1024
MAX_REQUESTS_KEPT = 10000
SERVICE_MAINT_PREFIX = "_service_maintenance:"
NODE_MAINT_ID = "_node_maintenance"
SERF_CHECK_ID = "serfHealth"
DEFAULT_SERVICE_MAINT_REASON = (
    "Maintenance mode is enabled for this service, but no reason was provided. "
    "This is a default message."
)
DEFAULT_NODE_MAINT_REASON = (
    "Maintenance mode is enabled for this node, but no reason was provided. "
    "This is a default message."
)
VALID_STATUSES = ("passing", "warning", "critical")
FAULT_MODES = ("ok", "error500", "garbage", "hang", "close", "slow")
AGENT_ADDRESS = "127.0.0.1"
CACHED_ROUTES = ("catalog_services", "catalog_service", "health_service", "health_connect")

# ---------------------------------------------------------------- helpers


class HTTPError(Exception):
    """An error answer: status + short text body (Consul writes text/plain)."""

    def __init__(self, status, text, headers=None):
        super().__init__(text)
        self.status = status
        self.text = text
        self.headers = headers or []


class ClientGone(Exception):
    pass


class Resp:
    __slots__ = ("status", "body", "headers")

    def __init__(self, status, body=b"", headers=None):
        self.status = status
        self.body = body
        self.headers = headers or []


CLOSE = object()  # sentinel: close the connection without answering


def text_resp(status, text, headers=None):
    h = [("Content-Type", "text/plain; charset=utf-8")] + list(headers or [])
    return Resp(status, text.encode("utf-8"), h)


def encode_json(obj, pretty=False):
    if pretty:
        return (json.dumps(obj, indent=4, ensure_ascii=False) + "\n").encode("utf-8")
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def json_resp(obj, status=200, headers=None, pretty=False):
    h = [("Content-Type", "application/json")] + list(headers or [])
    return Resp(status, encode_json(obj, pretty), h)


_TOKEN_RE = re.compile(r"((?:^|[?&\s])token=)[^&\s\"']*")


def mask_tokens(text):
    return _TOKEN_RE.sub(lambda m: m.group(1) + "***", text)


_DUR_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")
_DUR_UNITS = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "\u03bcs": 1e-6,
              "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_go_duration(s):
    """time.ParseDuration: "10s", "1m30s", "100ms", "0"; a bare number fails."""
    if not isinstance(s, str) or s == "":
        raise ValueError("invalid duration %r" % (s,))
    orig, sign = s, 1.0
    if s[0] in "+-":
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    if s == "0":
        return 0.0
    if not s:
        raise ValueError("invalid duration %r" % orig)
    total, pos = 0.0, 0
    while pos < len(s):
        m = _DUR_RE.match(s, pos)
        if not m:
            raise ValueError("invalid duration %r" % orig)
        total += float(m.group(1)) * _DUR_UNITS[m.group(2)]
        pos = m.end()
    return sign * total


def _frac(value, unit):
    whole, frac = divmod(value, unit)
    if frac == 0:
        return str(whole)
    digits = len(str(unit)) - 1
    return "%d.%s" % (whole, str(frac).rjust(digits, "0").rstrip("0"))


def format_go_duration(seconds):
    """time.Duration.String(): 10s, 1m30s, 1h0m0s, 100ms."""
    ns = int(round(seconds * 1e9))
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < 1000:
        return "%s%dns" % (sign, ns)
    if ns < 1000000:
        return sign + _frac(ns, 1000) + "\u00b5s"
    if ns < 1000000000:
        return sign + _frac(ns, 1000000) + "ms"
    h, rem = divmod(ns, 3600 * 10**9)
    m, rem = divmod(rem, 60 * 10**9)
    out = _frac(rem, 10**9) + "s"
    if h:
        out = "%dh%dm" % (h, m) + out
    elif m:
        out = "%dm" % m + out
    return sign + out


def parse_go_bool(s):
    """strconv.ParseBool."""
    if s in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if s in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError(s)


def _norm(key):
    return key.replace("_", "").replace("-", "").lower()


def field(d, name, default=None):
    """Look a field up the way Consul decodes JSON bodies: case-insensitively
    (Go's encoding/json) and also in snake_case (Consul translates keys)."""
    if not isinstance(d, dict):
        return default
    if name in d:
        return d[name]
    n = _norm(name)
    for k, v in d.items():
        if isinstance(k, str) and _norm(k) == n:
            return v
    return default


def decode_failed(msg):
    return HTTPError(400, "Request decode failed: " + msg)


def as_str(v, name, default=""):
    if v is None:
        return default
    if not isinstance(v, str):
        raise decode_failed("%s: expected a string, got %s" % (name, type(v).__name__))
    return v


def as_int(v, name, default=0):
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise decode_failed("%s: expected a number, got %s" % (name, type(v).__name__))
    if isinstance(v, float):
        if not v.is_integer():
            raise decode_failed("%s: expected an integer" % name)
        v = int(v)
    return v


def as_bool(v, name, default=False):
    if v is None:
        return default
    if not isinstance(v, bool):
        raise decode_failed("%s: expected a boolean" % name)
    return v


def as_str_list(v, name):
    if v is None:
        return []
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise decode_failed("%s: expected a list of strings" % name)
    return list(v)


def as_str_map(v, name):
    if v is None:
        return {}
    if not isinstance(v, dict) or not all(isinstance(x, str) for x in v.values()):
        raise decode_failed("%s: expected an object of strings" % name)
    return dict(v)


def as_obj(v, name):
    if v is None:
        return None
    if not isinstance(v, dict):
        raise decode_failed("%s: expected an object" % name)
    return v


def as_duration(v, name):
    """Consul accepts a Go duration string or a number of nanoseconds."""
    if v is None or v == "":
        return None
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return v / 1e9
    try:
        return parse_go_duration(v)
    except ValueError:
        raise decode_failed("%s: time: invalid duration %r" % (name, v))


def parse_weights(v):
    w = as_obj(v, "Weights")
    if w is None:
        return {"Passing": 1, "Warning": 1}
    passing = as_int(field(w, "Passing"), "Weights.Passing", 1)
    warning = as_int(field(w, "Warning"), "Weights.Warning", 1)
    if passing < 1:
        raise HTTPError(400, "Invalid Weights: Passing must be greater than 0")
    return {"Passing": passing, "Warning": warning}


_INDEX_KEYS = ("CreateIndex", "ModifyIndex")


def _same(old, new):
    """Equal apart from the Create/Modify indexes."""
    a = {k: v for k, v in old.items() if k not in _INDEX_KEYS}
    b = {k: v for k, v in new.items() if k not in _INDEX_KEYS}
    return a == b


# ------------------------------------------------------------------ store


class Txn:
    """One write. Everything it changes gets index idx; commit publishes it."""

    def __init__(self, store):
        self.idx = store.index + 1
        self.changed = False
        self.names = set()  # service names and ("connect", name) keys touched
        self.services = self.nodes = self.checks = self.kv = False


class Store:
    """All state, guarded by one lock; cond is notified after every write."""

    def __init__(self, datacenter, node_name, consul_service=True):
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.dc = datacenter
        self.node_name = node_name
        self.node_id = str(uuid.uuid5(uuid.NAMESPACE_DNS, node_name + ".fake-consul"))
        self.consul_service = consul_service
        self.blocked = 0
        self.stopping = False
        self.fault = {"mode": "ok", "paths": ["/v1/"], "delay_ms": 0}
        self.requests = deque(maxlen=MAX_REQUESTS_KEPT)
        with self.lock:
            self.reset_locked()

    # ---- lifecycle

    def reset_locked(self):
        self.index = 0
        self.nodes = {}  # name -> node
        self.services = {}  # (node, id) -> service instance
        self.by_name = {}  # name -> {(node, id): svc}
        self.proxies_by_dest = {}  # dest name -> {(node, id): svc}
        self.node_services = {}  # node -> set(service id)
        self.checks = {}  # (node, check id) -> check
        self.node_checks = {}  # node -> {cid: check} (node-level checks only)
        self.svc_checks = {}  # (node, sid) -> {cid: check}
        self.svc_index = {}  # name or ("connect", name) -> index
        self.services_index = self.nodes_index = self.checks_index = 0
        self.kv = {}
        self.kv_tombstones = {}
        self.kv_index = 0
        self.ttl_deadlines = {}  # (node, cid) -> monotonic deadline
        t = self.begin()
        self.put_node(t, self.node_name, AGENT_ADDRESS, self.agent_node_meta(),
                      self.agent_tagged_addresses(), node_id=self.node_id, serf=True)
        if self.consul_service:
            self.put_service(t, self.consul_service_def())
        self.commit(t)
        self.cond.notify_all()

    def agent_node_meta(self):
        return {"consul-network-segment": "", "consul-version": CONSUL_VERSION}

    def agent_tagged_addresses(self):
        a = AGENT_ADDRESS
        return {"lan": a, "lan_ipv4": a, "wan": a, "wan_ipv4": a}

    def consul_service_def(self):
        svc = new_service(self.node_name, "consul", "consul", port=8300, local=False)
        svc["Meta"] = {
            "grpc_port": "8502", "non_voter": "false", "raft_version": "3",
            "read_replica": "false", "serf_protocol_current": "2",
            "serf_protocol_max": "5", "serf_protocol_min": "1",
            "version": CONSUL_VERSION,
        }
        svc["_internal"] = True
        return svc

    def begin(self):
        return Txn(self)

    def commit(self, t):
        if not t.changed:
            return
        self.index = t.idx
        for k in t.names:
            self.svc_index[k] = t.idx
        if t.services:
            self.services_index = t.idx
        if t.nodes:
            self.nodes_index = t.idx
        if t.checks:
            self.checks_index = t.idx
        if t.kv:
            self.kv_index = t.idx
        self.cond.notify_all()

    # ---- indexes

    def service_index(self, name):
        return self.svc_index.get(name, self.services_index)

    def connect_index(self, name):
        return self.svc_index.get(("connect", name), self.services_index)

    def kv_key_version(self, key):
        e = self.kv.get(key)
        if e is not None:
            return e["ModifyIndex"]
        return self.kv_tombstones.get(key, 0)

    def kv_prefix_index(self, prefix):
        if prefix == "":
            return self.kv_index
        m = 0
        for k, e in self.kv.items():
            if k.startswith(prefix) and e["ModifyIndex"] > m:
                m = e["ModifyIndex"]
        for k, i in self.kv_tombstones.items():
            if k.startswith(prefix) and i > m:
                m = i
        return m or self.kv_index

    # ---- nodes

    def put_node(self, t, name, address, meta=None, tagged=None, node_id=None, serf=False):
        old = self.nodes.get(name)
        if node_id is None or node_id == "":
            node_id = old["ID"] if old else ""
        new = {
            "ID": node_id, "Node": name, "Address": address, "Datacenter": self.dc,
            "TaggedAddresses": tagged if tagged else None, "Meta": dict(meta or {}),
        }
        if old is not None and _same(old, new):
            return old
        new["CreateIndex"] = old["CreateIndex"] if old else t.idx
        new["ModifyIndex"] = t.idx
        self.nodes[name] = new
        t.changed = t.nodes = True
        if old is None:
            self.node_services[name] = set()
            self.node_checks[name] = {}
            if serf:
                self.put_check(t, new_check(name, SERF_CHECK_ID, "Serf Health Status",
                                            "passing", output="Agent alive and reachable"))
        else:
            self.touch_node(t, name)
        return new

    def del_node(self, t, name):
        if name not in self.nodes:
            return
        for sid in list(self.node_services.get(name, ())):
            self.del_service(t, name, sid)
        for cid in list(self.node_checks.get(name, {})):
            self.del_check(t, name, cid)
        del self.nodes[name]
        self.node_services.pop(name, None)
        self.node_checks.pop(name, None)
        t.changed = t.nodes = True

    def touch_node(self, t, name):
        for sid in self.node_services.get(name, ()):
            self.touch_service(t, self.services[(name, sid)])

    # ---- services

    def touch_service(self, t, svc):
        t.names.add(svc["Service"])
        if svc["Kind"] == "connect-proxy":
            dest = (svc.get("Proxy") or {}).get("DestinationServiceName")
            if dest:
                t.names.add(("connect", dest))
        if (svc.get("Connect") or {}).get("Native"):
            t.names.add(("connect", svc["Service"]))

    def _unindex_service(self, key, svc):
        names = self.by_name.get(svc["Service"])
        if names is not None:
            names.pop(key, None)
            if not names:
                del self.by_name[svc["Service"]]
        dest = proxy_dest(svc)
        if dest:
            p = self.proxies_by_dest.get(dest)
            if p is not None:
                p.pop(key, None)
                if not p:
                    del self.proxies_by_dest[dest]

    def put_service(self, t, svc):
        key = (svc["Node"], svc["ID"])
        old = self.services.get(key)
        if old is not None and _same(old, svc):
            return old
        svc["CreateIndex"] = old["CreateIndex"] if old else t.idx
        svc["ModifyIndex"] = t.idx
        if old is not None:
            self._unindex_service(key, old)
            self.touch_service(t, old)
        self.services[key] = svc
        self.by_name.setdefault(svc["Service"], {})[key] = svc
        dest = proxy_dest(svc)
        if dest:
            self.proxies_by_dest.setdefault(dest, {})[key] = svc
        self.node_services[svc["Node"]].add(svc["ID"])
        self.touch_service(t, svc)
        t.changed = t.services = True
        for c in list(self.svc_checks.get(key, {}).values()):
            if c["ServiceName"] != svc["Service"] or c["ServiceTags"] != svc["Tags"]:
                nc = dict(c)
                nc["ServiceName"] = svc["Service"]
                nc["ServiceTags"] = list(svc["Tags"])
                self.put_check(t, nc)
        return svc

    def del_service(self, t, node, sid):
        key = (node, sid)
        old = self.services.get(key)
        if old is None:
            return False
        for cid in list(self.svc_checks.get(key, {})):
            self.del_check(t, node, cid)
        self.svc_checks.pop(key, None)
        del self.services[key]
        self._unindex_service(key, old)
        self.node_services[node].discard(sid)
        self.touch_service(t, old)
        t.changed = t.services = True
        return True

    # ---- checks

    def _unlink_check(self, c):
        if c["ServiceID"]:
            d = self.svc_checks.get((c["Node"], c["ServiceID"]))
            if d is not None:
                d.pop(c["CheckID"], None)
        else:
            self.node_checks.get(c["Node"], {}).pop(c["CheckID"], None)

    def touch_check(self, t, c):
        if c["ServiceID"]:
            svc = self.services.get((c["Node"], c["ServiceID"]))
            if svc is not None:
                self.touch_service(t, svc)
        else:
            self.touch_node(t, c["Node"])

    def put_check(self, t, chk):
        key = (chk["Node"], chk["CheckID"])
        old = self.checks.get(key)
        if old is not None and _same(old, chk):
            return old
        chk["CreateIndex"] = old["CreateIndex"] if old else t.idx
        chk["ModifyIndex"] = t.idx
        if old is not None:
            self._unlink_check(old)
            if old["ServiceID"] != chk["ServiceID"]:
                self.touch_check(t, old)
        self.checks[key] = chk
        if chk["ServiceID"]:
            self.svc_checks.setdefault((chk["Node"], chk["ServiceID"]), {})[chk["CheckID"]] = chk
        else:
            self.node_checks[chk["Node"]][chk["CheckID"]] = chk
        self.touch_check(t, chk)
        t.changed = t.checks = True
        return chk

    def del_check(self, t, node, cid):
        key = (node, cid)
        old = self.checks.pop(key, None)
        if old is None:
            return False
        self._unlink_check(old)
        self.ttl_deadlines.pop(key, None)
        self.touch_check(t, old)
        t.changed = t.checks = True
        return True

    def set_check_status(self, t, c, status, output=None):
        nc = dict(c)
        nc["Status"] = status
        if output is not None:
            nc["Output"] = output
        return self.put_check(t, nc)

    def arm_ttl(self, c):
        if c.get("_ttl"):
            self.ttl_deadlines[(c["Node"], c["CheckID"])] = time.monotonic() + c["_ttl"]

    def expire_ttls(self):
        now = time.monotonic()
        expired = [k for k, d in self.ttl_deadlines.items() if d <= now]
        if not expired:
            return
        t = self.begin()
        for k in expired:
            del self.ttl_deadlines[k]
            c = self.checks.get(k)
            if c is None:
                continue
            out = "TTL expired"
            if c["Output"]:
                out = "TTL expired (last output before timeout follows): " + c["Output"]
            self.set_check_status(t, c, "critical", out)
        self.commit(t)

    # ---- reads used by several endpoints

    def node_level_checks(self, node):
        return sorted(self.node_checks.get(node, {}).values(), key=lambda c: c["CheckID"])

    def all_node_checks(self, node):
        out = list(self.node_checks.get(node, {}).values())
        for sid in self.node_services.get(node, ()):
            out.extend(self.svc_checks.get((node, sid), {}).values())
        out.sort(key=lambda c: c["CheckID"])
        return out

    def instance_checks(self, svc):
        node_level = self.node_level_checks(svc["Node"])
        own = sorted(self.svc_checks.get((svc["Node"], svc["ID"]), {}).values(),
                     key=lambda c: c["CheckID"])
        return node_level + own

    def local_services(self):
        out = {}
        for sid in self.node_services.get(self.node_name, ()):
            svc = self.services[(self.node_name, sid)]
            if svc.get("_local"):
                out[sid] = svc
        return out

    def local_check(self, cid):
        c = self.checks.get((self.node_name, cid))
        if c is not None and c.get("_local"):
            return c
        return None


def proxy_dest(svc):
    if svc["Kind"] != "connect-proxy":
        return None
    return (svc.get("Proxy") or {}).get("DestinationServiceName") or None


def new_service(node, sid, name, tags=None, address="", port=0, meta=None, weights=None,
                eto=False, kind="", proxy=None, connect=None, tagged=None, local=True):
    return {
        "ID": sid, "Service": name, "Tags": list(tags or []), "Address": address,
        "Port": port, "Meta": dict(meta or {}),
        "Weights": dict(weights or {"Passing": 1, "Warning": 1}),
        "EnableTagOverride": bool(eto), "Kind": kind or "", "Proxy": proxy,
        "Connect": connect, "TaggedAddresses": tagged or None, "Node": node,
        "_local": local, "_internal": False,
    }


def new_check(node, cid, name, status, notes="", output="", service=None, ctype="",
              interval="", timeout="", definition=None, ttl=None, local=False):
    return {
        "Node": node, "CheckID": cid, "Name": name, "Status": status, "Notes": notes,
        "Output": output,
        "ServiceID": service["ID"] if service else "",
        "ServiceName": service["Service"] if service else "",
        "ServiceTags": list(service["Tags"]) if service else [],
        "Type": ctype, "Interval": interval, "Timeout": timeout,
        "Definition": dict(definition or {}),
        "_ttl": ttl, "_local": local,
    }


# ------------------------------------------------------- JSON output shapes


def out_node(n):
    return {
        "ID": n["ID"], "Node": n["Node"], "Address": n["Address"],
        "Datacenter": n["Datacenter"], "TaggedAddresses": n["TaggedAddresses"],
        "Meta": n["Meta"], "CreateIndex": n["CreateIndex"], "ModifyIndex": n["ModifyIndex"],
    }


def _proxy_out(svc):
    return svc["Proxy"] if svc["Proxy"] is not None else {"MeshGateway": {}, "Expose": {}}


def out_health_service(svc):
    o = {}
    if svc["Kind"]:
        o["Kind"] = svc["Kind"]
    o.update({"ID": svc["ID"], "Service": svc["Service"], "Tags": list(svc["Tags"]),
              "Address": svc["Address"]})
    if svc["TaggedAddresses"]:
        o["TaggedAddresses"] = svc["TaggedAddresses"]
    o.update({
        "Meta": svc["Meta"], "Port": svc["Port"], "Weights": svc["Weights"],
        "EnableTagOverride": svc["EnableTagOverride"], "Proxy": _proxy_out(svc),
        "Connect": svc["Connect"] if svc["Connect"] is not None else {},
        "CreateIndex": svc["CreateIndex"], "ModifyIndex": svc["ModifyIndex"],
    })
    return o


def out_catalog_service(svc, node):
    o = {
        "ID": node["ID"], "Node": node["Node"], "Address": node["Address"],
        "Datacenter": node["Datacenter"], "TaggedAddresses": node["TaggedAddresses"],
        "NodeMeta": node["Meta"], "ServiceKind": svc["Kind"], "ServiceID": svc["ID"],
        "ServiceName": svc["Service"], "ServiceTags": list(svc["Tags"]),
        "ServiceAddress": svc["Address"],
    }
    if svc["TaggedAddresses"]:
        o["ServiceTaggedAddresses"] = svc["TaggedAddresses"]
    o.update({
        "ServiceWeights": svc["Weights"], "ServiceMeta": svc["Meta"],
        "ServicePort": svc["Port"], "ServiceEnableTagOverride": svc["EnableTagOverride"],
        "ServiceProxy": _proxy_out(svc),
        "ServiceConnect": svc["Connect"] if svc["Connect"] is not None else {},
        "CreateIndex": svc["CreateIndex"], "ModifyIndex": svc["ModifyIndex"],
    })
    return o


def out_check(c):
    return {
        "Node": c["Node"], "CheckID": c["CheckID"], "Name": c["Name"], "Status": c["Status"],
        "Notes": c["Notes"], "Output": c["Output"], "ServiceID": c["ServiceID"],
        "ServiceName": c["ServiceName"], "ServiceTags": list(c["ServiceTags"]),
        "Type": c["Type"], "Interval": c["Interval"], "Timeout": c["Timeout"],
        "ExposedPort": 0, "Definition": c["Definition"],
        "CreateIndex": c["CreateIndex"], "ModifyIndex": c["ModifyIndex"],
    }


def out_agent_service(svc, dc):
    o = {}
    if svc["Kind"]:
        o["Kind"] = svc["Kind"]
    o.update({"ID": svc["ID"], "Service": svc["Service"], "Tags": list(svc["Tags"]),
              "Meta": svc["Meta"], "Port": svc["Port"], "Address": svc["Address"]})
    if svc["TaggedAddresses"]:
        o["TaggedAddresses"] = svc["TaggedAddresses"]
    o.update({"Weights": svc["Weights"], "EnableTagOverride": svc["EnableTagOverride"]})
    if svc["Proxy"] is not None:
        o["Proxy"] = svc["Proxy"]
    if svc["Connect"] is not None:
        o["Connect"] = svc["Connect"]
    digest = hashlib.sha256(encode_json(o)).hexdigest()[:16]
    o["ContentHash"] = digest
    o["Datacenter"] = dc
    return o


def out_kv(e):
    v = e["Value"]
    return {
        "LockIndex": 0, "Key": e["Key"], "Flags": e["Flags"],
        "Value": base64.b64encode(v).decode("ascii") if v else None,
        "CreateIndex": e["CreateIndex"], "ModifyIndex": e["ModifyIndex"],
    }


def tags_match(svc_tags, wanted):
    """Consul's tag filter: every wanted tag present, compared case-insensitively."""
    if not wanted:
        return True
    have = {t.lower() for t in svc_tags}
    return all(w.lower() in have for w in wanted)


def parse_node_meta(values):
    out = []
    for v in values:
        k, _, val = v.partition(":")
        out.append((k, val))
    return out


def node_meta_match(node, filters):
    meta = node["Meta"] or {}
    return all(meta.get(k) == v for k, v in filters)


# ---------------------------------------------------- registration parsing


CHECK_KINDS = (("TTL", "ttl"), ("HTTP", "http"), ("TCP", "tcp"), ("UDP", "udp"),
               ("GRPC", "grpc"), ("H2PING", "h2ping"), ("OSService", "os_service"),
               ("DockerContainerID", "docker"), ("AliasService", "alias"),
               ("AliasNode", "alias"))


def parse_check_def(c, what):
    """A Consul CheckType/CheckDefinition: validated like CheckType.Validate()."""
    if not isinstance(c, dict):
        raise decode_failed("%s: expected an object" % what)
    ttl = as_duration(field(c, "TTL"), what + ".TTL")
    interval = as_duration(field(c, "Interval"), what + ".Interval")
    timeout = as_duration(field(c, "Timeout"), what + ".Timeout")
    args = field(c, "Args") or field(c, "ScriptArgs")
    ctype = ""
    for fname, kind in CHECK_KINDS:
        v = field(c, fname)
        if v not in (None, "", 0):
            ctype = kind
            break
    if not ctype and args:
        ctype = "script"
    if ctype == "ttl" and interval:
        raise HTTPError(400, "Invalid check: Interval and TTL cannot both be specified")
    if ctype not in ("", "ttl", "alias") and not (interval and interval > 0):
        raise HTTPError(400, "Invalid check: Interval must be > 0 for Script, HTTP, H2PING, "
                             "TCP, UDP or OSService checks")
    if ctype == "":
        raise HTTPError(400, "Invalid check: TTL must be > 0 for TTL checks")
    if ctype == "ttl" and not (ttl and ttl > 0):
        raise HTTPError(400, "Invalid check: TTL must be > 0 for TTL checks")
    status = as_str(field(c, "Status"), what + ".Status", "")
    if status and status not in VALID_STATUSES:
        raise HTTPError(400, "Status for checks must 'passing', 'warning', 'critical'")
    definition = {}
    for fname in ("HTTP", "Method", "TCP", "UDP", "GRPC", "H2PING", "OSService"):
        v = field(c, fname)
        if v not in (None, ""):
            definition[fname] = v
    if interval:
        definition["Interval"] = format_go_duration(interval)
    if timeout:
        definition["Timeout"] = format_go_duration(timeout)
    return {
        "CheckID": as_str(field(c, "CheckID") or field(c, "ID"), what + ".CheckID", ""),
        "Name": as_str(field(c, "Name"), what + ".Name", ""),
        "Notes": as_str(field(c, "Notes"), what + ".Notes", ""),
        "Status": status, "Type": ctype, "TTL": ttl,
        "Interval": format_go_duration(interval) if interval else "",
        "Timeout": format_go_duration(timeout) if timeout else "",
        "Definition": definition,
        "ServiceID": as_str(field(c, "ServiceID"), what + ".ServiceID", ""),
    }


def parse_service_body(body, what="Service"):
    name = as_str(field(body, "Name") or field(body, "Service"), what + ".Name", "")
    sid = as_str(field(body, "ID"), what + ".ID", "") or name
    kind = as_str(field(body, "Kind"), what + ".Kind", "")
    proxy = as_obj(field(body, "Proxy"), what + ".Proxy")
    connect = as_obj(field(body, "Connect"), what + ".Connect")
    if proxy is not None:
        proxy = dict(proxy)
        dest = field(proxy, "DestinationServiceName")
        if dest is not None:
            proxy.pop("destination_service_name", None)
            proxy["DestinationServiceName"] = dest
    if connect is not None:
        connect = dict(connect)
        native = field(connect, "Native")
        if native is not None:
            connect.pop("native", None)
            connect["Native"] = bool(native)
    port = as_int(field(body, "Port"), what + ".Port", 0)
    if kind == "connect-proxy":
        if not (proxy or {}).get("DestinationServiceName"):
            raise HTTPError(400, "Invalid Service: Proxy.DestinationServiceName must be set "
                                 "for Connect proxies")
        if port == 0:
            raise HTTPError(400, "Invalid Service: Port must be set for a Connect proxy")
    return {
        "ID": sid, "Name": name, "Tags": as_str_list(field(body, "Tags"), what + ".Tags"),
        "Address": as_str(field(body, "Address"), what + ".Address", ""), "Port": port,
        "Meta": as_str_map(field(body, "Meta"), what + ".Meta"),
        "Weights": parse_weights(field(body, "Weights")),
        "EnableTagOverride": as_bool(field(body, "EnableTagOverride"),
                                     what + ".EnableTagOverride", False),
        "Kind": kind, "Proxy": proxy, "Connect": connect,
        "TaggedAddresses": as_obj(field(body, "TaggedAddresses"), what + ".TaggedAddresses"),
    }


def json_body(body, allow_empty=False):
    if not body.strip():
        if allow_empty:
            return None
        raise decode_failed("EOF")
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise decode_failed(str(e))


def query_flag(query, name):
    """A boolean query parameter: present (empty value) means true."""
    if name not in query:
        return False
    v = query[name][0]
    if v == "":
        return True
    try:
        return parse_go_bool(v)
    except ValueError:
        raise HTTPError(400, "Invalid value for ?%s" % name)


def query_one(query, name, default=None):
    v = query.get(name)
    return v[0] if v else default


def query_uint(query, name, msg):
    v = query_one(query, name)
    if v is None or v == "":
        return None
    if not v.isdigit():
        raise HTTPError(400, msg)
    return int(v)


# ------------------------------------------------------------ the server


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, addr, store, cfg, family):
        self.address_family = family
        self.store = store
        self.cfg = cfg
        super().__init__(addr, Handler)


class Req:
    __slots__ = ("method", "raw_path", "path", "rest", "query", "body", "headers", "name")

    def __init__(self, method, raw_path, path, query, body, headers):
        self.method, self.raw_path, self.path = method, raw_path, path
        self.query, self.body, self.headers = query, body, headers
        self.rest = ""
        self.name = ""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-consul"
    timeout = None

    def setup(self):
        super().setup()
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    # never let http.server print a token (request lines may carry ?token=)
    def log_message(self, fmt, *args):
        try:
            sys.stderr.write("fake-consul: " + mask_tokens(fmt % args) + "\n")
        except Exception:
            pass

    def log_request(self, code="-", size="-"):
        pass

    def do_GET(self):
        self._handle("GET")

    def do_PUT(self):
        self._handle("PUT")

    def do_POST(self):
        self._handle("POST")

    def do_DELETE(self):
        self._handle("DELETE")

    def do_HEAD(self):
        self._handle("HEAD")

    def do_PATCH(self):
        self._handle("PATCH")

    def do_OPTIONS(self):
        self._handle("OPTIONS")

    # ---- plumbing

    @property
    def store(self):
        return self.server.store

    @property
    def cfg(self):
        return self.server.cfg

    def _read_body(self):
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ValueError("eof in chunked body")
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while True:
                        tr = self.rfile.readline(65537)
                        if tr in (b"\r\n", b"\n", b""):
                            break
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        cl = self.headers.get("Content-Length")
        if not cl:
            return b""
        n = int(cl)
        if n < 0:
            raise ValueError("negative Content-Length")
        return self.rfile.read(n) if n else b""

    def _write(self, resp, head=False):
        try:
            phrase = HTTPStatus(resp.status).phrase
        except ValueError:
            phrase = "Status"
        lines = ["HTTP/1.1 %d %s" % (resp.status, phrase),
                 "Date: " + self.date_time_string()]
        for k, v in resp.headers:
            lines.append("%s: %s" % (k, v))
        lines.append("Content-Length: %d" % len(resp.body))
        if self.close_connection:
            lines.append("Connection: close")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if not head:
            data += resp.body
        self.wfile.write(data)
        self.wfile.flush()

    def _client_gone(self):
        try:
            r, _, _ = select.select([self.connection], [], [], 0)
            if r:
                return self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True
        return False

    def _handle(self, method):
        t0 = time.monotonic()
        split = urlsplit(self.path)
        raw_path = split.path or "/"
        raw_query = split.query
        target = raw_path + ("?" + mask_tokens("?" + raw_query)[1:] if raw_query else "")
        status = "-"
        try:
            try:
                body = self._read_body()
            except (ValueError, OSError):
                self.close_connection = True
                resp = text_resp(400, "Invalid request body")
            else:
                query = parse_qs(raw_query, keep_blank_values=True)
                req = Req(method, raw_path, unquote(raw_path), query, body, self.headers)
                try:
                    if raw_path == "/_fake" or raw_path.startswith("/_fake/"):
                        resp = self._control(req)
                    elif raw_path.startswith("/v1/"):
                        resp = self._consul(req)
                    else:
                        resp = text_resp(404, "404 page not found")
                except HTTPError as e:
                    resp = text_resp(e.status, e.text, e.headers)
                except ClientGone:
                    resp = CLOSE
                except Exception as e:  # a bug in the fake: say so loudly
                    traceback.print_exc(file=sys.stderr)
                    resp = text_resp(500, "fake consul internal error: %s" % e)
            if resp is CLOSE:
                self.close_connection = True
                status = "- (closed)"
            else:
                status = str(resp.status)
                try:
                    self._write(resp, head=(method == "HEAD"))
                except (BrokenPipeError, ConnectionResetError, OSError):
                    self.close_connection = True
                    status += " (client gone)"
        finally:
            ms = (time.monotonic() - t0) * 1000.0
            self.log_message("%s %s %s %.0fms", method, target, status, ms)

    # ---- /_fake/ control endpoints

    def _control(self, req):
        st = self.store
        p, m = req.path, req.method
        if p == "/_fake/state":
            if m == "GET":
                with st.lock:
                    return json_resp(dump_state(st))
            if m in ("PUT", "POST"):
                data = json_body(req.body)
                if not isinstance(data, dict):
                    raise HTTPError(400, "state must be a JSON object")
                with st.lock:
                    t = st.begin()
                    apply_state(st, t, data)
                    st.commit(t)
                    return json_resp({"index": st.index})
            raise method_not_allowed(m, ["GET", "PUT"])
        if p == "/_fake/fault":
            if m == "GET":
                with st.lock:
                    return json_resp(st.fault)
            if m in ("PUT", "POST"):
                data = json_body(req.body)
                if not isinstance(data, dict):
                    raise HTTPError(400, "fault must be a JSON object")
                mode = data.get("mode", "ok")
                if mode not in FAULT_MODES:
                    raise HTTPError(400, "unknown fault mode %r (one of %s)"
                                    % (mode, ", ".join(FAULT_MODES)))
                paths = data.get("paths") or ["/v1/"]
                if not isinstance(paths, list) or not all(isinstance(x, str) for x in paths):
                    raise HTTPError(400, "paths must be a list of strings")
                delay = data.get("delay_ms", 0)
                if isinstance(delay, bool) or not isinstance(delay, (int, float)) or delay < 0:
                    raise HTTPError(400, "delay_ms must be a number >= 0")
                with st.lock:
                    st.fault = {"mode": mode, "paths": paths, "delay_ms": delay}
                    st.cond.notify_all()
                    return json_resp(st.fault)
            raise method_not_allowed(m, ["GET", "PUT"])
        if p == "/_fake/requests":
            if m == "GET":
                with st.lock:
                    return json_resp(list(st.requests))
            if m == "DELETE":
                with st.lock:
                    st.requests.clear()
                return json_resp(True)
            raise method_not_allowed(m, ["GET", "DELETE"])
        if p == "/_fake/blocked":
            if m != "GET":
                raise method_not_allowed(m, ["GET"])
            with st.lock:
                return json_resp(st.blocked)
        if p == "/_fake/reset":
            if m not in ("PUT", "POST"):
                raise method_not_allowed(m, ["PUT"])
            with st.lock:
                st.reset_locked()
                return json_resp({"index": st.index})
        if p.startswith("/_fake/check/"):
            if m not in ("PUT", "POST"):
                raise method_not_allowed(m, ["PUT"])
            cid = p[len("/_fake/check/"):]
            data = json_body(req.body)
            status = field(data, "Status")
            if status not in VALID_STATUSES:
                raise HTTPError(400, "Status must be one of passing, warning, critical")
            output = field(data, "Output")
            node = query_one(req.query, "node")
            with st.lock:
                c = None
                if node:
                    c = st.checks.get((node, cid))
                else:
                    c = st.checks.get((st.node_name, cid))
                    if c is None:
                        for (n, i), cc in st.checks.items():
                            if i == cid:
                                c = cc
                                break
                if c is None:
                    raise HTTPError(404, "no check %r" % cid)
                t = st.begin()
                st.set_check_status(t, c, status, output if isinstance(output, str) else None)
                st.commit(t)
                return json_resp({"index": st.index})
        return text_resp(404, "unknown fake control endpoint")

    # ---- /v1/ Consul API

    def _token(self, req):
        """Consul's parseToken: ?token=, then X-Consul-Token, then Bearer."""
        tok = query_one(req.query, "token", "") or ""
        if not tok:
            tok = req.headers.get("X-Consul-Token", "") or ""
        if not tok:
            auth = req.headers.get("Authorization", "") or ""
            parts = auth.split(" ")
            if len(parts) > 1 and parts[0].lower() == "bearer":
                value = " ".join(parts[1:]).strip()
                tok = value.split(" ")[0].strip()
        return tok

    def _basic(self, req):
        auth = req.headers.get("Authorization", "") or ""
        scheme, _, value = auth.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            return base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return ""

    def _consul(self, req):
        st, cfg = self.store, self.cfg
        token = self._token(req)
        basic = self._basic(req)
        masked = {k: (["***"] * len(v) if k == "token" else v) for k, v in req.query.items()}
        with st.lock:
            st.requests.append({
                "method": req.method, "path": req.raw_path, "query": masked,
                "had_token": bool(token), "had_basic_auth": basic is not None,
                "time": time.time(),
            })
            fault = dict(st.fault)
        if fault["mode"] != "ok" and any(req.raw_path.startswith(p) for p in fault["paths"]):
            r = self._apply_fault(req, fault)
            if r is not None:
                return r
        if cfg.basic_auth is not None:
            if basic is None or not hmac.compare_digest(basic.encode(), cfg.basic_auth.encode()):
                return text_resp(401, "401 Unauthorized",
                                 [("Www-Authenticate", 'Basic realm="consul"')])
        route, rest = find_route(req.path)
        if route is None:
            return text_resp(404, "404 page not found")
        name, methods, opts = route
        handler = methods.get(req.method)
        if handler is None:
            raise method_not_allowed(req.method, list(methods))
        req.rest, req.name = rest, name
        if cfg.token is not None and not opts.get("no_acl"):
            if not hmac.compare_digest(token.encode(), cfg.token.encode()):
                return text_resp(403, "ACL not found")
        if "filter" in req.query:
            raise HTTPError(400, "filter is not supported by the fake")
        if opts.get("dc"):
            dc = query_one(req.query, "dc", "")
            if dc and dc != st.dc:
                raise HTTPError(500, "No path to datacenter")
        if opts.get("need_rest") and rest == "":
            raise HTTPError(400, opts["need_rest"])
        return handler(self, req)

    def _apply_fault(self, req, fault):
        mode, st = fault["mode"], self.store
        if mode == "error500":
            return text_resp(500, "rpc error: fake fault")
        if mode == "garbage":
            with st.lock:
                idx = max(1, st.index)
            return Resp(200, b'{"truncated',
                        [("Content-Type", "application/json"), ("X-Consul-Index", str(idx)),
                         ("X-Consul-Knownleader", "true"), ("X-Consul-Lastcontact", "0")])
        if mode == "close":
            return CLOSE
        if mode == "hang":
            with st.cond:
                while not st.stopping:
                    f = st.fault
                    if f["mode"] != "hang" or not any(req.raw_path.startswith(p)
                                                      for p in f["paths"]):
                        break
                    st.cond.wait(1.0)
            return CLOSE
        if mode == "slow":
            time.sleep(float(fault.get("delay_ms") or 0) / 1000.0)
        return None

    # ---- query machinery

    def _consistency(self, req):
        stale = "stale" in req.query
        consistent = "consistent" in req.query
        if stale and consistent:
            raise HTTPError(400, "Cannot specify ?stale with ?consistent, conflicting semantics.")
        return "stale" if stale else ("consistent" if consistent else "leader")

    def _blocking_params(self, req):
        idx = query_uint(req.query, "index", "Invalid index")
        wait_s = query_one(req.query, "wait")
        wait = 0.0
        if wait_s is not None and wait_s != "":
            try:
                wait = parse_go_duration(wait_s)
            except ValueError:
                raise HTTPError(400, "Invalid wait time")
        if wait > MAX_WAIT:
            wait = MAX_WAIT
        elif wait <= 0:
            wait = DEFAULT_WAIT
        return idx or 0, wait

    def _block(self, req_index, wait, index_fn, watch_fn):
        """Called with the lock held. Returns when the result's index moved
        away from req_index, or at wait + jitter."""
        st = self.store
        # As Consul, an index is reported as at least 1 (an empty KV table answers 1), and a
        # query for that index blocks.
        def current():
            return max(1, index_fn())
        if current() != req_index:
            return
        deadline = time.monotonic() + wait + random.uniform(0, wait / JITTER_FRACTION)
        st.blocked += 1
        try:
            w0 = watch_fn()
            while not st.stopping:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                st.cond.wait(min(remaining, 1.0))
                w = watch_fn()
                if w != w0:
                    if current() != req_index:
                        return
                    w0 = w
                elif self._client_gone():
                    raise ClientGone()
        finally:
            st.blocked -= 1

    def query(self, req, index_fn, build_fn, watch_fn=None):
        """A blocking-capable read. build_fn() -> (status, obj or None)."""
        consistency = self._consistency(req)
        req_index, wait = self._blocking_params(req)
        pretty = "pretty" in req.query
        st = self.store
        with st.cond:
            if req_index > 0:
                self._block(req_index, wait, index_fn, watch_fn or index_fn)
            idx = max(1, index_fn())
            status, obj = build_fn()
            if isinstance(obj, Resp):
                resp = obj
            elif obj is None:
                resp = Resp(status, b"")
            else:
                resp = json_resp(obj, status, pretty=pretty)
        resp.headers += [
            ("X-Consul-Effective-Consistency", consistency),
            ("X-Consul-Index", str(idx)),
            ("X-Consul-Knownleader", "true"),
            ("X-Consul-Lastcontact", "0"),
            ("X-Consul-Query-Backend", "blocking-query"),
        ]
        if req.name in CACHED_ROUTES and "cached" in req.query:
            resp.headers += [("X-Cache", "MISS"), ("Age", "0")]
        return resp

    def ok_empty(self):
        return Resp(200, b"")


def method_not_allowed(method, allowed):
    return HTTPError(405, "method %s not allowed" % method, [("Allow", ", ".join(allowed))])


# ------------------------------------------------------ endpoint handlers
# Each takes (handler, req). Reads go through handler.query().


def h_catalog_services(h, req):
    st = h.store
    meta = parse_node_meta(req.query.get("node-meta", []))

    def build():
        out = {}
        for name in sorted(st.by_name):
            tags = set()
            seen = False
            for svc in st.by_name[name].values():
                if meta and not node_meta_match(st.nodes[svc["Node"]], meta):
                    continue
                seen = True
                tags.update(svc["Tags"])
            if seen:
                out[name] = sorted(tags)
        return 200, out
    return h.query(req, lambda: st.services_index, build)


def _instances(st, name, tags, meta):
    out = []
    for key in sorted(st.by_name.get(name, {})):
        svc = st.services[key]
        if tags and not tags_match(svc["Tags"], tags):
            continue
        if meta and not node_meta_match(st.nodes[svc["Node"]], meta):
            continue
        out.append(svc)
    return out


def h_catalog_service(h, req):
    st, name = h.store, req.rest
    tags = req.query.get("tag", [])
    meta = parse_node_meta(req.query.get("node-meta", []))

    def build():
        return 200, [out_catalog_service(s, st.nodes[s["Node"]])
                     for s in _instances(st, name, tags, meta)]
    return h.query(req, lambda: st.service_index(name), build)


def h_catalog_nodes(h, req):
    st = h.store
    meta = parse_node_meta(req.query.get("node-meta", []))

    def build():
        return 200, [out_node(st.nodes[n]) for n in sorted(st.nodes)
                     if not meta or node_meta_match(st.nodes[n], meta)]
    return h.query(req, lambda: st.nodes_index, build)


def h_catalog_node(h, req):
    st, node = h.store, req.rest

    def build():
        n = st.nodes.get(node)
        if n is None:  # Consul answers 200 "null" for an unknown node
            return 200, Resp(200, b"null", [("Content-Type", "application/json")])
        services = {}
        for sid in sorted(st.node_services.get(node, ())):
            s = st.services[(node, sid)]
            o = out_health_service(s)
            services[sid] = o
        return 200, {"Node": out_node(n), "Services": services}
    return h.query(req, lambda: max(st.nodes_index, st.services_index), build)


def h_catalog_datacenters(h, req):
    return json_resp([h.store.dc])


def h_catalog_register(h, req):
    st = h.store
    body = json_body(req.body)
    if not isinstance(body, dict):
        raise decode_failed("expected an object")
    node = as_str(field(body, "Node"), "Node", "")
    address = as_str(field(body, "Address"), "Address", "")
    dc = as_str(field(body, "Datacenter"), "Datacenter", "")
    skip = as_bool(field(body, "SkipNodeUpdate"), "SkipNodeUpdate", False)
    if dc and dc != st.dc:
        raise HTTPError(500, "No path to datacenter")
    if not node:
        raise HTTPError(500, "Must provide node")
    if not address and not skip:
        raise HTTPError(500, "Must provide address if SkipNodeUpdate is not set")
    node_id = as_str(field(body, "ID"), "ID", "")
    meta = as_str_map(field(body, "NodeMeta"), "NodeMeta")
    tagged = as_obj(field(body, "TaggedAddresses"), "TaggedAddresses")
    svc_body = as_obj(field(body, "Service"), "Service")
    svc_def = None
    if svc_body is not None:
        svc_def = parse_service_body(svc_body)
        if not svc_def["Name"]:
            raise HTTPError(500, "Must provide service name (Service.Service) or ID")
    raw_checks = []
    if field(body, "Check") is not None:
        raw_checks.append(field(body, "Check"))
    cs = field(body, "Checks")
    if cs is not None:
        if not isinstance(cs, list):
            raise decode_failed("Checks: expected a list")
        raw_checks.extend(cs)
    checks = []
    for i, c in enumerate(raw_checks):
        if not isinstance(c, dict):
            raise decode_failed("Checks[%d]: expected an object" % i)
        cnode = as_str(field(c, "Node"), "Check.Node", "") or node
        if cnode != node:
            raise HTTPError(500, "Node '%s' for check '%s' doesn't match register request "
                                 "node '%s'" % (cnode, field(c, "CheckID") or "", node))
        name = as_str(field(c, "Name"), "Check.Name", "")
        cid = as_str(field(c, "CheckID"), "Check.CheckID", "") or name
        if not cid:
            raise HTTPError(500, "Missing check ID")
        status = as_str(field(c, "Status"), "Check.Status", "") or "critical"
        if status not in VALID_STATUSES:
            raise HTTPError(500, "Invalid check status: %r" % status)
        checks.append({
            "CheckID": cid, "Name": name, "Status": status,
            "Notes": as_str(field(c, "Notes"), "Check.Notes", ""),
            "Output": as_str(field(c, "Output"), "Check.Output", ""),
            "ServiceID": as_str(field(c, "ServiceID"), "Check.ServiceID", ""),
            "Type": as_str(field(c, "Type"), "Check.Type", ""),
            "Definition": as_obj(field(c, "Definition"), "Check.Definition") or {},
        })
    with st.lock:
        if skip and node not in st.nodes:
            raise HTTPError(500, "Missing node registration")
        for c in checks:
            sid = c["ServiceID"]
            if sid and (node, sid) not in st.services and \
                    not (svc_def is not None and svc_def["ID"] == sid):
                raise HTTPError(500, "Missing service for check")
        t = st.begin()
        if node not in st.nodes or not skip:
            old = st.nodes.get(node)
            if old is not None and node == st.node_name:
                address = address or old["Address"]
            st.put_node(t, node, address, meta, tagged, node_id=node_id or None)
        if svc_def is not None:
            local = False
            key = (node, svc_def["ID"])
            if key in st.services and st.services[key].get("_local"):
                local = True
            st.put_service(t, new_service(
                node, svc_def["ID"], svc_def["Name"], svc_def["Tags"], svc_def["Address"],
                svc_def["Port"], svc_def["Meta"], svc_def["Weights"],
                svc_def["EnableTagOverride"], svc_def["Kind"], svc_def["Proxy"],
                svc_def["Connect"], svc_def["TaggedAddresses"], local=local))
        for c in checks:
            svc = None
            if c["ServiceID"]:
                svc = st.services[(node, c["ServiceID"])]
            old = st.checks.get((node, c["CheckID"]))
            chk = new_check(node, c["CheckID"], c["Name"], c["Status"], c["Notes"],
                            c["Output"], svc, c["Type"], definition=c["Definition"],
                            local=bool(old and old.get("_local")))
            if old is not None:
                chk["Interval"], chk["Timeout"] = old["Interval"], old["Timeout"]
                chk["_ttl"] = old["_ttl"]
            st.put_check(t, chk)
        st.commit(t)
    return json_resp(True)


def h_catalog_deregister(h, req):
    st = h.store
    body = json_body(req.body)
    if not isinstance(body, dict):
        raise decode_failed("expected an object")
    node = as_str(field(body, "Node"), "Node", "")
    dc = as_str(field(body, "Datacenter"), "Datacenter", "")
    if dc and dc != st.dc:
        raise HTTPError(500, "No path to datacenter")
    if not node:
        raise HTTPError(500, "Must provide node")
    sid = as_str(field(body, "ServiceID"), "ServiceID", "")
    cid = as_str(field(body, "CheckID"), "CheckID", "")
    with st.lock:
        t = st.begin()
        if sid:
            st.del_service(t, node, sid)
        elif cid:
            st.del_check(t, node, cid)
        elif node == st.node_name:
            # removing the agent's own node: keep the node itself, like an
            # agent that re-registers at once (drop everything on it)
            for s in list(st.node_services.get(node, ())):
                if not st.services[(node, s)].get("_internal"):
                    st.del_service(t, node, s)
        else:
            st.del_node(t, node)
        st.commit(t)
    return json_resp(True)


def _passing_only(entries_checks):
    return all(c["Status"] == "passing" for c in entries_checks)


def _health_entries(st, svcs, passing):
    out = []
    for svc in svcs:
        checks = st.instance_checks(svc)
        if passing and not _passing_only(checks):
            continue
        out.append({"Node": out_node(st.nodes[svc["Node"]]),
                    "Service": out_health_service(svc),
                    "Checks": [out_check(c) for c in checks]})
    return out


def h_health_service(h, req):
    st, name = h.store, req.rest
    tags = req.query.get("tag", [])
    meta = parse_node_meta(req.query.get("node-meta", []))
    passing = query_flag(req.query, "passing")

    def build():
        return 200, _health_entries(st, _instances(st, name, tags, meta), passing)
    return h.query(req, lambda: st.service_index(name), build)


def h_health_connect(h, req):
    st, name = h.store, req.rest
    tags = req.query.get("tag", [])
    passing = query_flag(req.query, "passing")

    def build():
        svcs = []
        for key in sorted(st.proxies_by_dest.get(name, {})):
            svcs.append(st.services[key])
        for key in sorted(st.by_name.get(name, {})):
            s = st.services[key]
            if (s.get("Connect") or {}).get("Native"):
                svcs.append(s)
        svcs = [s for s in svcs if tags_match(s["Tags"], tags)]
        return 200, _health_entries(st, svcs, passing)
    return h.query(req, lambda: st.connect_index(name), build)


def h_health_state(h, req):
    st, state = h.store, req.rest

    def build():
        out = [c for c in st.checks.values() if state == "any" or c["Status"] == state]
        out.sort(key=lambda c: (c["Node"], c["CheckID"]))
        return 200, [out_check(c) for c in out]
    return h.query(req, lambda: st.checks_index, build)


def h_health_checks(h, req):
    st, name = h.store, req.rest

    def build():
        out = []
        for key in sorted(st.by_name.get(name, {})):
            out.extend(sorted(st.svc_checks.get(key, {}).values(), key=lambda c: c["CheckID"]))
        return 200, [out_check(c) for c in out]
    return h.query(req, lambda: st.checks_index, build)


def h_health_node(h, req):
    st, node = h.store, req.rest

    def build():
        return 200, [out_check(c) for c in st.all_node_checks(node)]
    return h.query(req, lambda: st.checks_index, build)


def _member(st):
    return {
        "Name": st.node_name, "Addr": AGENT_ADDRESS, "Port": 8301,
        "Tags": {"build": CONSUL_VERSION + ":fake", "dc": st.dc, "id": st.node_id,
                 "port": "8300", "role": "consul", "vsn": "2", "vsn_max": "3",
                 "vsn_min": "2", "raft_vsn": "3"},
        "Status": 1, "ProtocolMin": 1, "ProtocolMax": 5, "ProtocolCur": 2,
        "DelegateMin": 2, "DelegateMax": 5, "DelegateCur": 4,
    }


def h_agent_self(h, req):
    st = h.store
    with st.lock:
        node = st.nodes.get(st.node_name)
        meta = dict(node["Meta"]) if node else {}
    return json_resp({
        "Config": {"Datacenter": st.dc, "NodeName": st.node_name, "NodeID": st.node_id,
                   "Revision": "fake", "Server": True, "Version": CONSUL_VERSION},
        "Member": _member(st),
        "Meta": meta,
    }, pretty="pretty" in req.query)


def h_agent_members(h, req):
    return json_resp([_member(h.store)], pretty="pretty" in req.query)


def h_agent_services(h, req):
    st = h.store
    with st.lock:
        out = {sid: out_agent_service(s, st.dc)
               for sid, s in sorted(st.local_services().items())}
    return json_resp(out, pretty="pretty" in req.query)


def h_agent_service(h, req):
    st = h.store
    with st.lock:
        s = st.local_services().get(req.rest)
        if s is None:
            raise HTTPError(404, "unknown service ID: %s" % req.rest)
        out = out_agent_service(s, st.dc)
    return json_resp(out, pretty="pretty" in req.query)


def h_agent_checks(h, req):
    st = h.store
    with st.lock:
        out = {}
        for c in st.all_node_checks(st.node_name):
            if c.get("_local"):
                out[c["CheckID"]] = out_check(c)
    return json_resp(out, pretty="pretty" in req.query)


def _make_agent_check(st, d, cid, name, svc, preserved):
    status = d["Status"] or "critical"
    output = ""
    if preserved is not None:
        status, output = preserved["Status"], preserved["Output"]
    c = new_check(st.node_name, cid, name, status, d["Notes"], output, svc, d["Type"],
                  d["Interval"], d["Timeout"], d["Definition"], ttl=d["TTL"], local=True)
    return c


def h_agent_service_register(h, req):
    st = h.store
    body = json_body(req.body)
    if not isinstance(body, dict):
        raise decode_failed("expected an object")
    sd = parse_service_body(body)
    if not sd["Name"]:
        raise HTTPError(400, "Missing service name")
    raw_checks = []
    if field(body, "Check") is not None:
        raw_checks.append(field(body, "Check"))
    cs = field(body, "Checks")
    if cs is not None:
        if not isinstance(cs, list):
            raise decode_failed("Checks: expected a list")
        raw_checks.extend(cs)
    defs = [parse_check_def(c, "Check") for c in raw_checks]
    replace = query_flag(req.query, "replace-existing-checks")
    with st.lock:
        t = st.begin()
        svc = new_service(st.node_name, sd["ID"], sd["Name"], sd["Tags"], sd["Address"],
                          sd["Port"], sd["Meta"], sd["Weights"], sd["EnableTagOverride"],
                          sd["Kind"], sd["Proxy"], sd["Connect"], sd["TaggedAddresses"])
        svc = st.put_service(t, svc)
        key = (st.node_name, sd["ID"])
        wanted = set()
        for i, d in enumerate(defs):
            cid = d["CheckID"] or ("service:" + sd["ID"] + (":%d" % (i + 1) if len(defs) > 1
                                                             else ""))
            name = d["Name"] or "Service '%s' check" % sd["Name"]
            wanted.add(cid)
            old = st.checks.get((st.node_name, cid))
            c = _make_agent_check(st, d, cid, name, svc, old)
            st.put_check(t, c)
            st.arm_ttl(c)
        if replace:
            for cid in list(st.svc_checks.get(key, {})):
                if cid not in wanted and not cid.startswith(SERVICE_MAINT_PREFIX):
                    st.del_check(t, st.node_name, cid)
        st.commit(t)
    return h.ok_empty()


def h_agent_service_deregister(h, req):
    st, sid = h.store, req.rest
    with st.lock:
        if sid not in st.local_services():
            raise HTTPError(404, "Unknown service ID %r" % sid)
        t = st.begin()
        st.del_service(t, st.node_name, sid)
        st.commit(t)
    return h.ok_empty()


def _enable_param(req):
    v = query_one(req.query, "enable")
    if v is None or v == "":
        raise HTTPError(400, "Missing value for enable")
    try:
        return parse_go_bool(v)
    except ValueError:
        raise HTTPError(400, "Invalid value for enable: %r" % v)


def h_agent_service_maintenance(h, req):
    st, sid = h.store, req.rest
    enable = _enable_param(req)
    reason = query_one(req.query, "reason", "") or DEFAULT_SERVICE_MAINT_REASON
    with st.lock:
        svc = st.local_services().get(sid)
        if svc is None:
            raise HTTPError(404, "Unknown service ID %r" % sid)
        cid = SERVICE_MAINT_PREFIX + sid
        t = st.begin()
        if enable:
            if (st.node_name, cid) not in st.checks:
                st.put_check(t, new_check(st.node_name, cid, "Service Maintenance Mode",
                                          "critical", notes=reason, service=svc,
                                          ctype="maintenance", local=True))
        else:
            st.del_check(t, st.node_name, cid)
        st.commit(t)
    return h.ok_empty()


def h_agent_maintenance(h, req):
    st = h.store
    enable = _enable_param(req)
    reason = query_one(req.query, "reason", "") or DEFAULT_NODE_MAINT_REASON
    with st.lock:
        t = st.begin()
        if enable:
            if (st.node_name, NODE_MAINT_ID) not in st.checks:
                st.put_check(t, new_check(st.node_name, NODE_MAINT_ID, "Node Maintenance Mode",
                                          "critical", notes=reason, ctype="maintenance",
                                          local=True))
        else:
            st.del_check(t, st.node_name, NODE_MAINT_ID)
        st.commit(t)
    return h.ok_empty()


def h_agent_check_register(h, req):
    st = h.store
    body = json_body(req.body)
    d = parse_check_def(body, "Check")
    if not d["Name"]:
        raise HTTPError(400, "Missing check name")
    cid = d["CheckID"] or d["Name"]
    with st.lock:
        svc = None
        if d["ServiceID"]:
            svc = st.local_services().get(d["ServiceID"])
            if svc is None:
                raise HTTPError(400, "ServiceID %r does not exist" % d["ServiceID"])
        t = st.begin()
        c = _make_agent_check(st, d, cid, d["Name"], svc, None)
        st.put_check(t, c)
        st.arm_ttl(c)
        st.commit(t)
    return h.ok_empty()


def h_agent_check_deregister(h, req):
    st, cid = h.store, req.rest
    with st.lock:
        if st.local_check(cid) is None:
            raise HTTPError(404, "Unknown check ID %r" % cid)
        t = st.begin()
        st.del_check(t, st.node_name, cid)
        st.commit(t)
    return h.ok_empty()


def _ttl_update(h, cid, status, output):
    st = h.store
    with st.lock:
        c = st.local_check(cid)
        if c is None:
            raise HTTPError(404, "Unknown check ID %r. Ensure that the check ID is passed, "
                                 "not the check name." % cid)
        if not c.get("_ttl"):
            raise HTTPError(500, "CheckID %r does not have associated TTL" % cid)
        if len(output) > 4096:
            output = output[:4096] + "\n...\nCaptured 4096 of %d bytes" % len(output)
        t = st.begin()
        c = st.set_check_status(t, c, status, output)
        st.arm_ttl(c)
        st.commit(t)
    return h.ok_empty()


def _status_setter(status):
    def handler(h, req):
        return _ttl_update(h, req.rest, status, query_one(req.query, "note", "") or "")
    return handler


def h_agent_check_update(h, req):
    body = json_body(req.body)
    if not isinstance(body, dict):
        raise decode_failed("expected an object")
    status = as_str(field(body, "Status"), "Status", "")
    if status not in VALID_STATUSES:
        raise HTTPError(400, "Invalid check status: %r" % status)
    output = as_str(field(body, "Output"), "Output", "")
    return _ttl_update(h, req.rest, status, output)


def h_status_leader(h, req):
    return json_resp(AGENT_ADDRESS + ":8300")


def h_status_peers(h, req):
    return json_resp([AGENT_ADDRESS + ":8300"])


def h_kv_get(h, req):
    st, key = h.store, req.rest
    recurse = "recurse" in req.query
    keys = "keys" in req.query
    raw = "raw" in req.query
    sep = query_one(req.query, "separator", "")

    if keys:
        def build_keys():
            out = []
            seen = set()
            for k in sorted(st.kv):
                if not k.startswith(key):
                    continue
                if sep:
                    i = k.find(sep, len(key))
                    if i >= 0:
                        k = k[:i + len(sep)]
                if k not in seen:
                    seen.add(k)
                    out.append(k)
            if not out:
                return 404, None
            return 200, out
        return h.query(req, lambda: st.kv_prefix_index(key), build_keys)

    if recurse:
        def build_list():
            out = [out_kv(st.kv[k]) for k in sorted(st.kv) if k.startswith(key)]
            if not out:
                return 404, None
            return 200, out
        return h.query(req, lambda: st.kv_prefix_index(key), build_list)

    def build_one():
        e = st.kv.get(key)
        if e is None:
            return 404, None
        if raw:
            return 200, Resp(200, bytes(e["Value"]),
                             [("Content-Type", "text/plain; charset=utf-8"),
                              ("X-Content-Type-Options", "nosniff")])
        return 200, [out_kv(e)]
    return h.query(req, lambda: st.kv_index, build_one, watch_fn=lambda: st.kv_key_version(key))


def _kv_put_entry(st, t, key, value, flags):
    old = st.kv.get(key)
    if old is not None and old["Value"] == value and old["Flags"] == flags:
        return
    st.kv[key] = {"Key": key, "Value": value, "Flags": flags,
                  "CreateIndex": old["CreateIndex"] if old else t.idx, "ModifyIndex": t.idx}
    st.kv_tombstones.pop(key, None)
    t.changed = t.kv = True


def _kv_delete_entry(st, t, key):
    if st.kv.pop(key, None) is None:
        return
    st.kv_tombstones[key] = t.idx
    t.changed = t.kv = True


def h_kv_put(h, req):
    st, key = h.store, req.rest
    if key == "":
        raise HTTPError(400, "Missing key name")
    if "acquire" in req.query or "release" in req.query:
        raise HTTPError(500, "sessions are not supported by the fake")
    flags = query_uint(req.query, "flags", "Invalid flags") or 0
    cas = query_uint(req.query, "cas", "Invalid cas index")
    if len(req.body) > KV_MAX_VALUE:
        raise HTTPError(413, "Request body(%d bytes) too large, max size: %d bytes."
                        % (len(req.body), KV_MAX_VALUE))
    with st.lock:
        old = st.kv.get(key)
        if cas is not None:
            if cas == 0 and old is not None:
                return json_resp(False)
            if cas > 0 and (old is None or old["ModifyIndex"] != cas):
                return json_resp(False)
        t = st.begin()
        _kv_put_entry(st, t, key, bytes(req.body), flags)
        st.commit(t)
    return json_resp(True)


def h_kv_delete(h, req):
    st, key = h.store, req.rest
    recurse = "recurse" in req.query
    cas = query_uint(req.query, "cas", "Invalid cas index")
    if key == "" and not recurse:
        raise HTTPError(400, "Missing key name")
    with st.lock:
        t = st.begin()
        if recurse:
            for k in [k for k in st.kv if k.startswith(key)]:
                _kv_delete_entry(st, t, k)
        else:
            old = st.kv.get(key)
            if cas is not None and old is not None and old["ModifyIndex"] != cas:
                return json_resp(False)
            _kv_delete_entry(st, t, key)
        st.commit(t)
    return json_resp(True)


# (name, exact path or prefix ending in "/", {method: handler}, options)
ROUTES = [
    ("catalog_services", "/v1/catalog/services", {"GET": h_catalog_services}, {"dc": True}),
    ("catalog_service", "/v1/catalog/service/", {"GET": h_catalog_service},
     {"dc": True, "need_rest": "Missing service name"}),
    ("catalog_nodes", "/v1/catalog/nodes", {"GET": h_catalog_nodes}, {"dc": True}),
    ("catalog_node", "/v1/catalog/node/", {"GET": h_catalog_node},
     {"dc": True, "need_rest": "Missing node name"}),
    ("catalog_datacenters", "/v1/catalog/datacenters", {"GET": h_catalog_datacenters}, {}),
    ("catalog_register", "/v1/catalog/register", {"PUT": h_catalog_register}, {"dc": True}),
    ("catalog_deregister", "/v1/catalog/deregister", {"PUT": h_catalog_deregister},
     {"dc": True}),
    ("health_service", "/v1/health/service/", {"GET": h_health_service},
     {"dc": True, "need_rest": "Missing service name"}),
    ("health_connect", "/v1/health/connect/", {"GET": h_health_connect},
     {"dc": True, "need_rest": "Missing service name"}),
    ("health_state", "/v1/health/state/", {"GET": h_health_state},
     {"dc": True, "need_rest": "Missing check state"}),
    ("health_checks", "/v1/health/checks/", {"GET": h_health_checks},
     {"dc": True, "need_rest": "Missing service name"}),
    ("health_node", "/v1/health/node/", {"GET": h_health_node},
     {"dc": True, "need_rest": "Missing node name"}),
    ("agent_self", "/v1/agent/self", {"GET": h_agent_self}, {}),
    ("agent_members", "/v1/agent/members", {"GET": h_agent_members}, {}),
    ("agent_services", "/v1/agent/services", {"GET": h_agent_services}, {}),
    ("agent_checks", "/v1/agent/checks", {"GET": h_agent_checks}, {}),
    ("agent_service_register", "/v1/agent/service/register",
     {"PUT": h_agent_service_register}, {}),
    ("agent_service_deregister", "/v1/agent/service/deregister/",
     {"PUT": h_agent_service_deregister}, {"need_rest": "Missing service ID"}),
    ("agent_service_maintenance", "/v1/agent/service/maintenance/",
     {"PUT": h_agent_service_maintenance}, {"need_rest": "Missing service ID"}),
    ("agent_service", "/v1/agent/service/", {"GET": h_agent_service},
     {"need_rest": "Missing service ID"}),
    ("agent_maintenance", "/v1/agent/maintenance", {"PUT": h_agent_maintenance}, {}),
    ("agent_check_register", "/v1/agent/check/register", {"PUT": h_agent_check_register}, {}),
    ("agent_check_deregister", "/v1/agent/check/deregister/",
     {"PUT": h_agent_check_deregister}, {"need_rest": "Missing check ID"}),
    ("agent_check_pass", "/v1/agent/check/pass/", {"PUT": _status_setter("passing")},
     {"need_rest": "Missing check ID"}),
    ("agent_check_warn", "/v1/agent/check/warn/", {"PUT": _status_setter("warning")},
     {"need_rest": "Missing check ID"}),
    ("agent_check_fail", "/v1/agent/check/fail/", {"PUT": _status_setter("critical")},
     {"need_rest": "Missing check ID"}),
    ("agent_check_update", "/v1/agent/check/update/", {"PUT": h_agent_check_update},
     {"need_rest": "Missing check ID"}),
    ("status_leader", "/v1/status/leader", {"GET": h_status_leader},
     {"dc": True, "no_acl": True}),
    ("status_peers", "/v1/status/peers", {"GET": h_status_peers},
     {"dc": True, "no_acl": True}),
    ("kv", "/v1/kv/", {"GET": h_kv_get, "PUT": h_kv_put, "DELETE": h_kv_delete},
     {"dc": True}),
]
_EXACT = {p: (n, m, o) for n, p, m, o in ROUTES if not p.endswith("/")}
_PREFIX = [(p, (n, m, o)) for n, p, m, o in ROUTES if p.endswith("/")]


def find_route(path):
    r = _EXACT.get(path)
    if r is not None:
        return r, ""
    for prefix, r in _PREFIX:
        if path.startswith(prefix):
            return r, path[len(prefix):]
        if path == prefix[:-1] and r[2].get("need_rest"):
            return r, ""
    return None, ""


# ------------------------------------------------------- /_fake/state


def _state_err(msg):
    return HTTPError(400, "bad state: " + msg)


def _state_checks(raw, where):
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise _state_err(where + ".Checks must be a list")
    out = []
    for c in raw:
        if not isinstance(c, dict):
            raise _state_err(where + ".Checks entries must be objects")
        status = c.get("Status", "critical")
        if status not in VALID_STATUSES:
            raise _state_err("%s: Status must be passing, warning or critical" % where)
        ttl = None
        if c.get("TTL"):
            try:
                ttl = parse_go_duration(c["TTL"])
            except (ValueError, TypeError):
                raise _state_err("%s: bad TTL %r" % (where, c["TTL"]))
        out.append({"CheckID": c.get("CheckID") or "", "Name": c.get("Name") or "",
                    "Status": status, "Output": c.get("Output") or "",
                    "Notes": c.get("Notes") or "", "TTL": ttl,
                    "Type": c.get("Type") or ("ttl" if ttl else "")})
    return out


def _kv_value_in(v, key):
    if isinstance(v, str):
        return v.encode("utf-8")
    if isinstance(v, dict) and isinstance(v.get("base64"), str):
        try:
            return base64.b64decode(v["base64"], validate=True)
        except (binascii.Error, ValueError):
            raise _state_err("kv %r: bad base64" % key)
    if v is None:
        return b""
    raise _state_err("kv %r: value must be a string or {\"base64\": ...}" % key)


def _kv_value_out(b):
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(b).decode("ascii")}


def apply_state(st, t, data):
    services_in = data.get("services") or []
    nodes_in = data.get("nodes") or []
    kv_in = data.get("kv") or {}
    if not isinstance(services_in, list) or not isinstance(nodes_in, list) \
            or not isinstance(kv_in, dict):
        raise _state_err("services and nodes must be lists, kv an object")
    agent = st.node_name
    dn = {agent: {"Address": AGENT_ADDRESS, "Meta": st.agent_node_meta(),
                  "TaggedAddresses": st.agent_tagged_addresses(), "Checks": None,
                  "ID": st.node_id}}
    for n in nodes_in:
        if not isinstance(n, dict) or not isinstance(n.get("Node"), str) or not n["Node"]:
            raise _state_err("each node needs a Node name")
        name = n["Node"]
        spec = dn.get(name) or {"Address": AGENT_ADDRESS, "Meta": {}, "TaggedAddresses": None,
                                "Checks": None,
                                "ID": str(uuid.uuid5(uuid.NAMESPACE_DNS, name + ".fake-consul"))}
        if name != agent and n.get("Address"):
            spec["Address"] = n["Address"]
            spec["_explicit"] = True
        if n.get("Meta") is not None:
            spec["Meta"] = as_str_map(n["Meta"], "nodes.Meta")
        if name != agent and n.get("TaggedAddresses") is not None:
            spec["TaggedAddresses"] = n["TaggedAddresses"]
        spec["Checks"] = _state_checks(n.get("Checks"), "node " + name)
        dn[name] = spec
    desired = {}
    for s in services_in:
        if not isinstance(s, dict):
            raise _state_err("services entries must be objects")
        name = s.get("Service") or s.get("Name")
        if not isinstance(name, str) or not name:
            raise _state_err("each service needs a Service name")
        sid = s.get("ID") or name
        node = s.get("Node") or agent
        addr = s.get("NodeAddress")
        if node not in dn:
            dn[node] = {"Address": AGENT_ADDRESS, "Meta": {}, "TaggedAddresses": None,
                        "Checks": None,
                        "ID": str(uuid.uuid5(uuid.NAMESPACE_DNS, node + ".fake-consul"))}
        if addr and node != agent:
            spec = dn[node]
            if spec.get("_explicit") and spec["Address"] != addr:
                raise _state_err("node %r given two different addresses" % node)
            spec["Address"] = addr
            spec["_explicit"] = True
        try:
            svc = new_service(node, sid, name, as_str_list(s.get("Tags"), "Tags"),
                              as_str(s.get("Address"), "Address", ""),
                              as_int(s.get("Port"), "Port", 0),
                              as_str_map(s.get("Meta"), "Meta"),
                              parse_weights(s.get("Weights")),
                              as_bool(s.get("EnableTagOverride"), "EnableTagOverride", False),
                              as_str(s.get("Kind"), "Kind", ""), as_obj(s.get("Proxy"), "Proxy"),
                              as_obj(s.get("Connect"), "Connect"),
                              as_obj(s.get("TaggedAddresses"), "TaggedAddresses"),
                              local=(node == agent))
        except HTTPError as e:
            raise _state_err("service %r: %s" % (sid, e.text))
        if (node, sid) in desired:
            raise _state_err("service %r listed twice on node %r" % (sid, node))
        desired[(node, sid)] = (svc, _state_checks(s.get("Checks"), "service " + sid))

    # removals first
    for key in list(st.services):
        if key not in desired and not st.services[key].get("_internal"):
            st.del_service(t, *key)
    for name in list(st.nodes):
        if name not in dn:
            st.del_node(t, name)
    # nodes and node-level checks
    for name, spec in dn.items():
        st.put_node(t, name, spec["Address"], spec["Meta"], spec["TaggedAddresses"],
                    node_id=spec["ID"], serf=False)
        want = {}
        for c in spec["Checks"] or []:
            cid = c["CheckID"] or c["Name"]
            if not cid:
                raise _state_err("node %r: a check needs a CheckID" % name)
            want[cid] = c
        if SERF_CHECK_ID not in want:
            want[SERF_CHECK_ID] = {"CheckID": SERF_CHECK_ID, "Name": "Serf Health Status",
                                   "Status": "passing", "Output": "Agent alive and reachable",
                                   "Notes": "", "TTL": None, "Type": ""}
        for cid in list(st.node_checks.get(name, {})):
            if cid not in want:
                st.del_check(t, name, cid)
        for cid, c in want.items():
            cname = c["Name"] or ("Serf Health Status" if cid == SERF_CHECK_ID else cid)
            _state_put_check(st, t, name, cid, cname, c, None)
    # services and their checks
    for (node, sid), (svc, checks) in desired.items():
        svc = st.put_service(t, svc)
        want = set()
        for i, c in enumerate(checks):
            cid = c["CheckID"] or ("service:" + sid + (":%d" % (i + 1) if len(checks) > 1 else ""))
            cname = c["Name"] or "Service '%s' check" % svc["Service"]
            want.add(cid)
            _state_put_check(st, t, node, cid, cname, c, svc)
        for cid in list(st.svc_checks.get((node, sid), {})):
            if cid not in want:
                st.del_check(t, node, cid)
    # KV
    new_kv = {}
    for k, v in kv_in.items():
        if not k:
            raise _state_err("empty kv key")
        new_kv[k] = _kv_value_in(v, k)
    for k in list(st.kv):
        if k not in new_kv:
            _kv_delete_entry(st, t, k)
    for k, v in new_kv.items():
        _kv_put_entry(st, t, k, v, st.kv[k]["Flags"] if k in st.kv else 0)


def _state_put_check(st, t, node, cid, name, c, svc):
    chk = new_check(node, cid, name, c["Status"], c["Notes"], c["Output"], svc, c["Type"],
                    ttl=c["TTL"], local=(node == st.node_name and cid != SERF_CHECK_ID))
    before = st.checks.get((node, cid))
    after = st.put_check(t, chk)
    if after is not before:
        st.ttl_deadlines.pop((node, cid), None)
        st.arm_ttl(after)


def _state_check_out(c):
    o = {"CheckID": c["CheckID"], "Name": c["Name"], "Status": c["Status"],
         "Output": c["Output"], "Notes": c["Notes"]}
    if c.get("_ttl"):
        o["TTL"] = format_go_duration(c["_ttl"])
    if c["Type"] and c["Type"] != "ttl":
        o["Type"] = c["Type"]
    return o


def dump_state(st):
    services = []
    for key in sorted(st.services):
        s = st.services[key]
        if s.get("_internal"):
            continue
        o = {"ID": s["ID"], "Service": s["Service"], "Tags": list(s["Tags"]),
             "Address": s["Address"], "Port": s["Port"], "Meta": dict(s["Meta"]),
             "Node": s["Node"], "NodeAddress": st.nodes[s["Node"]]["Address"],
             "Checks": [_state_check_out(c) for c in
                        sorted(st.svc_checks.get(key, {}).values(), key=lambda c: c["CheckID"])]}
        if s["Kind"]:
            o["Kind"] = s["Kind"]
        if s["Proxy"] is not None:
            o["Proxy"] = s["Proxy"]
        if s["Connect"] is not None:
            o["Connect"] = s["Connect"]
        if s["Weights"] != {"Passing": 1, "Warning": 1}:
            o["Weights"] = s["Weights"]
        if s["EnableTagOverride"]:
            o["EnableTagOverride"] = True
        if s["TaggedAddresses"]:
            o["TaggedAddresses"] = s["TaggedAddresses"]
        services.append(o)
    nodes = []
    for name in sorted(st.nodes):
        n = st.nodes[name]
        nodes.append({"Node": name, "Address": n["Address"], "Meta": dict(n["Meta"]),
                      "TaggedAddresses": n["TaggedAddresses"],
                      "Checks": [_state_check_out(c) for c in st.node_level_checks(name)]})
    kv = {k: _kv_value_out(st.kv[k]["Value"]) for k in sorted(st.kv)}
    return {"index": st.index, "services": services, "nodes": nodes, "kv": kv}


# ------------------------------------------------------------------ main


def ttl_loop(st):
    while not st.stopping:
        time.sleep(0.1)
        with st.lock:
            if st.ttl_deadlines:
                st.expire_ttls()


def parse_listen(s):
    host, sep, port = s.rpartition(":")
    if not sep:
        raise argparse.ArgumentTypeError("--listen must be HOST:PORT")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        port = int(port)
    except ValueError:
        raise argparse.ArgumentTypeError("bad port in --listen")
    return host or "127.0.0.1", port


def main(argv=None):
    ap = argparse.ArgumentParser(description="In-memory fake of the Consul HTTP API "
                                             "(for tests and the demo).")
    ap.add_argument("--listen", default="127.0.0.1:0", type=parse_listen,
                    help="HOST:PORT to bind (port 0 = any free port)")
    ap.add_argument("--datacenter", default="dc1")
    ap.add_argument("--node-name", default="fake-node")
    ap.add_argument("--token", default=None,
                    help="require this ACL token on /v1/ requests")
    ap.add_argument("--basic-auth", default=None, metavar="USER:PASS",
                    help="require HTTP Basic credentials (like a proxy in front of Consul)")
    ap.add_argument("--state", default=None, metavar="FILE.json",
                    help="load an initial catalog/KV in the /_fake/state shape "
                         "(read only, never written)")
    ap.add_argument("--no-consul-service", action="store_true",
                    help="do not list the 'consul' service in the catalog")
    ap.add_argument("--tls-cert", default=None, metavar="CERT.pem",
                    help="serve HTTPS with this certificate (and --tls-key)")
    ap.add_argument("--tls-key", default=None, metavar="KEY.pem")
    ap.add_argument("--tls-client-ca", default=None, metavar="CA.pem",
                    help="with --tls-cert: require client certificates signed by this CA "
                         "(Consul's verify_incoming)")
    args = ap.parse_args(argv)
    if args.basic_auth is not None and ":" not in args.basic_auth:
        ap.error("--basic-auth must be USER:PASS")
    if args.token == "":
        ap.error("--token must not be empty")

    store = Store(args.datacenter, args.node_name, consul_service=not args.no_consul_service)
    if args.state:
        try:
            with open(args.state, "rb") as f:
                data = json.loads(f.read().decode("utf-8"))
            if not isinstance(data, dict):
                raise ValueError("state file must hold a JSON object")
            with store.lock:
                t = store.begin()
                apply_state(store, t, data)
                store.commit(t)
        except (OSError, ValueError) as e:
            sys.stderr.write("fake-consul: cannot load --state %s: %s\n" % (args.state, e))
            return 2
        except HTTPError as e:
            sys.stderr.write("fake-consul: cannot load --state %s: %s\n" % (args.state, e.text))
            return 2

    host, port = args.listen
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        server = FakeServer((host, port), store, args, family)
    except OSError as e:
        sys.stderr.write("fake-consul: cannot listen on %s:%d: %s\n" % (host, port, e))
        return 2
    scheme = "http"
    if args.tls_cert:
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        if args.tls_client_ca:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(args.tls_client_ca)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    bound_port = server.server_address[1]
    shown = host
    if host in ("0.0.0.0", ""):
        shown = "127.0.0.1"
    elif host == "::":
        shown = "::1"
    if ":" in shown:
        shown = "[%s]" % shown

    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    threading.Thread(target=ttl_loop, args=(store,), daemon=True).start()
    serve = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                             daemon=True)
    serve.start()
    sys.stdout.write("fake consul listening on %s://%s:%d\n" % (scheme, shown, bound_port))
    sys.stdout.flush()
    while not stop.wait(0.5):
        pass
    with store.lock:
        store.stopping = True
        store.cond.notify_all()
    server.shutdown()
    server.server_close()
    sys.stderr.write("fake-consul: stopped\n")
    sys.stderr.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
