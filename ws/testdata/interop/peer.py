#!/usr/bin/python3
"""A third-party WebSocket peer for wesos's interop tests (ws/interop_test.go).

It runs Debian's python3-websockets (the 10.x asyncio API) and must be started
with /usr/bin/python3, which can import it:

    peer.py client URL      connect to URL (our server)
    peer.py server          listen on 127.0.0.1:0 and serve one connection
                            (our client), echoing every message back

The conversation is scripted by the Go test. The peer takes commands as JSON
lines on stdin and reports everything it sees as JSON lines on stdout, so the
assertions live in Go:

  commands (stdin)
    {"op": "send", "type": "text"|"binary", "frags": [...], "fragmented": bool,
     "delay_ms": n, "ping_between": hex}
        Send one message. Text fragments are strings, binary ones base64.
        With fragmented unset there must be one fragment, sent as a single
        frame; with it set the fragments are passed to send() as an iterable
        (an async one, sleeping delay_ms between fragments, when delay_ms is
        set), so each leaves as a frame with FIN unset, followed by an empty
        final frame. With ping_between (hex) set, the peer pings with that
        payload after the first fragment and waits for the pong (reported as
        by the ping command) before it sends the next.
    {"op": "ping", "data": hex}
        Send a ping with that payload, wait for its pong, report "pong".
    {"op": "close", "code": n, "reason": s}
        Run the closing handshake with that code and reason.

  events (stdout)
    {"ev": "listening", "port": n}           server mode, before anything else
    {"ev": "open", "version": s}             the handshake is done
    {"ev": "msg", "type": t, "len": n, "sha256": hex, "frames": [n, ...]}
        a data message arrived: its type, its length in bytes (UTF-8 bytes
        for text), the sha256 of those bytes, and the payload length of each
        frame it came in (more than one: it was fragmented)
    {"ev": "ping", "data": hex}              a ping arrived (answered by the library)
    {"ev": "pong", "pongs": [hex, ...]}      after a ping command: the pongs seen
    {"ev": "closed", "rcvd_code": n, "rcvd_reason": s, "sent_code": n,
     "sent_reason": s, "rcvd_then_sent": b}  the connection is closed
    {"ev": "error", "msg": s}                a command failed

The peer exits once its connection is closed; at the end of stdin it closes
the connection with 1001. It never sends pings of its own (ping_interval=None)
and has no message size limit (max_size=None).
"""

import asyncio
import base64
import collections
import hashlib
import json
import sys

import websockets
from websockets.exceptions import ConnectionClosed
from websockets.frames import OP_BINARY, OP_CONT, OP_PING, OP_PONG, OP_TEXT
from websockets.legacy.client import WebSocketClientProtocol
from websockets.legacy.server import WebSocketServerProtocol

STDIN_LIMIT = 64 << 20  # a command line carries up to ~48 MiB of base64


def emit(**event):
    line = json.dumps(event, ensure_ascii=False) + "\n"
    sys.stdout.buffer.write(line.encode("utf-8"))  # whatever the locale
    sys.stdout.buffer.flush()


class Recorder:
    """Records the frames behind each message, and the pings and pongs."""

    def _rec(self):
        if not hasattr(self, "_frames"):
            self._frames = []  # frame payload lengths of the message being read
            self.msg_frames = collections.deque()  # one list per queued message
            self.pongs = []
        return self

    async def read_frame(self, max_size):
        frame = await super().read_frame(max_size)
        self._rec()
        if frame.opcode in (OP_TEXT, OP_BINARY):
            self._frames = [len(frame.data)]
        elif frame.opcode == OP_CONT:
            self._frames.append(len(frame.data))
        elif frame.opcode == OP_PING:
            emit(ev="ping", data=frame.data.hex())
        elif frame.opcode == OP_PONG:
            self.pongs.append(frame.data.hex())
        return frame

    async def read_message(self):
        msg = await super().read_message()
        if msg is not None:
            self._rec().msg_frames.append(self._frames)
        return msg


class ClientProtocol(Recorder, WebSocketClientProtocol):
    pass


class ServerProtocol(Recorder, WebSocketServerProtocol):
    pass


OPTIONS = dict(max_size=None, ping_interval=None, close_timeout=10)


async def recv_loop(ws, echo):
    while True:
        try:
            msg = await ws.recv()
        except ConnectionClosed:
            break
        frames = ws._rec().msg_frames.popleft()
        data = msg.encode("utf-8") if isinstance(msg, str) else msg
        emit(
            ev="msg",
            type="text" if isinstance(msg, str) else "binary",
            len=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            frames=frames,
        )
        if echo:
            try:
                await ws.send(msg)
            except ConnectionClosed:
                break
    await ws.wait_closed()
    rcvd, sent = ws.close_rcvd, ws.close_sent
    emit(
        ev="closed",
        rcvd_code=rcvd.code if rcvd else None,
        rcvd_reason=rcvd.reason if rcvd else None,
        sent_code=sent.code if sent else None,
        sent_reason=sent.reason if sent else None,
        rcvd_then_sent=ws.close_rcvd_then_sent,
    )


async def ping(ws, data):
    ws._rec().pongs = []
    waiter = await ws.ping(data)
    await asyncio.wait_for(waiter, 20)
    emit(ev="pong", pongs=ws.pongs)


async def fragments(ws, frags, delay, ping_data):
    for i, f in enumerate(frags):
        yield f
        # Resumed once the fragment is written: what happens here happens
        # between the fragments of the message on the wire.
        if i == 0 and ping_data is not None:
            await ping(ws, ping_data)
        if delay:
            await asyncio.sleep(delay)


async def command(ws, cmd):
    op = cmd["op"]
    if op == "send":
        frags = cmd["frags"]
        if cmd["type"] == "binary":
            frags = [base64.b64decode(f) for f in frags]
        delay = cmd.get("delay_ms", 0) / 1000
        ping_data = cmd.get("ping_between")
        if ping_data is not None:
            ping_data = bytes.fromhex(ping_data)
        if not cmd.get("fragmented"):
            (msg,) = frags
            await ws.send(msg)
        elif delay or ping_data is not None:
            await ws.send(fragments(ws, frags, delay, ping_data))
        else:
            await ws.send(frags)
    elif op == "ping":
        await ping(ws, bytes.fromhex(cmd["data"]))
    elif op == "close":
        await ws.close(cmd["code"], cmd["reason"])
    else:
        raise ValueError(f"unknown op {op!r}")


async def command_loop(ws, stdin):
    while True:
        line = await stdin.readline()
        if not line:  # the test is done with us: end the connection
            await ws.close(1001, "stdin closed")
            return
        try:
            await command(ws, json.loads(line))
        except Exception as exc:  # reported, and the Go test fails on it
            emit(ev="error", msg=f"{type(exc).__name__}: {exc}")


async def converse(ws, stdin, echo):
    emit(ev="open", version=websockets.__version__)
    cmds = asyncio.create_task(command_loop(ws, stdin))
    await recv_loop(ws, echo)
    # A command may still be running (close() for one, which swallows a
    # cancellation while it waits for the connection to end): cancel until
    # the task is done.
    while not cmds.done():
        cmds.cancel()
        await asyncio.wait([cmds], timeout=0.05)


async def open_stdin():
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=STDIN_LIMIT)
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
    )
    return reader


async def client(url):
    stdin = await open_stdin()
    async with websockets.connect(
        url, create_protocol=ClientProtocol, **OPTIONS
    ) as ws:
        await converse(ws, stdin, echo=False)


async def server():
    stdin = await open_stdin()
    done = asyncio.get_running_loop().create_future()
    served = False

    async def handler(ws):
        nonlocal served
        if served:  # one connection per peer process
            await ws.close(1013, "one connection only")
            return
        served = True
        try:
            await converse(ws, stdin, echo=True)
        finally:
            if not done.done():
                done.set_result(None)

    async with websockets.serve(
        handler, "127.0.0.1", 0, create_protocol=ServerProtocol, **OPTIONS
    ) as srv:
        emit(ev="listening", port=srv.sockets[0].getsockname()[1])
        await done


def main(argv):
    if len(argv) == 3 and argv[1] == "client":
        asyncio.run(client(argv[2]))
    elif len(argv) == 2 and argv[1] == "server":
        asyncio.run(server())
    else:
        sys.exit("usage: peer.py client URL | peer.py server")


if __name__ == "__main__":
    main(sys.argv)
