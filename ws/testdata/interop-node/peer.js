'use strict';
/*
A third-party WebSocket peer for wesos's interop tests (ws/interop_node_test.go).

It runs Node's ws, at the exact version package-lock.json pins (install it
with `npm ci` in this folder):

    node peer.js client URL CONFIG   connect to URL (our server)
    node peer.js server CONFIG       listen on 127.0.0.1:0 and serve one
                                     connection (our client), echoing every
                                     message back with the same type

CONFIG is a JSON object:
    "deflate":   false (no permessage-deflate offered or accepted), true
                 (ws's default settings) or an object of ws's perMessageDeflate
                 options (serverNoContextTakeover, clientNoContextTakeover,
                 serverMaxWindowBits, clientMaxWindowBits, threshold…)
    "protocols": client: the subprotocols to offer; server: the subprotocols
                 it speaks, in order of preference (the first the client also
                 offers is chosen)

The conversation is scripted by the Go test, as with the Python peer
(testdata/interop/peer.py): the peer takes commands as JSON lines on stdin
and reports what it sees as JSON lines on stdout, so the assertions live in
Go.

  commands (stdin)
    {"op": "send", "type": "text"|"binary", "frags": [base64, ...],
     "fragmented": bool, "delay_ms": n, "ping_between": hex}
        Send one message. Fragments are base64 for both types, and text is
        sent as the bytes given (ws sends a Buffer with binary: false as it
        is, so the test can make it send invalid UTF-8). With fragmented
        unset there must be one fragment, sent as a single frame; with it set
        each fragment leaves as one frame, the last with FIN set, sleeping
        delay_ms between them. With ping_between (hex) set, the peer pings
        with that payload after the first fragment and waits for the pong
        (reported as by the ping command) before it sends the next.
    {"op": "ping", "data": hex}
        Send a ping with that payload, wait for its pong, report "pong".
    {"op": "close", "code": n, "reason": s}
        Start the closing handshake with that code and reason (without
        code: with a close frame that has no status code).
    {"op": "stats"}
        Report the bytes the TCP connection has read and written so far.

  events (stdout)
    {"ev": "listening", "port": n}           server mode, before anything else
    {"ev": "open", "version": s, "protocol": s, "extensions": s,
     "request_ext": s, "response_ext": s}
        the handshake is done: ws's version, the subprotocol chosen ("" for
        none), the extensions ws turned on ("permessage-deflate" or "") and
        the Sec-WebSocket-Extensions request and response headers (null when
        absent)
    {"ev": "msg", "type": t, "len": n, "sha256": hex}
        a data message arrived (ws checked text for UTF-8)
    {"ev": "ping", "data": hex}              a ping arrived (answered by ws)
    {"ev": "pong", "pongs": [hex, ...]}      after a ping command: the pongs seen
    {"ev": "stats", "read": n, "written": n} after a stats command
    {"ev": "closed", "rcvd_code": n, "rcvd_reason": s}
        the connection is closed: the code and reason of the close frame
        received (1005: one without a code; 1006: none)
    {"ev": "error", "msg": s}                a command failed, or ws reported
                                             an error (a protocol violation)

The peer exits once its connection is closed; at the end of stdin it closes
the connection with 1001, or exits if it has none (a server whose handshake
failed). It never sends pings of its own, and its message size limit is
64 MiB.
*/

const crypto = require('crypto');
const readline = require('readline');
const { WebSocket, WebSocketServer } = require('ws');
const { version } = require('ws/package.json');

const MAX_PAYLOAD = 64 << 20;
const PONG_WAIT_MS = 20000;

// emit writes one event line (synchronously: stdout is a pipe).
function emit(event) {
  process.stdout.write(JSON.stringify(event) + '\n');
}

// sendFrame sends one frame of a message and resolves once it is written.
function sendFrame(ws, data, opts) {
  return new Promise((resolve, reject) => {
    ws.send(data, opts, (err) => (err ? reject(err) : resolve()));
  });
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// The command lines, read from the start so that none is lost; once stdin
// ends, a peer without a connection has nothing left to do.
const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
const commands = lines[Symbol.asyncIterator]();
let conversing = false;
lines.on('close', () => {
  if (!conversing) process.exit(0);
});

// Conversation drives one connection: it reports what arrives and, once
// run, runs the commands read from stdin, one at a time.
class Conversation {
  constructor(ws, echo) {
    this.ws = ws;
    this.socket = null; // the TCP connection, for stats, once open
    this.pongs = [];
    this.awaitedPong = null; // {hex, resolve} while a ping command waits

    ws.on('message', (data, isBinary) => {
      emit({
        ev: 'msg',
        type: isBinary ? 'binary' : 'text',
        len: data.length,
        sha256: crypto.createHash('sha256').update(data).digest('hex')
      });
      if (echo) ws.send(data, { binary: isBinary });
    });
    ws.on('ping', (data) => emit({ ev: 'ping', data: data.toString('hex') }));
    ws.on('pong', (data) => {
      const hex = data.toString('hex');
      this.pongs.push(hex);
      if (this.awaitedPong && this.awaitedPong.hex === hex) {
        this.awaitedPong.resolve();
      }
    });
    ws.on('error', (err) => emit({ ev: 'error', msg: `ws: ${err.message}` }));
    ws.on('close', (code, reason) => {
      emit({ ev: 'closed', rcvd_code: code, rcvd_reason: reason.toString('utf8') });
      process.exit(0);
    });
  }

  // ping sends a ping and reports the pongs seen until its own came back.
  async ping(payload) {
    this.pongs = [];
    const hex = payload.toString('hex');
    let timer;
    const answered = new Promise((resolve, reject) => {
      this.awaitedPong = { hex, resolve };
      timer = setTimeout(() => reject(new Error(`no pong in ${PONG_WAIT_MS} ms`)), PONG_WAIT_MS);
    });
    try {
      this.ws.ping(payload);
      await answered;
    } finally {
      clearTimeout(timer);
      this.awaitedPong = null;
    }
    emit({ ev: 'pong', pongs: this.pongs });
  }

  // send sends one message, as one frame or one frame per fragment.
  async send(cmd) {
    const frags = cmd.frags.map((f) => Buffer.from(f, 'base64'));
    const binary = cmd.type === 'binary';
    if (!cmd.fragmented) {
      if (frags.length !== 1) throw new Error('one fragment expected');
      await sendFrame(this.ws, frags[0], { binary });
      return;
    }
    for (let i = 0; i < frags.length; i++) {
      const fin = i === frags.length - 1;
      await sendFrame(this.ws, frags[i], { binary, fin });
      if (fin) break;
      // Between the fragments of the message on the wire.
      if (i === 0 && cmd.ping_between != null) {
        await this.ping(Buffer.from(cmd.ping_between, 'hex'));
      }
      if (cmd.delay_ms) await sleep(cmd.delay_ms);
    }
  }

  async command(cmd) {
    switch (cmd.op) {
      case 'send':
        return this.send(cmd);
      case 'ping':
        return this.ping(Buffer.from(cmd.data, 'hex'));
      case 'close':
        return this.ws.close(cmd.code, cmd.reason);
      case 'stats':
        return emit({ ev: 'stats', read: this.socket.bytesRead, written: this.socket.bytesWritten });
      default:
        throw new Error(`unknown op ${JSON.stringify(cmd.op)}`);
    }
  }

  // run reports the open connection (on socket), then runs the commands
  // until stdin ends, and closes with 1001.
  async run(socket, requestExt, responseExt) {
    conversing = true;
    this.socket = socket;
    const ws = this.ws;
    emit({
      ev: 'open',
      version,
      protocol: ws.protocol,
      extensions: ws.extensions,
      request_ext: requestExt ?? null,
      response_ext: responseExt ?? null
    });
    for (;;) {
      const { value: line, done } = await commands.next();
      if (done) break;
      try {
        await this.command(JSON.parse(line));
      } catch (err) {
        // Reported, and the Go test fails on it.
        emit({ ev: 'error', msg: `${err.name}: ${err.message}` });
      }
    }
    this.ws.close(1001, 'stdin closed');
  }
}

// deflateOption turns CONFIG's deflate into ws's perMessageDeflate option.
function deflateOption(config) {
  const d = config.deflate;
  return d === undefined || d === null ? false : d;
}

function client(url, config) {
  let requestExt;
  const ws = new WebSocket(url, config.protocols || [], {
    perMessageDeflate: deflateOption(config),
    maxPayload: MAX_PAYLOAD,
    // Called with the handshake request, which it must send.
    finishRequest: (req) => {
      requestExt = req.getHeader('sec-websocket-extensions');
      req.end();
    }
  });
  // Reports a failed handshake too (an error, then closed with 1006).
  const conv = new Conversation(ws, false);
  let upgrade;
  ws.on('upgrade', (res) => (upgrade = res));
  ws.on('open', () => conv.run(upgrade.socket, requestExt, upgrade.headers['sec-websocket-extensions']));
}

function server(config) {
  const supported = config.protocols || [];
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    perMessageDeflate: deflateOption(config),
    maxPayload: MAX_PAYLOAD,
    handleProtocols: (offered) => supported.find((p) => offered.has(p)) ?? false
  });
  const handshakes = new WeakMap(); // request → [request ext, response ext]
  wss.on('headers', (headers, req) => {
    const ext = headers.find((h) => h.toLowerCase().startsWith('sec-websocket-extensions:'));
    handshakes.set(req, [
      req.headers['sec-websocket-extensions'],
      ext && ext.slice(ext.indexOf(':') + 1).trim()
    ]);
  });
  let served = false;
  wss.on('connection', (ws, req) => {
    if (served) {
      // One connection per peer process.
      ws.close(1013, 'one connection only');
      return;
    }
    served = true;
    const [requestExt, responseExt] = handshakes.get(req);
    new Conversation(ws, true).run(req.socket, requestExt, responseExt);
  });
  wss.on('error', (err) => {
    emit({ ev: 'error', msg: `server: ${err.message}` });
    process.exit(1);
  });
  wss.on('listening', () => emit({ ev: 'listening', port: wss.address().port }));
}

function main(argv) {
  if (argv.length === 3 && argv[0] === 'client') {
    client(argv[1], JSON.parse(argv[2]));
  } else if (argv.length === 2 && argv[0] === 'server') {
    server(JSON.parse(argv[1]));
  } else {
    process.stderr.write('usage: node peer.js client URL CONFIG | node peer.js server CONFIG\n');
    process.exit(2);
  }
}

main(process.argv.slice(2));
