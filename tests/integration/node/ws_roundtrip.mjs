// MQTT over WebSocket round trip with MQTT.js in node, for Starling's integration tests.
//
//   node ws_roundtrip.mjs <ws://... | wss://...> [--protocol-version 4|5]
//        [--ca file] [--cert file --key file] [--insecure]
//        [--username u] [--password p] [--client-id id] [--timeout seconds]
//        [--expect-refused]
//
// Default mode: connects, subscribes to a unique topic with QoS 1, publishes three messages
// (QoS 0, 1, 2) to it, waits for the three to come back, disconnects, prints one JSON line
//   {"ok":true,"received":[{"topic":..,"payload":"m0-qos0","qos":0},...],...}
// and exits 0. On any error or the overall timeout (10 s by default) it prints
//   {"ok":false,"error":"..."} and exits 1.
//
// --expect-refused: the broker must refuse the CONNECT (e.g. a wrong password): prints
//   {"ok":true,"refused":true,"reasonCode":135} (the CONNACK return/reason code) and exits 0;
// a successful connection, or a close without any CONNACK, is {"ok":false,...} and exit 1.
//
// --insecure turns off server certificate verification (rejectUnauthorized false).

import { readFileSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import mqtt from 'mqtt';

function usage(msg) {
  finish(2, { ok: false, error: `usage: ${msg}` });
}

let finished = false;
let client = null;

function finish(code, result) {
  if (finished) return;
  finished = true;
  const line = JSON.stringify(result) + '\n';
  const exit = () => { writeSync(1, line); process.exit(code); };
  if (client && client.connected) {
    // A normal DISCONNECT; don't wait long for it.
    const t = setTimeout(exit, 1000);
    client.end(false, {}, () => { clearTimeout(t); exit(); });
  } else {
    if (client) client.end(true);
    exit();
  }
}

function parseArgs(argv) {
  const opts = { protocolVersion: 5, timeout: 10, expectRefused: false, insecure: false };
  const valued = {
    '--protocol-version': 'protocolVersion', '--ca': 'ca', '--cert': 'cert', '--key': 'key',
    '--username': 'username', '--password': 'password', '--client-id': 'clientId',
    '--timeout': 'timeout',
  };
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--expect-refused') opts.expectRefused = true;
    else if (a === '--insecure') opts.insecure = true;
    else if (a in valued) {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      opts[valued[a]] = argv[++i];
    } else if (a.startsWith('--')) usage(`unknown option ${a}`);
    else rest.push(a);
  }
  if (rest.length !== 1) usage('node ws_roundtrip.mjs <url> [options]');
  opts.url = rest[0];
  opts.protocolVersion = Number(opts.protocolVersion);
  if (![3, 4, 5].includes(opts.protocolVersion)) usage('--protocol-version 3, 4 or 5');
  opts.timeout = Number(opts.timeout);
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
const tag = `${process.pid}-${randomBytes(4).toString('hex')}`;
const topic = `starling-test/ws/${tag}`;
const clientId = opts.clientId ?? `ws-rt-${tag}`;

setTimeout(() => finish(1, { ok: false, error: `timeout after ${opts.timeout}s`, stage }),
  opts.timeout * 1000).unref();
let stage = 'connect';

const connectOpts = {
  protocolVersion: opts.protocolVersion,
  clientId,
  clean: true,
  reconnectPeriod: 0,          // one attempt only
  connectTimeout: opts.timeout * 1000,
  rejectUnauthorized: !opts.insecure,
};
if (opts.protocolVersion === 3) connectOpts.protocolId = 'MQIsdp';
try {
  if (opts.ca) connectOpts.ca = readFileSync(opts.ca);
  if (opts.cert) connectOpts.cert = readFileSync(opts.cert);
  if (opts.key) connectOpts.key = readFileSync(opts.key);
} catch (e) {
  finish(1, { ok: false, error: `reading TLS files: ${e.message}` });
}
if (opts.username !== undefined) connectOpts.username = opts.username;
if (opts.password !== undefined) connectOpts.password = opts.password;

const received = [];
let connack = null;

try {
  client = mqtt.connect(opts.url, connectOpts);
} catch (e) {
  finish(1, { ok: false, error: `connect: ${e.message}`, stage });
}

// Emitted before MQTT.js handles the packet, so a refusing CONNACK is seen before its 'error'.
client.on('packetreceive', (p) => {
  if (p.cmd === 'connack' && !connack) connack = p;
});
const connackCode = () =>
  connack ? (opts.protocolVersion === 5 ? connack.reasonCode : connack.returnCode) : null;

client.on('error', (err) => {
  const code = connackCode();
  if (code) {
    // MQTT.js reports a refusing CONNACK as an error carrying the return/reason code.
    if (opts.expectRefused) {
      finish(0, { ok: true, refused: true, reasonCode: code, message: err.message });
    } else {
      finish(1, { ok: false, refused: true, reasonCode: code, error: err.message, stage });
    }
    return;
  }
  finish(1, { ok: false, error: (err.message || String(err)).trim(), code: err.code, stage });
});

client.on('close', () => {
  if (opts.expectRefused && !connack) {
    finish(1, { ok: false, error: 'connection closed without a CONNACK', stage });
  } else {
    finish(1, { ok: false, error: 'connection closed', stage });
  }
});

client.on('message', (t, payload, packet) => {
  received.push({ topic: t, payload: payload.toString(), qos: packet.qos });
  if (received.length === 3) {
    received.sort((a, b) => a.payload.localeCompare(b.payload));
    finish(0, {
      ok: true, url: opts.url, protocolVersion: opts.protocolVersion, clientId, topic,
      sessionPresent: connack ? connack.sessionPresent : null, received,
    });
  }
});

client.on('connect', (ack) => {
  if (opts.expectRefused) {
    finish(1, { ok: false, error: 'connected, but the broker was expected to refuse', stage });
    return;
  }
  stage = 'subscribe';
  client.subscribe(topic, { qos: 1 }, (err, granted) => {
    if (err) return finish(1, { ok: false, error: `subscribe: ${err.message}`, stage });
    const g = granted && granted[0] ? granted[0].qos : undefined;
    if (g === undefined || g >= 0x80) {
      return finish(1, { ok: false, error: `subscription refused: ${g}`, stage });
    }
    stage = 'publish';
    [0, 1, 2].forEach((qos) => {
      client.publish(topic, `m${qos}-qos${qos}`, { qos }, (perr) => {
        if (perr) finish(1, { ok: false, error: `publish qos ${qos}: ${perr.message}`, stage });
      });
    });
    stage = 'receive';
  });
});
