#!/usr/bin/python3
"""A permessage-deflate peer for wesos's interop tests (ws/interop_deflate_test.go).

It runs Debian's python3-websockets (the 10.x asyncio API) and must be started
with /usr/bin/python3, which can import it:

    deflate_peer.py client URL CONFIG   connect to URL (our server)
    deflate_peer.py server CONFIG       listen on 127.0.0.1:0, serve one connection

Either way the peer echoes every message it receives, with the same type:
as one frame, or, when the message is longer than CONFIG["frag"] (in
characters for text, bytes for binary), as fragments of that size.

CONFIG is a JSON object:
    "deflate": null (no compression offered or accepted),
               "default" (the library's default permessage-deflate settings),
               or an object of keyword arguments for
               ClientPerMessageDeflateFactory / ServerPerMessageDeflateFactory
               (server_no_context_takeover, client_no_context_takeover,
               server_max_window_bits, client_max_window_bits,
               require_client_max_window_bits)
    "frag":    fragment size of the echo, 0 for single frames

It reports on stdout, one JSON object a line:
    {"ev": "listening", "port": n}                        server mode, first
    {"ev": "open", "request_ext": s, "response_ext": s, "negotiated": [...]}
        the Sec-WebSocket-Extensions request and response headers (null when
        absent) and the parameters of each negotiated extension
    {"ev": "msg", "type": t, "len": n, "sha256": hex, "frames": n,
     "rsv1": b, "wire": n}
        a message arrived: its type, length in bytes (UTF-8 for text), sha256,
        and, when permessage-deflate is negotiated, its number of frames,
        whether its first frame had RSV1 set and its payload size on the
        wire (null otherwise)
    {"ev": "closed", "code": n, "reason": s}
    {"ev": "error", "msg": s}

The peer exits once its connection is closed; it never pings and has no
message size limit.
"""

import asyncio
import collections
import hashlib
import json
import sys

import websockets
from websockets.exceptions import ConnectionClosed
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)
from websockets.frames import OP_BINARY, OP_CONT, OP_TEXT


def emit(**event):
    line = json.dumps(event) + "\n"
    sys.stdout.buffer.write(line.encode("utf-8"))
    sys.stdout.buffer.flush()


# What the frames of each message looked like before decompression, recorded
# by wrapping PerMessageDeflate.decode (called for every frame of a
# connection with the extension). One connection per process.
_completed = collections.deque()
_current = None
_decode = PerMessageDeflate.decode


def _recording_decode(self, frame, *, max_size=None):
    global _current
    if frame.opcode in (OP_TEXT, OP_BINARY):
        _current = {"frames": 1, "rsv1": frame.rsv1, "wire": len(frame.data)}
    elif frame.opcode == OP_CONT and _current is not None:
        _current["frames"] += 1
        _current["wire"] += len(frame.data)
    if frame.opcode in (OP_TEXT, OP_BINARY, OP_CONT) and frame.fin:
        _completed.append(_current)
        _current = None
    return _decode(self, frame, max_size=max_size)


PerMessageDeflate.decode = _recording_decode

OPTIONS = dict(max_size=None, ping_interval=None, close_timeout=10)


def extension_options(config, factory):
    deflate = config.get("deflate")
    if deflate is None:
        return dict(compression=None)
    if deflate == "default":
        return dict(compression="deflate")
    return dict(compression=None, extensions=[factory(**deflate)])


def describe(ext):
    return {
        "name": ext.name,
        "remote_no_context_takeover": ext.remote_no_context_takeover,
        "local_no_context_takeover": ext.local_no_context_takeover,
        "remote_max_window_bits": ext.remote_max_window_bits,
        "local_max_window_bits": ext.local_max_window_bits,
    }


async def echo(ws, frag):
    emit(
        ev="open",
        request_ext=ws.request_headers.get("Sec-WebSocket-Extensions"),
        response_ext=ws.response_headers.get("Sec-WebSocket-Extensions"),
        negotiated=[describe(e) for e in ws.extensions],
    )
    negotiated = bool(ws.extensions)
    while True:
        try:
            msg = await ws.recv()
        except ConnectionClosed:
            break
        data = msg.encode("utf-8") if isinstance(msg, str) else msg
        stats = _completed.popleft() if negotiated else {}
        emit(
            ev="msg",
            type="text" if isinstance(msg, str) else "binary",
            len=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            frames=stats.get("frames"),
            rsv1=stats.get("rsv1"),
            wire=stats.get("wire"),
        )
        try:
            if frag and len(msg) > frag:
                await ws.send([msg[i : i + frag] for i in range(0, len(msg), frag)])
            else:
                await ws.send(msg)
        except ConnectionClosed:
            break
    await ws.wait_closed()
    emit(ev="closed", code=ws.close_code, reason=ws.close_reason)


async def client(url, config):
    opts = extension_options(config, ClientPerMessageDeflateFactory)
    async with websockets.connect(url, **opts, **OPTIONS) as ws:
        await echo(ws, config.get("frag", 0))


async def server(config):
    done = asyncio.get_running_loop().create_future()
    served = False

    async def handler(ws):
        nonlocal served
        if served:
            await ws.close(1013, "one connection only")
            return
        served = True
        try:
            await echo(ws, config.get("frag", 0))
        finally:
            if not done.done():
                done.set_result(None)

    opts = extension_options(config, ServerPerMessageDeflateFactory)
    async with websockets.serve(handler, "127.0.0.1", 0, **opts, **OPTIONS) as srv:
        emit(ev="listening", port=srv.sockets[0].getsockname()[1])
        await done


def main(argv):
    try:
        if len(argv) == 4 and argv[1] == "client":
            asyncio.run(client(argv[2], json.loads(argv[3])))
        elif len(argv) == 3 and argv[1] == "server":
            asyncio.run(server(json.loads(argv[2])))
        else:
            sys.exit("usage: deflate_peer.py client URL CONFIG | deflate_peer.py server CONFIG")
    except Exception as exc:  # reported, and the Go test fails on it
        emit(ev="error", msg=f"{type(exc).__name__}: {exc}")
        raise


if __name__ == "__main__":
    main(sys.argv)
