"""A real gRPC-Web client (PyPI's sonora, its urllib3 client) for crates/router/tests/grpc_web.rs.

sonora speaks binary gRPC-Web (`application/grpc-web+proto`) over HTTP/1.1; its methods take
serializers, and identity ones make it send and read raw bytes, as grpc_peer.py's server does.

    grpc_web_client.py URL     calls test.Echo through URL, prints one JSON object
"""

import json
import sys

from sonora.client import insecure_web_channel
from sonora.protocol import WebRpcError


def raw(b):
    return b


def main(url):
    out = {}
    with insecure_web_channel(url) as ch:
        unary = ch.unary_unary("/test.Echo/Unary", raw, raw)
        reply, call = unary.with_call(b"hi", timeout=10)
        out["unary"] = {
            "reply": reply.decode(),
            "content_type": dict(call.initial_metadata()).get("content-type"),
            "trailing": dict(call.trailing_metadata()),
        }
        try:
            unary(b"deny", timeout=10)
            out["deny"] = {"code": "OK"}
        except WebRpcError as e:
            out["deny"] = {"code": e.code().name, "details": e.details()}

        stream = ch.unary_stream("/test.Echo/ServerStream", raw, raw)
        call = stream(b"5", timeout=10)
        out["server_stream"] = {
            "messages": [m.decode() for m in call],
            "trailing": dict(call.trailing_metadata()),
        }
        got = []
        try:
            for m in stream(b"3!", timeout=10):
                got.append(m.decode())
            out["stream_error"] = {"messages": got, "code": "OK"}
        except WebRpcError as e:
            out["stream_error"] = {
                "messages": got,
                "code": e.code().name,
                "details": e.details(),
            }
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
