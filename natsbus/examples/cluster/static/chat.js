// The cluster chat page: one WebSocket to /ws?room=…, whose messages the
// node publishes to the room on every node, and relays back from them (this
// page's own too). Messages are JSON, {"type":"chat","from":…,"name":…,"text":…};
// anything else is shown as it came.
//
// When the node keeps the rooms' history (-history), each message comes
// wrapped with its sequence number, {"seq":N,"msg":…}: a page that joins gets
// the last 50, and one that reconnects asks for what followed the last it saw
// (after=N), so that it misses nothing and sees nothing twice. If the history
// no longer holds all of it, {"type":"gap",…} comes first, shown as a marker.
"use strict";

const $ = (selector) => document.querySelector(selector);
const log = $("#log"), node = $("#online"), statusEl = $("#status");
const form = $("#composer"), nameInput = $("#name"), textInput = $("#text"), send = $("#send");

const room = new URLSearchParams(location.search).get("room") || "lobby";
$("#room").textContent = "#" + room;
document.title = "#" + room + " · wesos cluster chat";
fetch("/node").then((r) => r.text()).then((n) => { node.textContent = "on " + n; }, () => {});

const me = Math.random().toString(36).slice(2); // tells our own messages apart
nameInput.value = localStorage.getItem("name") || "guest-" + Math.floor(100 + Math.random() * 900);
nameInput.addEventListener("change", () => localStorage.setItem("name", nameInput.value));

let socket = null;
let lastSeq = null; // of the last message seen, when the node keeps history
let failures = 0; // connection attempts in a row that ended; sets the backoff

function connect() {
  setStatus("connecting", "connecting…");
  let url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws?room=" + encodeURIComponent(room);
  if (lastSeq !== null) url += "&after=" + lastSeq;
  socket = new WebSocket(url);
  socket.binaryType = "arraybuffer";
  socket.onopen = () => {
    failures = 0;
    setStatus("connected", "connected");
  };
  socket.onmessage = (event) => receive(event.data);
  socket.onclose = () => {
    // Back off 0.5 s, 1 s, 2 s … up to 8 s, with jitter.
    const retryAt = Date.now() + Math.min(8000, 500 * 2 ** failures++) * (0.75 + Math.random() / 2);
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
  if (typeof msg?.seq === "number") {
    lastSeq = msg.seq;
    msg = msg.msg;
    if (typeof msg === "string") return show("?", msg, false);
  }
  if (msg?.type === "gap") {
    const missed = msg.first - msg.after - 1;
    return show("·", missed > 0 ? `${missed} earlier messages are no longer kept` : "the room's history starts over", false);
  }
  if (msg?.type === "chat") show(String(msg.name || "anonymous"), String(msg.text), msg.from === me);
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
