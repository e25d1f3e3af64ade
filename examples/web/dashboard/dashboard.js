// Live dashboard: subscribes with wildcards to every device's retained
// status ("online", or "offline" from its will) and telemetry (JSON), and
// shows them as they change.
'use strict';

const params = new URLSearchParams(location.search);
const prefix = params.get('prefix') || 'fleet';
const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/mqtt';

const devices = new Map(); // id -> { status, reading, card }
let readings = 0;
let dirty = new Set();

const $ = (id) => document.getElementById(id);

function setConnection(state) {
  const el = $('connection');
  el.textContent = state;
  el.className = 'badge ' + state;
}

function device(id) {
  let d = devices.get(id);
  if (!d) {
    const card = document.createElement('div');
    card.className = 'card';
    card.dataset.device = id;
    card.dataset.status = 'unknown';
    card.innerHTML =
      '<div class="row"><span class="id"></span><span class="badge status">?</span></div>' +
      '<div class="temp">–</div>' +
      '<div class="row muted"><span class="hum"></span><span class="bat"></span></div>' +
      '<div class="row muted"><span class="qos"></span><span class="seq"></span></div>';
    card.querySelector('.id').textContent = id;
    d = { status: 'unknown', reading: null, card };
    devices.set(id, d);
    // Keep cards in id order.
    const grid = $('grid');
    const after = [...grid.children].find((c) => c.dataset.device > id);
    grid.insertBefore(card, after || null);
  }
  return d;
}

function render() {
  for (const id of dirty) {
    const d = devices.get(id);
    const c = d.card;
    c.dataset.status = d.status;
    const badge = c.querySelector('.status');
    badge.textContent = d.status;
    badge.className = 'badge status ' + d.status;
    if (d.reading) {
      const r = d.reading;
      c.querySelector('.temp').textContent = r.temperature.toFixed(1) + ' °C';
      c.querySelector('.hum').textContent = r.humidity.toFixed(0) + ' %RH';
      c.querySelector('.bat').textContent = 'battery ' + r.battery + '%';
      c.querySelector('.qos').textContent = 'QoS ' + r.qos;
      c.querySelector('.seq').textContent = '#' + r.seq;
      c.dataset.seq = r.seq;
    }
  }
  dirty = new Set();
  let online = 0;
  for (const d of devices.values()) if (d.status === 'online') online++;
  $('devices').textContent = devices.size;
  $('online').textContent = online;
  $('offline').textContent = devices.size - online;
}

setInterval(() => {
  $('rate').textContent = readings;
  readings = 0;
}, 1000);

const client = mqtt.connect(url, {
  protocolVersion: 5,
  clientId: 'dashboard-' + Math.random().toString(16).slice(2, 10),
  reconnectPeriod: 1000,
  connectTimeout: 5000,
});

client.on('connect', () => {
  setConnection('connected');
  client.subscribe([prefix + '/+/status', prefix + '/+/telemetry'], { qos: 1 });
});
client.on('reconnect', () => setConnection('reconnecting'));
client.on('close', () => setConnection('disconnected'));
client.on('error', (e) => console.warn('mqtt:', e.message));

const decoder = new TextDecoder();
client.on('message', (topic, payload) => {
  const [, id, kind] = topic.split('/');
  if (!id) return;
  const text = decoder.decode(payload);
  if (kind === 'status') {
    if (text === '') return; // a cleared retained status
    device(id).status = text === 'online' ? 'online' : 'offline';
  } else if (kind === 'telemetry') {
    let r;
    try {
      r = JSON.parse(text);
    } catch {
      return;
    }
    if (typeof r.temperature !== 'number') return;
    device(id).reading = r;
    readings++;
  } else {
    return;
  }
  if (dirty.size === 0) setTimeout(render, 50);
  dirty.add(id);
});
