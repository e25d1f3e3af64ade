// Chat over MQTT 5: rooms are topics.
//
//   chat/ROOM/post            a page's message, as a request to the
//                             chat-history service (Response Topic and
//                             Correlation Data set), at QoS 1
//   chat/ROOM/messages        the service passes each message on to the room
//   chat/ROOM/history         ask the service for the room's last messages
//   chat/ROOM/presence/ID     retained {"name":...} while a page is here;
//                             its will (empty, retained) clears it
//   chat/reply/ID             where the service answers this page
//
// A message stays "pending" until the service has it; while pending it is
// posted again every few seconds (the service keeps each id once), so a
// message sent while the broker restarts is delivered after it is back.
'use strict';

const params = new URLSearchParams(location.search);
const room = (params.get('room') || 'lobby').replace(/[^\w-]/g, '').slice(0, 32) || 'lobby';
const name = (params.get('name') || 'guest-' + Math.random().toString(36).slice(2, 6)).slice(0, 32);
const clientId = 'chat-' + Math.random().toString(16).slice(2, 14);
const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/mqtt';
const T = (kind) => 'chat/' + room + '/' + kind;
const replyTopic = 'chat/reply/' + clientId;
const RETRY_MS = 3000;

const $ = (id) => document.getElementById(id);
$('room').textContent = room;
$('me').textContent = name;

const shown = new Map(); // message id -> <li>
const pending = new Map(); // message id -> { message, sentAt }
let historyLoaded = false;
let historyAskedAt = 0;
let requests = 0;

function setConnection(state) {
  const el = $('connection');
  el.textContent = state;
  el.className = 'badge ' + state;
}

function show(m, isPending) {
  let li = shown.get(m.id);
  if (!li) {
    li = document.createElement('li');
    li.dataset.id = m.id;
    li.innerHTML = '<span class="from"></span><span class="text"></span>';
    li.querySelector('.from').textContent = m.from;
    li.querySelector('.text').textContent = m.text;
    shown.set(m.id, li);
    // In order of the service's time; pending ones at the end.
    const list = $('messages');
    const ts = isPending ? Infinity : m.ts;
    li.dataset.ts = ts;
    const after = [...list.children].find((c) => Number(c.dataset.ts) > ts);
    list.insertBefore(li, after || null);
    list.scrollTop = list.scrollHeight;
  } else if (!isPending && li.classList.contains('pending')) {
    // The service's copy of our pending message: move it into place.
    li.remove();
    shown.delete(m.id);
    return show(m, false);
  }
  li.className = isPending ? 'pending' : 'delivered';
  li.dataset.from = m.from;
}

function request(topic, payload) {
  client.publish(topic, payload, {
    qos: 1,
    properties: { responseTopic: replyTopic, correlationData: topic.split('/')[2] + ':' + ++requests },
  });
}

function post(message) {
  pending.set(message.id, { message, sentAt: Date.now() });
  request(T('post'), JSON.stringify(message));
}

function askHistory() {
  historyAskedAt = Date.now();
  request(T('history'), '');
}

const client = mqtt.connect(url, {
  protocolVersion: 5,
  clientId,
  clean: true,
  resubscribe: false, // subscribed again on every connect, below
  reconnectPeriod: 1000,
  connectTimeout: 5000,
  will: { topic: T('presence/' + clientId), payload: '', qos: 1, retain: true },
});

client.on('connect', () => {
  setConnection('connected');
  historyLoaded = false;
  client.subscribe([T('messages'), T('presence/+'), replyTopic], { qos: 1 }, (err) => {
    if (err) return console.warn('subscribe:', err.message);
    client.publish(T('presence/' + clientId), JSON.stringify({ name }), { qos: 1, retain: true });
    askHistory();
  });
});
client.on('reconnect', () => setConnection('reconnecting'));
client.on('close', () => setConnection('disconnected'));
client.on('error', (e) => console.warn('mqtt:', e.message));

const decoder = new TextDecoder();
client.on('message', (topic, payload, packet) => {
  const text = decoder.decode(payload);
  if (topic === T('messages')) {
    let m;
    try {
      m = JSON.parse(text);
    } catch {
      return;
    }
    pending.delete(m.id);
    show(m, false);
  } else if (topic.startsWith(T('presence/'))) {
    const who = topic.slice(T('presence/').length);
    let li = document.querySelector('#presence li[data-client="' + CSS.escape(who) + '"]');
    let entry = null;
    try {
      entry = text ? JSON.parse(text) : null;
    } catch {}
    if (!entry) {
      if (li) li.remove();
      return;
    }
    if (!li) {
      li = document.createElement('li');
      li.dataset.client = who;
      $('presence').appendChild(li);
    }
    li.dataset.user = entry.name;
    li.textContent = entry.name;
  } else if (topic === replyTopic) {
    const correlation = decoder.decode(packet.properties?.correlationData || new Uint8Array());
    let reply;
    try {
      reply = JSON.parse(text);
    } catch {
      return;
    }
    if (correlation.startsWith('history:') && Array.isArray(reply)) {
      historyLoaded = true;
      for (const m of reply) {
        pending.delete(m.id);
        show(m, false);
      }
    } else if (correlation.startsWith('post:') && reply.ok && reply.message?.id) {
      // The service has it (also when its broadcast passed us by while
      // this page was subscribing again).
      const p = pending.get(reply.message.id);
      pending.delete(reply.message.id);
      if (p) show(reply.message.text ? reply.message : { ...p.message, ts: Date.now() }, false);
    } else if (correlation.startsWith('post:') && reply.ok === false) {
      console.warn('post refused:', reply.error);
    }
  }
});

// Re-post what the service has not passed on yet, and ask for the history
// again until it answers (the service may reconnect after this page does).
setInterval(() => {
  if (!client.connected) return;
  const now = Date.now();
  for (const p of pending.values()) {
    if (now - p.sentAt >= RETRY_MS) post(p.message);
  }
  if (!historyLoaded && now - historyAskedAt >= RETRY_MS) askHistory();
}, 500);

$('compose').addEventListener('submit', (e) => {
  e.preventDefault();
  const text = $('text').value.trim();
  if (!text) return;
  $('text').value = '';
  const message = { id: clientId + '-' + Date.now().toString(36) + '-' + Math.random().toString(36).slice(2, 6), from: name, text };
  show(message, true);
  post(message);
});
