"""A real gRPC server and client (grpcio) for crates/router/tests/grpc.rs (its server for
grpc_web.rs too).

No protobuf: the methods of service `test.Echo` take and give raw bytes (grpcio's handlers
without serializers), so the test needs no generated code.

    grpc_peer.py server NAME           prints its port, serves until killed
    grpc_peer.py client TARGET AUTHORITY SCENARIO [HOLD_SECONDS]
                                       prints one JSON object with what it saw
"""

import json
import sys
import time
from concurrent import futures

import grpc

SERVICE = "test.Echo"


def serve(name):
    def unary(req, ctx):
        md = dict(ctx.invocation_metadata())
        if req == b"deny":
            ctx.set_trailing_metadata((("x-why", "denied-by-" + name),))
            ctx.abort(grpc.StatusCode.PERMISSION_DENIED, "not you")
        ctx.set_trailing_metadata((("x-served-by", name),))
        beta = md.get("x-rikstv-beta", "")
        return b"%s:%s:beta=%s" % (name.encode(), req, beta.encode())

    def server_stream(req, ctx):
        # "N" streams N messages; "N!" then fails (status in the trailers, after messages).
        for i in range(int(req.rstrip(b"!"))):
            yield b"%s:%d" % (name.encode(), i)
        if req.endswith(b"!"):
            ctx.abort(grpc.StatusCode.ABORTED, "stopped after %s" % req.rstrip(b"!").decode())

    def client_stream(it, ctx):
        n, total = 0, 0
        for m in it:
            n += 1
            total += len(m)
        return json.dumps({"server": name, "messages": n, "bytes": total}).encode()

    def bidi(it, ctx):
        for m in it:
            yield b"%s:%s" % (name.encode(), m)

    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream),
        "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream),
        "Bidi": grpc.stream_stream_rpc_method_handler(bidi),
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE, handlers),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    server.wait_for_termination()


def client(target, authority, scenario, hold):
    opts = [("grpc.default_authority", authority)]
    ch = grpc.insecure_channel(target, options=opts)
    grpc.channel_ready_future(ch).result(timeout=10)
    out = {}
    path = lambda m: "/%s/%s" % (SERVICE, m)
    if scenario == "all":
        unary = ch.unary_unary(path("Unary"))
        for who, md in (("main", ()), ("beta", (("x-rikstv-beta", "true"),))):
            resp, call = unary.with_call(b"hi", metadata=md, timeout=10)
            out[who] = {
                "reply": resp.decode(),
                "code": call.code().name,
                "trailing": dict(call.trailing_metadata()),
            }
        try:
            unary(b"deny", timeout=10)
            out["deny"] = {"code": "OK"}
        except grpc.RpcError as e:
            out["deny"] = {
                "code": e.code().name,
                "details": e.details(),
                "trailing": dict(e.trailing_metadata() or ()),
            }
        stream = ch.unary_stream(path("ServerStream"))
        out["server_stream"] = [m.decode() for m in stream(b"5", timeout=10)]
        upload = ch.stream_unary(path("ClientStream"))
        big = (b"x" * 65536 for _ in range(32))
        out["client_stream"] = json.loads(upload(big, timeout=20))
    elif scenario == "hold":
        # A bidirectional stream held open `hold` seconds, quiet for almost all of it: a proxy
        # with an idle or stream timeout (Traefik's 60 s) cuts it.
        bidi = ch.stream_stream(path("Bidi"))
        started = time.monotonic()

        def messages():
            yield b"first"
            time.sleep(hold)
            yield b"last"

        out["bidi"] = [m.decode() for m in bidi(messages(), timeout=hold + 30)]
        out["held_seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "server":
        serve(sys.argv[2])
    else:
        hold = float(sys.argv[5]) if len(sys.argv) > 5 else 0
        client(sys.argv[2], sys.argv[3], sys.argv[4], hold)
