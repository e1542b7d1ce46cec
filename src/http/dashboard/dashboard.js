// Starling's dashboard: reads the public HTTP API (/api/v1/..., /metrics) every two seconds.
// Read-only unless the token (or loopback without tokens) has the "admin" scope. Everything
// shown from the broker goes in as text, never as HTML.
'use strict';

const POLL_MS = 2000;
const HISTORY = 150; // samples in the chart: five minutes
const state = {
  token: sessionStorage.getItem('starling-token') || '',
  admin: false,
  features: {},
  previous: null, // the last /metrics sample: {time, families}
  rates: { in: [], out: [] },
};

const $ = (id) => document.getElementById(id);

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function row(cells) {
  const tr = document.createElement('tr');
  for (const cell of cells) {
    if (cell instanceof Node) {
      const td = document.createElement('td');
      td.appendChild(cell);
      tr.appendChild(td);
    } else {
      tr.appendChild(el('td', cell));
    }
  }
  return tr;
}

function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
}

function number(n) {
  if (n === undefined || n === null || Number.isNaN(n)) return '-';
  if (Math.abs(n) >= 1e6) return (n / 1e6).toFixed(2) + 'M';
  if (Math.abs(n) >= 1e4) return (n / 1e3).toFixed(1) + 'k';
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}

function seconds(s) {
  if (s === undefined || s === null) return '-';
  if (!Number.isFinite(s)) return '> 10 s';
  if (s < 1e-3) return (s * 1e6).toFixed(0) + ' us';
  if (s < 1) return (s * 1e3).toFixed(1) + ' ms';
  return s.toFixed(2) + ' s';
}

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (state.token) headers.Authorization = 'Bearer ' + state.token;
  const response = await fetch(path, Object.assign({}, options, { headers }));
  if (response.status === 401 || response.status === 403) {
    const body = await response.json().catch(() => ({}));
    throw new AccessError(body.message || response.statusText);
  }
  return response;
}

class AccessError extends Error {}

// Prometheus text format: {name: [{labels: {...}, value}]}.
function parseMetrics(text) {
  const families = {};
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[3]) {
      for (const l of m[3].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
        labels[l[1]] = l[2].replace(/\\(.)/g, '$1');
      }
    }
    (families[m[1]] = families[m[1]] || []).push({ labels, value: Number(m[4]) });
  }
  return families;
}

function total(families, name) {
  return (families[name] || []).reduce((sum, s) => sum + s.value, 0);
}

function perSecond(name, now, before, seconds) {
  if (!before) return undefined;
  return Math.max(0, total(now, name) - total(before, name)) / seconds;
}

// A percentile of the observations between two samples of a histogram: the upper bound of
// the first bucket that holds it.
function percentile(now, before, name, q) {
  const buckets = (now[name + '_bucket'] || []).map((b) => {
    const old = before && (before[name + '_bucket'] || []).find((o) => o.labels.le === b.labels.le);
    return { le: Number(b.labels.le === '+Inf' ? Infinity : b.labels.le),
             count: b.value - (old ? old.value : 0) };
  }).sort((a, b) => a.le - b.le);
  const count = buckets.length ? buckets[buckets.length - 1].count : 0;
  if (count <= 0) return undefined;
  const bucket = buckets.find((b) => b.count >= q * count);
  return bucket ? bucket.le : undefined;
}

function tiles(stats) {
  const items = [
    ['clients connected', stats.clients_connected],
    ['sessions', stats.sessions],
    ['subscriptions', stats.subscriptions],
    ['retained', stats.retained_messages],
    ['queued', stats.queued_messages],
    ['in flight', stats.inflight_messages],
    ['messages in', stats.messages.received],
    ['messages out', stats.messages.sent],
  ];
  $('tiles').replaceChildren(...items.map(([label, value]) => {
    const tile = el('div', null, 'tile');
    tile.dataset.name = label;
    tile.append(el('div', number(value), 'value'), el('div', label, 'label'));
    return tile;
  }));
  $('node').textContent = 'v' + stats.version + ', up ' + Math.round(stats.uptime_seconds) + ' s';
}

function chart(inRate, outRate) {
  for (const [series, value] of [[state.rates.in, inRate], [state.rates.out, outRate]]) {
    series.push(value || 0);
    if (series.length > HISTORY) series.shift();
  }
  const max = Math.max(1, ...state.rates.in, ...state.rates.out);
  const svg = $('rates');
  const lines = [[state.rates.in, 'in'], [state.rates.out, 'out']].map(([s, direction]) => {
    const line = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
    const offset = HISTORY - s.length;
    line.setAttribute('points', s.map((v, i) =>
      ((offset + i) * 600 / (HISTORY - 1)).toFixed(1) + ',' + (155 - v / max * 150).toFixed(1)).join(' '));
    line.setAttribute('class', direction); // colours in the CSS: no inline styles (CSP)
    return line;
  });
  svg.replaceChildren(...lines);
  $('rate-in').textContent = number(inRate) + '/s';
  $('rate-out').textContent = number(outRate) + '/s';
}

function metricsViews(families, elapsed) {
  const before = state.previous && state.previous.families;
  chart(perSecond('starling_messages_received_total', families, before, elapsed),
        perSecond('starling_messages_sent_total', families, before, elapsed));

  const latencies = [
    ['publish to deliver', 'starling_publish_to_deliver_seconds'],
    ['store commit', 'starling_store_commit_seconds'],
    ['Kafka produce', 'starling_kafka_produce_seconds'],
    ['HTTP request', 'starling_http_request_seconds'],
  ];
  if (state.features.cluster) latencies.push(['cluster forward', 'starling_cluster_forward_seconds']);
  fill($('latency').tBodies[0], latencies.map(([label, name]) =>
    row([label, ...[0.5, 0.9, 0.99].map((q) => seconds(percentile(families, before, name, q)))])));

  fill($('store').tBodies[0], [
    row(['open', total(families, 'starling_store_open') ? 'yes' : 'no (durability none)']),
    row(['commits per s', number(perSecond('starling_store_commits_total', families, before, elapsed))]),
    row(['syncs per s', number(perSecond('starling_store_syncs_total', families, before, elapsed))]),
    row(['commits', number(total(families, 'starling_store_commits_total'))]),
  ]);

  const drops = families.starling_messages_dropped_total || [];
  fill($('drops').tBodies[0], drops.map((d) => {
    const old = before && (before.starling_messages_dropped_total || [])
      .find((o) => o.labels.reason === d.labels.reason);
    const rate = old ? Math.max(0, d.value - old.value) / elapsed : undefined;
    return row([d.labels.reason, number(d.value), number(rate)]);
  }));

  $('kafka-section').hidden = !state.features.kafka;
  if (state.features.kafka) {
    fill($('kafka').tBodies[0], [
      row(['reachable', total(families, 'starling_kafka_reachable') ? 'yes' : 'no']),
      row(['produced per s', number(perSecond('starling_kafka_produced_total', families, before, elapsed))]),
      row(['consumed per s', number(perSecond('starling_kafka_consumed_total', families, before, elapsed))]),
      row(['produce failures', number(total(families, 'starling_kafka_produce_failed_total'))]),
    ]);
    const lag = families.starling_kafka_consumer_lag || [];
    fill($('kafka-rules').tBodies[0], (families.starling_kafka_assigned_partitions || []).map((a) => {
      const l = lag.find((x) => x.labels.rule === a.labels.rule);
      return row([a.labels.rule, a.labels.group, number(a.value), l && l.value >= 0 ? number(l.value) : '-']);
    }));
  }
}

async function refreshBridges() {
  $('bridges-section').hidden = !state.features.bridges;
  if (!state.features.bridges) return;
  const body = await (await api('/api/v1/bridges')).json();
  fill($('bridges').tBodies[0], body.bridges.map((b) =>
    row([b.name, b.state, b.remote, number(b.queued), number(b.inflight)])));
}

async function refreshCluster() {
  $('cluster-section').hidden = !state.features.cluster;
  if (!state.features.cluster) return;
  const body = await (await api('/api/v1/cluster')).json();
  fill($('cluster').tBodies[0], body.nodes.map((n) =>
    row([n.id + (n.self ? ' (this node)' : ''), n.state, n.http || '-', number(n.routes)])));
}

async function refreshClients() {
  const prefix = $('client-prefix').value;
  const body = await (await api('/api/v1/clients?limit=50&prefix=' + encodeURIComponent(prefix))).json();
  $('client-count').textContent = body.total + ' session(s)' + (body.total > 50 ? ', first 50' : '');
  fill($('clients').tBodies[0], body.clients.map((c) => {
    let action = '';
    if (state.admin && c.connected) {
      const button = el('button', 'Kick', 'kick');
      button.addEventListener('click', () => kick(c.client_id));
      action = button;
    }
    const tr = row([c.client_id, c.connected ? 'connected' : 'offline', c.peer || '-',
                    number(c.subscriptions), number(c.queued), action]);
    tr.dataset.clientId = c.client_id;
    return tr;
  }));
}

async function kick(clientId) {
  await api('/api/v1/clients/' + encodeURIComponent(clientId), { method: 'DELETE' });
  await refreshClients();
}

async function refreshRetained() {
  const filter = $('retained-filter').value || '#';
  const response = await api('/api/v1/retained?limit=50&filter=' + encodeURIComponent(filter));
  const body = await response.json();
  if (!response.ok) {
    $('retained-count').textContent = body.message || 'bad filter';
    fill($('retained').tBodies[0], []);
    return;
  }
  $('retained-count').textContent = body.total + ' message(s)' + (body.total > 50 ? ', first 50' : '');
  fill($('retained').tBodies[0], body.retained.map((m) => {
    const payload = el('span', m.payload_encoding === 'base64' ? '(base64) ' + m.payload : m.payload);
    const tr = row([m.topic, m.qos, payload]);
    tr.lastChild.className = 'payload';
    return tr;
  }));
}

// Asked first (it answers without a token): which scopes the token has and what this broker
// runs. Without read access nothing else is requested.
async function whoami() {
  const body = await (await api('/api/v1/whoami')).json();
  state.admin = body.scopes.includes('admin');
  const canRead = state.admin || body.scopes.includes('read');
  state.features = canRead ? body.features : {};
  $('access').textContent = state.admin ? 'admin' : canRead ? 'read-only' : '';
  if (!canRead) {
    throw new AccessError(state.token ? 'this token cannot read' : 'enter an API token');
  }
}

function setStatus(text, ok) {
  $('status').textContent = text;
  $('status').className = 'status ' + (ok ? 'ok' : 'bad');
}

async function poll() {
  try {
    if (!state.features.version) await whoami();
    const [stats, metricsText] = await Promise.all([
      api('/api/v1/stats').then((r) => r.json()),
      api('/metrics').then((r) => r.text()),
    ]);
    const now = { time: performance.now(), families: parseMetrics(metricsText) };
    const elapsed = state.previous ? (now.time - state.previous.time) / 1000 : POLL_MS / 1000;
    tiles(stats);
    metricsViews(now.families, elapsed);
    state.previous = now;
    await Promise.all([refreshBridges(), refreshCluster()]);
    setStatus('live', true);
  } catch (e) {
    setStatus(e instanceof AccessError ? 'token needed: ' + e.message : 'unreachable', false);
  }
}

function start() {
  $('token').value = state.token;
  $('token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    state.token = $('token').value.trim();
    sessionStorage.setItem('starling-token', state.token);
    state.features = {};
    poll().then(() => state.features.version && Promise.all([refreshClients(), refreshRetained()]))
      .catch(() => {});
  });
  $('client-search').addEventListener('submit', (event) => {
    event.preventDefault();
    refreshClients().catch(() => {});
  });
  $('retained-search').addEventListener('submit', (event) => {
    event.preventDefault();
    refreshRetained().catch(() => {});
  });
  poll().then(() => state.features.version && Promise.all([refreshClients(), refreshRetained()]))
    .catch(() => {});
  setInterval(poll, POLL_MS);
  setInterval(() => state.features.version && refreshClients().catch(() => {}), 3 * POLL_MS);
}

document.addEventListener('DOMContentLoaded', start);
