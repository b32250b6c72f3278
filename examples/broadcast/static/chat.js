// The chat page: one WebSocket to /ws, which the server relays to every open
// socket (this one too). Messages are JSON:
//
//   {"type":"chat","from":…,"name":…,"text":…}  sent by a page, relayed as is
//   {"type":"presence","online":3}               sent by the server on join/leave
//
// Anything else (say, a line from examples/client) is shown as it came.
"use strict";

const $ = (selector) => document.querySelector(selector);
const log = $("#log"), online = $("#online"), statusEl = $("#status");
const form = $("#composer"), nameInput = $("#name"), textInput = $("#text"), send = $("#send");

const me = Math.random().toString(36).slice(2); // tells our own messages apart
nameInput.value = localStorage.getItem("name") || "guest-" + Math.floor(100 + Math.random() * 900);
nameInput.addEventListener("change", () => localStorage.setItem("name", nameInput.value));

let socket = null;
let failures = 0; // connection attempts in a row that ended; sets the backoff

function connect() {
  setStatus("connecting", "connecting…");
  socket = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
  socket.binaryType = "arraybuffer";
  socket.onopen = () => {
    failures = 0;
    setStatus("connected", "connected");
  };
  socket.onmessage = (event) => receive(event.data);
  socket.onclose = () => {
    // Back off 0.5 s, 1 s, 2 s … up to 8 s, with jitter, so that a restarted
    // server is not hit by every page at the same instant.
    const retryAt = Date.now() + Math.min(8000, 500 * 2 ** failures++) * (0.75 + Math.random() / 2);
    online.textContent = "";
    const countdown = () => {
      const seconds = Math.ceil((retryAt - Date.now()) / 1000);
      if (seconds <= 0) return connect();
      setStatus("offline", `offline · retrying in ${seconds} s`);
      setTimeout(countdown, 200);
    };
    countdown();
  };
}

function receive(data) {
  if (typeof data !== "string") return show("?", `[binary message, ${data.byteLength} bytes]`, false);
  let msg = null;
  try { msg = JSON.parse(data); } catch {}
  if (msg?.type === "presence") online.textContent = `${msg.online} online`;
  else if (msg?.type === "chat") show(String(msg.name || "anonymous"), String(msg.text), msg.from === me);
  else show("?", data, false);
}

function show(name, text, mine) {
  const who = document.createElement("span");
  who.className = "name";
  who.textContent = mine ? "you" : name;
  const time = document.createElement("time");
  time.textContent = new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  const meta = document.createElement("div");
  meta.className = "meta";
  meta.append(who, time);
  const body = document.createElement("p");
  body.className = "text";
  body.textContent = text; // text, never HTML: messages come from anyone
  const item = document.createElement("li");
  if (mine) item.className = "mine";
  item.append(meta, body);
  log.append(item);
  log.scrollTop = log.scrollHeight;
}

function setStatus(state, label) {
  statusEl.dataset.state = state;
  statusEl.textContent = label;
  send.disabled = state !== "connected";
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = textInput.value.trim();
  if (!text || socket?.readyState !== WebSocket.OPEN) return;
  socket.send(JSON.stringify({ type: "chat", from: me, name: nameInput.value.trim(), text }));
  textInput.value = "";
});

connect();
