// The chat page. GET /rooms lists the rooms and who is in each; joining a
// room opens a WebSocket to /ws/{room}?name=…, whose messages the server
// relays to the room's other members. Messages are JSON:
//
//   {"type":"chat","name":…,"text":…}            sent by a page, relayed as is
//   {"type":"presence","room":…,"names":[…]}     sent by the server on join/leave
//
// Anything else (say, a line from examples/client) is shown as it came. The
// name and the rooms joined are kept in the address (#name=ann&rooms=go,random),
// so a reload rejoins them; a page opened without rooms joins the first one.
"use strict";

const $ = (selector) => document.querySelector(selector);
const log = $("#log"), roomList = $("#rooms"), statusEl = $("#status");
const form = $("#composer"), nameInput = $("#name"), roomSelect = $("#room"), textInput = $("#text"), send = $("#send");

const hash = new URLSearchParams(location.hash.slice(1));
nameInput.value = hash.get("name") || localStorage.getItem("name") || "guest-" + Math.floor(100 + Math.random() * 900);
nameInput.addEventListener("change", () => localStorage.setItem("name", nameInput.value.trim()));

const rooms = new Map(); // name → {item, who, button, socket, failures, joined, names}

// listRooms fetches the rooms and who is in each; the rooms joined learn
// that from their presence messages instead.
async function listRooms() {
  let list = [];
  try {
    const resp = await fetch("/rooms", { cache: "no-store" });
    if (resp.ok) list = await resp.json();
  } catch {}
  for (const info of list) {
    const room = rooms.get(info.name) || addRoom(info.name);
    if (!room.joined) setNames(room, info.names || []);
  }
  return list;
}

let refreshing = null;
function refreshSoon() {
  if (!refreshing) refreshing = setTimeout(() => { refreshing = null; listRooms(); }, 500);
}

function addRoom(name) {
  const item = document.createElement("li");
  item.dataset.room = name;
  item.dataset.state = "idle";
  const title = document.createElement("span");
  title.className = "room-name";
  title.textContent = "#" + name;
  const button = document.createElement("button");
  button.type = "button";
  button.className = "join";
  const who = document.createElement("span");
  who.className = "who";
  item.append(title, button, who);
  roomList.append(item);
  const room = { name, item, who, button, socket: null, failures: 0, joined: false, names: [], timer: null };
  button.addEventListener("click", () => (room.joined ? leave(room) : join(room)));
  rooms.set(name, room);
  render(room);
  return room;
}

function join(room) {
  room.joined = true;
  connect(room);
  saveJoined();
  render(room);
}

function leave(room) {
  room.joined = false;
  clearTimeout(room.timer);
  if (room.socket) {
    room.socket.onclose = null;
    room.socket.close(1000, "left the room");
    room.socket = null;
  }
  saveJoined();
  render(room);
  listRooms();
}

function connect(room) {
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host +
    "/ws/" + encodeURIComponent(room.name) + "?name=" + encodeURIComponent(nameInput.value.trim());
  const socket = new WebSocket(url);
  room.socket = socket;
  socket.binaryType = "arraybuffer";
  socket.onopen = () => {
    room.failures = 0;
    render(room);
  };
  socket.onmessage = (event) => receive(room, event.data);
  socket.onclose = () => {
    if (room.socket !== socket) return;
    // Back off 0.5 s, 1 s, 2 s … up to 8 s, with jitter, so that a restarted
    // server is not hit by every page at the same instant.
    const delay = Math.min(8000, 500 * 2 ** room.failures++) * (0.75 + Math.random() / 2);
    room.timer = setTimeout(() => room.joined && connect(room), delay);
    render(room);
  };
  render(room);
}

function receive(room, data) {
  if (typeof data !== "string") return show(room.name, "?", `[binary message, ${data.byteLength} bytes]`, false);
  let msg = null;
  try { msg = JSON.parse(data); } catch {}
  if (msg?.type === "presence") {
    setNames(room, Array.isArray(msg.names) ? msg.names.map(String) : []);
    refreshSoon(); // someone came or went: perhaps in other rooms too
  }
  else if (msg?.type === "chat") show(room.name, String(msg.name || "anonymous"), String(msg.text), false);
  else show(room.name, "?", data, false);
}

function setNames(room, names) {
  room.names = names;
  room.who.textContent = names.length ? names.join(", ") : "nobody yet";
}

function show(roomName, name, text, mine) {
  const where = document.createElement("span");
  where.className = "room";
  where.textContent = "#" + roomName;
  const who = document.createElement("span");
  who.className = "name";
  who.textContent = mine ? "you" : name;
  const time = document.createElement("time");
  time.textContent = new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  const meta = document.createElement("div");
  meta.className = "meta";
  meta.append(where, who, time);
  const body = document.createElement("p");
  body.className = "text";
  body.textContent = text; // text, never HTML: messages come from anyone
  const item = document.createElement("li");
  item.dataset.room = roomName;
  if (mine) item.className = "mine";
  item.append(meta, body);
  log.append(item);
  log.scrollTop = log.scrollHeight;
}

// render shows a room's state, and the page's: the status pill, the rooms
// one can write to, whether the name can change.
function render(room) {
  const open = room.socket?.readyState === WebSocket.OPEN;
  room.item.dataset.state = !room.joined ? "idle" : open ? "connected" : room.failures ? "offline" : "connecting";
  room.button.textContent = room.joined ? "Leave" : "Join";

  const joined = [...rooms.values()].filter((r) => r.joined);
  const connected = joined.filter((r) => r.socket?.readyState === WebSocket.OPEN);
  if (!joined.length) setStatus("idle", "not in a room");
  else if (connected.length === joined.length) setStatus("connected", "connected");
  else if (joined.some((r) => r.failures)) setStatus("offline", "offline · retrying");
  else setStatus("connecting", "connecting…");
  nameInput.disabled = joined.length > 0;

  const selected = roomSelect.value;
  roomSelect.replaceChildren(...connected.map((r) => new Option("#" + r.name, r.name)));
  if (connected.some((r) => r.name === selected)) roomSelect.value = selected;
  send.disabled = connected.length === 0;
}

function setStatus(state, label) {
  statusEl.dataset.state = state;
  statusEl.textContent = label;
}

// saveJoined keeps the name and the rooms joined in the address.
function saveJoined() {
  const joined = [...rooms.values()].filter((r) => r.joined).map((r) => r.name);
  const state = new URLSearchParams({ name: nameInput.value.trim() });
  if (joined.length) state.set("rooms", joined.join(","));
  history.replaceState(null, "", "#" + state);
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = textInput.value.trim();
  const room = rooms.get(roomSelect.value);
  if (!text || room?.socket?.readyState !== WebSocket.OPEN) return;
  room.socket.send(JSON.stringify({ type: "chat", name: nameInput.value.trim(), text }));
  show(room.name, "you", text, true); // the server relays it to the others only
  textInput.value = "";
});

(async () => {
  const list = await listRooms();
  const wanted = hash.get("rooms");
  const names = wanted !== null ? wanted.split(",") : list.slice(0, 1).map((r) => r.name);
  for (const name of names) if (rooms.has(name)) join(rooms.get(name));
  setInterval(listRooms, 5000); // who is in the rooms not joined
})();
