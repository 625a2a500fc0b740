// Load generator for the pyresgate benchmark suite.
//
// One Node process plays both sides of the gateway:
//   * a fast fake RES service on NATS (`nats` package): answers access.*, get.* and call.* requests
//     with pre-encoded replies and publishes change events;
//   * many WebSocket clients (`ws` package) that talk the RES client protocol to the gateway.
//
// Usage: node load.mjs '<json config>'   (bench/run.py builds the config)
// Prints exactly one JSON line with the results on stdout; progress goes to stderr.
//
// Every scenario checks correctness: change events carry a sequence number that every client checks
// (no lost, duplicated or reordered event), responses are matched by id and their content checked.
// CPU time of the gateway and nats-server is read from /proc/<pid>/stat at the start and the end of
// the measured phase; the load generator's own CPU time from process.cpuUsage().

import fs from 'node:fs';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { connect } from 'nats';
import WebSocket from 'ws';

const cfg = JSON.parse(process.argv[2]);
const te = new TextEncoder();
const log = (...a) => process.stderr.write(`[load ${cfg.scenario}] ${a.join(' ')}\n`);
const now = () => performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// CPU / memory probes

// A process and its descendants (the gateway's --workers processes are its children).
function treePids(pid) {
  const out = [pid];
  for (let i = 0; i < out.length && i < 64; i++) {
    try {
      for (const tid of fs.readdirSync(`/proc/${out[i]}/task`)) {
        const kids = fs.readFileSync(`/proc/${out[i]}/task/${tid}/children`, 'latin1').trim();
        if (kids) out.push(...kids.split(/\s+/).map(Number));
      }
    } catch {
      // the process ended meanwhile
    }
  }
  return out;
}

function oneCpuSec(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // rest[0] is field 3 (state); utime is field 14, stime field 15.
    return (Number(rest[11]) + Number(rest[12])) / (cfg.clkTck || 100);
  } catch {
    return 0;
  }
}

// CPU seconds of a process and all its descendants.
function procCpuSec(pid) {
  if (!pid) return null;
  return treePids(pid).reduce((sum, p) => sum + oneCpuSec(p), 0);
}

// read and write system calls (syscr + syscw of /proc/<pid>/io) of a process and its descendants:
// sockets included, epoll not. null when /proc does not tell (another user's process).
function procRwSyscalls(pid) {
  if (!pid) return null;
  let sum = 0;
  for (const p of treePids(pid)) {
    try {
      const io = fs.readFileSync(`/proc/${p}/io`, 'latin1');
      sum += Number(/syscr: (\d+)/.exec(io)[1]) + Number(/syscw: (\d+)/.exec(io)[1]);
    } catch {
      return null;
    }
  }
  return sum;
}

// System-wide busy CPU seconds (all cores) from /proc/stat, to show how much CPU other processes took.
function systemBusySec() {
  try {
    const line = fs.readFileSync('/proc/stat', 'latin1').split('\n')[0];
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0); // user..steal (guest is inside user)
    const idle = v[3] + v[4];
    return (total - idle) / (cfg.clkTck || 100);
  } catch {
    return null;
  }
}

// Resident memory of a process and all its descendants.
function procRssKb(pid) {
  let total = 0;
  for (const p of treePids(pid)) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${p}/status`, 'latin1'));
      if (m) total += Number(m[1]);
    } catch {
      // the process ended meanwhile
    }
  }
  return total;
}

class CpuMeter {
  start() {
    this.t0 = now();
    this.gw0 = procCpuSec(cfg.gwPid);
    this.gwIo0 = procRwSyscalls(cfg.gwPid);
    this.nats0 = procCpuSec(cfg.natsPid);
    this.self0 = process.cpuUsage();
    this.sys0 = systemBusySec();
  }
  stop() {
    const wall = (now() - this.t0) / 1000;
    const gw1 = procCpuSec(cfg.gwPid);
    const gwIo1 = procRwSyscalls(cfg.gwPid);
    const nats1 = procCpuSec(cfg.natsPid);
    const self = process.cpuUsage(this.self0);
    const sys1 = systemBusySec();
    const ours = (gw1 ?? 0) - (this.gw0 ?? 0) + ((nats1 ?? 0) - (this.nats0 ?? 0)) + (self.user + self.system) / 1e6;
    return {
      // CPU used on the whole machine by processes other than gateway, nats-server and load generator
      other_cpu_s: sys1 != null && this.sys0 != null ? Math.max(0, sys1 - this.sys0 - ours) : null,
      wall_s: wall,
      gw_cpu_s: gw1 != null && this.gw0 != null ? gw1 - this.gw0 : null,
      gw_rw_syscalls: gwIo1 != null && this.gwIo0 != null ? gwIo1 - this.gwIo0 : null,
      nats_cpu_s: nats1 != null && this.nats0 != null ? nats1 - this.nats0 : null,
      loadgen_cpu_s: (self.user + self.system) / 1e6,
    };
  }
}

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

function latStats(arr) {
  const s = Float64Array.from(arr).sort();
  return {
    n: s.length,
    min_ms: s.length ? s[0] : null,
    p50_ms: percentile(s, 50),
    p99_ms: percentile(s, 99),
    max_ms: s.length ? s[s.length - 1] : null,
  };
}

// ---------------------------------------------------------------------------------------------
// Fake service

const REPLY_ACCESS = te.encode('{"result":{"get":true,"call":"*"}}');
const REPLY_NULL = te.encode('{"result":null}');
const REPLY_TEST_MODEL = te.encode('{"result":{"model":{"seq":0,"ts":0}}}');
const getReplies = new Map();

function expectedModel(rid) {
  return rid === 'test.model' ? { seq: 0, ts: 0 } : { rid };
}

function getReply(rid) {
  let r = getReplies.get(rid);
  if (!r) {
    r = rid === 'test.model' ? REPLY_TEST_MODEL : te.encode(JSON.stringify({ result: { model: expectedModel(rid) } }));
    getReplies.set(rid, r);
  }
  return r;
}

const svcCount = { access: 0, get: 0, call: 0 };

async function startService() {
  const nc = await connect({ servers: cfg.nats, name: 'bench-service', pingInterval: 60000 });
  nc.subscribe('access.>', {
    callback: (err, msg) => {
      if (err) return;
      svcCount.access++;
      msg.respond(REPLY_ACCESS);
    },
  });
  nc.subscribe('get.>', {
    callback: (err, msg) => {
      if (err) return;
      svcCount.get++;
      msg.respond(getReply(msg.subject.slice(4)));
    },
  });
  nc.subscribe('call.>', {
    callback: (err, msg) => {
      if (err) return;
      svcCount.call++;
      msg.respond(REPLY_NULL);
    },
  });
  await nc.flush();
  return nc;
}

// ---------------------------------------------------------------------------------------------
// WebSocket client

const EVENT_PREFIX = '{"event":"test.model.change","data":{"values":{';
const NUM_RE = /^-?\d+(\.\d+)?([eE][+-]?\d+)?$/;

// The number after `key` in a flat JSON object text, or null.
function fieldNumber(s, key) {
  const i = s.indexOf(key);
  if (i < 0 || s.indexOf(key, i + 1) >= 0) return null;
  let j = i + key.length;
  let k = j;
  while (k < s.length && s.charCodeAt(k) !== 44 /* , */ && s.charCodeAt(k) !== 125 /* } */) k++;
  const t = s.slice(j, k);
  return NUM_RE.test(t) ? Number(t) : null;
}

let wsErrors = 0; // unexpected closes / socket errors after the client was set up
let closing = false;

class Client {
  constructor(index, url = cfg.ws) {
    this.index = index;
    this.url = url;
    this.nextId = 1;
    this.pending = new Map();
    this.onEvent = null;
    this.onFastEvent = null;
    this.ws = null;
  }

  open() {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url, { perMessageDeflate: false });
      this.ws = ws;
      let opened = false;
      ws.on('open', () => {
        opened = true;
        resolve();
      });
      ws.on('error', (e) => {
        if (!opened) reject(e);
        else if (!closing) wsErrors++;
      });
      ws.on('close', () => {
        if (opened && !closing) {
          wsErrors++;
          if (wsErrors <= 3) log(`client ${this.index}: connection closed by the gateway`);
        }
      });
      ws.on('message', (data) => this.onMessage(data));
    });
  }

  onMessage(data) {
    // Fast path for the hot case (change events of the fan-out scenarios): a cheap prefix test and
    // two number scans instead of a full JSON.parse; anything else takes the full parse below.
    if (this.onEvent !== null && data.length < 200 && data[2] === 0x65 /* e */) {
      const s = data.toString('latin1');
      if (s.startsWith(EVENT_PREFIX) && s.endsWith('}}}')) {
        const seq = fieldNumber(s, '"seq":');
        const ts = fieldNumber(s, '"ts":');
        if (seq !== null && ts !== null) {
          this.onFastEvent(seq, ts);
          return;
        }
      }
    }
    const m = JSON.parse(data);
    if (m.id !== undefined) {
      const p = this.pending.get(m.id);
      if (p) {
        this.pending.delete(m.id);
        p(m);
      } else {
        protoErrors.push(`client ${this.index}: response with unknown id ${m.id}`);
      }
    } else if (m.event !== undefined) {
      if (this.onEvent) this.onEvent(m);
      else protoErrors.push(`client ${this.index}: unexpected event ${m.event}`);
    }
  }

  request(method, params) {
    const id = this.nextId++;
    const msg = params === undefined ? { id, method } : { id, method, params };
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.ws.send(JSON.stringify(msg));
    });
  }

  // Sends a request and calls cb(response, latencyMs) without allocating a promise.
  requestCb(method, params, cb) {
    const id = this.nextId++;
    const t0 = now();
    this.pending.set(id, (m) => cb(m, now() - t0));
    this.ws.send(params === undefined ? `{"id":${id},"method":"${method}"}` : JSON.stringify({ id, method, params }));
  }

  async handshake() {
    const r = await this.request('version', { protocol: '1.2.3' });
    if (!r.result || typeof r.result.protocol !== 'string') throw new Error(`version failed: ${JSON.stringify(r)}`);
  }

  async subscribe(rid) {
    const r = await this.request(`subscribe.${rid}`);
    checkSubscribe(r, rid, this.index);
  }
}

const protoErrors = []; // correctness failures (wrong content, unknown ids, ...)

function checkSubscribe(r, rid, index) {
  const got = r.result && r.result.models && r.result.models[rid];
  const want = expectedModel(rid);
  if (!got || JSON.stringify(got) !== JSON.stringify(want)) {
    protoErrors.push(`client ${index}: subscribe ${rid}: unexpected response ${JSON.stringify(r).slice(0, 200)}`);
    return false;
  }
  return true;
}

async function openClients(n, { rid = null, handshake = true, concurrency = 100, url = cfg.ws } = {}) {
  const clients = Array.from({ length: n }, (_, i) => new Client(i, url));
  let next = 0;
  const t0 = now();
  async function worker() {
    while (next < n) {
      const c = clients[next++];
      await c.open();
      if (handshake) await c.handshake();
      if (rid) await c.subscribe(rid);
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  log(`${n} clients connected${rid ? ` and subscribed to ${rid}` : ''} in ${((now() - t0) / 1000).toFixed(1)} s`);
  return clients;
}

function closeClients(clients) {
  closing = true;
  for (const c of clients) {
    try {
      c.ws.terminate();
    } catch {}
  }
}

// ---------------------------------------------------------------------------------------------
// Event sequence checking (B1, B2)

class SeqChecker {
  constructor(clients, nEvents) {
    this.clients = clients;
    this.nEvents = nEvents;
    this.last = new Int32Array(clients.length);
    this.gaps = 0;
    this.dupOrReorder = 0;
    this.badEvent = 0;
    this.delivered = 0;
  }
  attach(onSeq) {
    const last = this.last;
    const handleSeq = (i, seq, ts) => {
      const prev = last[i];
      if (seq === prev + 1) {
        // in order
      } else if (seq <= prev) {
        this.dupOrReorder++;
        if (this.dupOrReorder <= 3) protoErrors.push(`client ${i}: seq ${seq} after ${prev} (duplicate or reordered)`);
      } else {
        this.gaps++;
        if (this.gaps <= 3) protoErrors.push(`client ${i}: seq ${seq} after ${prev} (lost ${seq - prev - 1})`);
      }
      if (seq > prev) last[i] = seq;
      this.delivered++;
      onSeq(seq, ts);
    };
    this.clients.forEach((c, i) => {
      c.onFastEvent = (seq, ts) => handleSeq(i, seq, ts);
      c.onEvent = (m) => {
        const v = m.data && m.data.values;
        if (m.event !== 'test.model.change' || !v || typeof v.seq !== 'number' || typeof v.ts !== 'number') {
          this.badEvent++;
          if (this.badEvent <= 3) protoErrors.push(`client ${i}: bad event ${JSON.stringify(m).slice(0, 200)}`);
          return;
        }
        handleSeq(i, v.seq, v.ts);
      };
    });
  }
  summary() {
    let missing = 0;
    let behind = 0;
    let minLast = Infinity;
    for (const l of this.last) {
      if (l < this.nEvents) {
        behind++;
        missing += this.nEvents - l;
      }
      if (l < minLast) minLast = l;
    }
    return {
      expected: this.nEvents * this.clients.length,
      delivered: this.delivered,
      clients_behind: behind,
      events_missing_at_end: missing,
      min_last_seq: minLast,
      gaps: this.gaps,
      dup_or_reorder: this.dupOrReorder,
      bad_events: this.badEvent,
    };
  }
}

function publishEvent(nc, seq) {
  nc.publish('event.test.model.change', te.encode(`{"values":{"seq":${seq},"ts":${now()}}}`));
}

// ---------------------------------------------------------------------------------------------
// Scenarios

// B1: fan-out throughput with windowed flow control: events are published in windows of `window`
// events; at most `inflight` windows are outstanding; a window is done when every client got all
// of its events.
async function scenarioFanoutThroughput(nc) {
  const nClients = cfg.clients, nEvents = cfg.events, W = cfg.window, inflight = cfg.inflight;
  const clients = await openClients(nClients, { rid: 'test.model' });
  const nWin = Math.ceil(nEvents / W);
  const winCount = new Int32Array(nWin);
  const winSize = (w) => Math.min(W, nEvents - w * W);
  const checker = new SeqChecker(clients, nEvents);
  let published = 0;
  let done = 0; // completed windows (any order)
  let lastProgress = now();
  let finish;
  const finished = new Promise((r) => (finish = r));
  const meter = new CpuMeter();
  const publishWindow = (w) => {
    for (let k = 0; k < winSize(w); k++) publishEvent(nc, ++published);
  };
  checker.attach((seq) => {
    const w = ((seq - 1) / W) | 0;
    if (++winCount[w] === winSize(w) * nClients) {
      done++;
      lastProgress = now();
      const nextW = w + inflight;
      if (nextW < nWin) publishWindow(nextW);
      if (done === nWin) finish(true);
    }
  });
  await sleep(200);
  meter.start();
  for (let w = 0; w < Math.min(inflight, nWin); w++) publishWindow(w);
  const stall = setInterval(() => {
    if (now() - lastProgress > cfg.stallMs) finish(false);
  }, 250);
  const ok = await finished;
  clearInterval(stall);
  const m = meter.stop();
  if (!ok) {
    await sleep(500);
    protoErrors.push(`stalled: no window completed for ${cfg.stallMs} ms (published ${published} of ${nEvents})`);
  }
  const sum = checker.summary();
  closeClients(clients);
  return {
    ok: ok && sum.gaps === 0 && sum.dup_or_reorder === 0 && sum.clients_behind === 0 && sum.bad_events === 0,
    ...m,
    ...sum,
    published,
    msgs_per_s: sum.delivered / m.wall_s,
    gw_cpu_us_per_msg: m.gw_cpu_s != null ? (m.gw_cpu_s * 1e6) / sum.delivered : null,
    loadgen_cpu_us_per_msg: (m.loadgen_cpu_s * 1e6) / sum.delivered,
  };
}

// B2: fan-out latency: events at a fixed rate, publish-to-receive latency measured in-process.
async function scenarioFanoutLatency(nc) {
  const nClients = cfg.clients, rate = cfg.rate, nEvents = Math.round(rate * cfg.duration);
  const clients = await openClients(nClients, { rid: 'test.model' });
  const checker = new SeqChecker(clients, nEvents);
  const lat = new Float64Array(nEvents * nClients);
  let nLat = 0;
  checker.attach((seq, ts) => {
    if (nLat < lat.length) lat[nLat++] = now() - ts;
  });
  await sleep(200);
  // The load generator's own event-loop delay: if it is large, part of the latency is ours.
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  const meter = new CpuMeter();
  meter.start();
  const t0 = now();
  const period = 1000 / rate;
  for (let i = 1; i <= nEvents; i++) {
    const due = t0 + (i - 1) * period;
    const wait = due - now();
    if (wait > 1) await sleep(wait);
    publishEvent(nc, i);
  }
  const pubWall = (now() - t0) / 1000;
  // Wait for the tail: every client has every event, or no progress for stallMs.
  let lastDelivered = -1, lastChange = now();
  while (checker.delivered < nEvents * nClients) {
    if (checker.delivered !== lastDelivered) {
      lastDelivered = checker.delivered;
      lastChange = now();
    } else if (now() - lastChange > cfg.stallMs) {
      protoErrors.push(`stalled: ${checker.delivered} of ${nEvents * nClients} delivered`);
      break;
    }
    await sleep(20);
  }
  const m = meter.stop();
  loopDelay.disable();
  const sum = checker.summary();
  closeClients(clients);
  return {
    ok: sum.gaps === 0 && sum.dup_or_reorder === 0 && sum.clients_behind === 0 && sum.bad_events === 0,
    ...m,
    ...sum,
    loadgen_loop_delay_p99_ms: loopDelay.percentile(99) / 1e6,
    loadgen_loop_delay_max_ms: loopDelay.max / 1e6,
    publish_rate: nEvents / pubWall,
    delivered_msgs_per_s: sum.delivered / m.wall_s,
    ...latStats(lat.subarray(0, nLat)),
    gw_cpu_us_per_msg: m.gw_cpu_s != null ? (m.gw_cpu_s * 1e6) / sum.delivered : null,
  };
}

// Calls answered with something other than the fake service's reply (payload null); the first
// three are reported.
let badCalls = 0;
function checkCall(c, m) {
  if (!m.result || m.result.payload !== null || m.error) {
    badCalls++;
    if (badCalls <= 3) protoErrors.push(`client ${c.index}: bad call response ${JSON.stringify(m).slice(0, 200)}`);
  }
}

// Sequential calls for `ms`: every client calls again as soon as it has its answer, and
// `onAnswer(client, message, latencyMs)` sees each answer. Resolves true once the last answer is in,
// false if that has not happened `cfg.stallMs` after the end (a stalled gateway).
function callLoop(clients, ms, onAnswer) {
  return new Promise((resolve) => {
    let active = clients.length;
    const stopAt = now() + ms;
    const timer = setTimeout(() => resolve(false), ms + cfg.stallMs);
    const loop = (c) => {
      c.requestCb('call.test.model.ping', null, (m, latency) => {
        onAnswer(c, m, latency);
        if (now() < stopAt) loop(c);
        else if (--active === 0) {
          clearTimeout(timer);
          resolve(true);
        }
      });
    };
    for (const c of clients) loop(c);
  });
}

// B3: call round trip: each client does sequential calls for `duration` seconds.
async function scenarioCall() {
  const clients = await openClients(cfg.clients, { rid: 'test.model' });
  const lat = [];
  let calls = 0;
  const meter = new CpuMeter();
  await sleep(200);
  meter.start();
  const ok = await callLoop(clients, cfg.duration * 1000, (c, m, ms) => {
    checkCall(c, m);
    calls++;
    lat.push(ms);
  });
  const m = meter.stop();
  if (!ok) {
    const waiting = clients.filter((c) => c.pending.size > 0).length;
    protoErrors.push(`stalled: ${waiting} clients still waiting for a call response`);
  }
  closeClients(clients);
  return {
    ok: ok && badCalls === 0,
    ...m,
    calls,
    bad_responses: badCalls,
    calls_per_s: calls / m.wall_s,
    ...latStats(lat),
    gw_cpu_us_per_call: m.gw_cpu_s != null ? (m.gw_cpu_s * 1e6) / calls : null,
    gw_rw_syscalls_per_call: m.gw_rw_syscalls != null ? m.gw_rw_syscalls / calls : null,
    loadgen_cpu_us_per_call: (m.loadgen_cpu_s * 1e6) / calls,
  };
}

// CPU nanoseconds a process's threads have run (/proc/<pid>/task/*/schedstat, first field): finer
// than /proc/<pid>/stat's clock ticks, which short windows need. null when /proc does not tell.
function procCpuNs(pid) {
  let sum = 0;
  try {
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      sum += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'latin1').split(' ')[0]);
    }
  } catch {
    return null;
  }
  return sum;
}

// B7's paired B3: the call scenario against several gateways on one NATS (`cfg.targets`, each
// {ws, pid}), taking turns in short windows: in each round every gateway in turn gets B3's load
// (its own clients doing sequential calls) for `cfg.windowMs`, and its calls in flight finish
// before the next window starts; the order within a round rotates. A machine whose speed drifts
// (other tenants of the host) so hits every gateway of a round alike, and each gateway's change
// against the first is taken round by round. A gateway's CPU for a round runs from the start of its
// window to the start of its next one (the last: to a pause after the rounds), so work it does
// after its window (a span export thread catching up) counts too.
async function scenarioCallRotate() {
  const targets = cfg.targets;
  const sets = [];
  for (const t of targets) sets.push(await openClients(cfg.clients, { rid: 'test.model', url: t.ws }));
  const per = targets.map(() => ({ calls: [], cpuAt: [], wallMs: [] }));
  // Each window resolves with its calls, or null if its answers stalled.
  // Closed loop (as B3): every client calls again as soon as it has its answer.
  const closedWindow = async (clients, ms) => {
    let calls = 0;
    const ok = await callLoop(clients, ms, (c, m) => {
      checkCall(c, m);
      calls++;
    });
    return ok ? calls : null;
  };
  // Fixed rate (`cfg.rate` calls/s): every 2 ms, the calls due by then go to idle clients; a call
  // due while every client waits for an answer is counted as missed (the gateway fell behind).
  let missed = 0;
  const rateWindow = (clients, ms) =>
    new Promise((resolve) => {
      const idle = [...clients];
      let calls = 0;
      let started = 0;
      let inFlight = 0;
      let stopped = false;
      const t0 = now();
      const stall = setTimeout(() => resolve(null), ms + cfg.stallMs);
      const finish = () => {
        clearTimeout(stall);
        resolve(calls);
      };
      const answered = (c, m) => {
        checkCall(c, m);
        calls++;
        inFlight--;
        idle.push(c);
        if (stopped && inFlight === 0) finish();
      };
      const tick = setInterval(() => {
        const elapsed = Math.min(now() - t0, ms);
        const due = Math.floor((cfg.rate * elapsed) / 1000);
        while (started < due) {
          started++;
          const c = idle.pop();
          if (c === undefined) {
            missed++;
            continue;
          }
          inFlight++;
          c.requestCb('call.test.model.ping', null, (m) => answered(c, m));
        }
        if (elapsed >= ms) {
          clearInterval(tick);
          stopped = true;
          if (inFlight === 0) finish();
        }
      }, 2);
    });
  const window = cfg.rate ? rateWindow : closedWindow;
  await sleep(200);
  for (let i = 0; i < targets.length; i++) await window(sets[i], 300); // warm-up, not counted
  await sleep(500);
  const meter = new CpuMeter();
  meter.start();
  let stalled = false;
  for (let r = 0; r < cfg.rounds && !stalled; r++) {
    for (let k = 0; k < targets.length && !stalled; k++) {
      const i = (k + r) % targets.length;
      per[i].cpuAt.push(procCpuNs(targets[i].pid));
      const t0 = now();
      const calls = await window(sets[i], cfg.windowMs);
      if (calls === null) {
        stalled = true;
        protoErrors.push(`stalled: gateway ${i} did not answer every call of round ${r + 1} in time`);
      } else {
        per[i].calls.push(calls);
        per[i].wallMs.push(now() - t0);
      }
    }
  }
  await sleep(1000); // the last windows' trailing work
  for (let i = 0; i < targets.length; i++) per[i].cpuAt.push(procCpuNs(targets[i].pid));
  const m = meter.stop();
  for (const clients of sets) closeClients(clients);
  const rounds = Math.min(...per.map((p) => p.calls.length));
  const cpuUs = (p, k) => (p.cpuAt[k] == null || p.cpuAt[k + 1] == null ? null : (p.cpuAt[k + 1] - p.cpuAt[k]) / 1000);
  return {
    ok: !stalled && badCalls === 0,
    wall_s: m.wall_s,
    loadgen_cpu_s: m.loadgen_cpu_s,
    other_cpu_s: m.other_cpu_s,
    bad_responses: badCalls,
    rounds,
    window_ms: cfg.windowMs,
    rate: cfg.rate || null,
    missed_calls: missed,
    // per gateway (in the order of cfg.targets), per round
    windows: per.map((p) => ({
      calls: p.calls.slice(0, rounds),
      calls_per_s: p.calls.slice(0, rounds).map((c, k) => (c * 1000) / p.wallMs[k]),
      gw_cpu_us_per_call: p.calls.slice(0, rounds).map((c, k) => (cpuUs(p, k) == null ? null : cpuUs(p, k) / c)),
    })),
  };
}

// B4 helper: keeps one client subscribed to test.model so the model stays cached while wrk runs.
async function scenarioHold() {
  const clients = await openClients(1, { rid: 'test.model' });
  process.stdout.write(JSON.stringify({ ready: true }) + '\n');
  await new Promise((r) => process.stdin.on('end', r).on('data', () => {}).resume());
  closeClients(clients);
  return { ok: protoErrors.length === 0 };
}

// B5: subscribe storm: connected clients each send `resources` subscribe requests at once.
async function scenarioSubscribeStorm() {
  const nClients = cfg.clients, k = cfg.resources;
  const clients = await openClients(nClients, { concurrency: 200 });
  const rids = (i) =>
    Array.from({ length: k }, (_, j) => (cfg.uniqueResources ? `test.b5.c${i}.r${j + 1}` : `test.b5.r${j + 1}`));
  const expected = nClients * k;
  const lat = new Float64Array(expected);
  let n = 0, bad = 0;
  let finish;
  const finished = new Promise((r) => (finish = r));
  await sleep(200);
  const meter = new CpuMeter();
  meter.start();
  clients.forEach((c, i) => {
    for (const rid of rids(i)) {
      c.requestCb(`subscribe.${rid}`, undefined, (m, ms) => {
        if (!checkSubscribe(m, rid, i)) bad++;
        lat[n++] = ms;
        if (n === expected) finish(true);
      });
    }
  });
  const timer = setTimeout(() => finish(false), cfg.stallMs * 4);
  const ok = await finished;
  clearTimeout(timer);
  const m = meter.stop();
  if (!ok) protoErrors.push(`stalled: ${n} of ${expected} subscribe responses`);
  if (cfg.uniqueResources && (svcCount.get !== expected || svcCount.access !== expected)) {
    // cold cache: every subscription must cost the service exactly one access and one get request
    protoErrors.push(`service saw ${svcCount.access} access and ${svcCount.get} get requests, expected ${expected} each`);
  }
  closeClients(clients);
  return {
    ok: ok && bad === 0,
    ...m,
    subscriptions: n,
    bad_responses: bad,
    subs_per_s: n / m.wall_s,
    ...latStats(lat.subarray(0, n)),
    gw_cpu_us_per_sub: m.gw_cpu_s != null ? (m.gw_cpu_s * 1e6) / n : null,
    service_requests: { ...svcCount },
  };
}

// B8: connection rate: `clients` new clients, each connect + version + subscribe (test.model, cached
// after the first), `concurrency` at a time; every version and subscribe response is checked.
async function scenarioConnectRate() {
  const n = cfg.clients;
  const lat = new Float64Array(n);
  await openClients(1, { rid: 'test.model' }); // warm: test.model cached, access cached per connection only
  await sleep(200);
  const meter = new CpuMeter();
  meter.start();
  const clients = Array.from({ length: n }, (_, i) => new Client(i));
  let next = 0;
  async function worker() {
    while (next < n) {
      const i = next++;
      const c = clients[i];
      const t0 = now();
      await c.open();
      await c.handshake();
      await c.subscribe('test.model');
      lat[i] = now() - t0;
    }
  }
  const all = Promise.all(Array.from({ length: Math.min(cfg.concurrency, n) }, worker));
  const timeout = sleep(cfg.stallMs * 4).then(() => false);
  const ok = await Promise.race([all.then(() => true), timeout]);
  const m = meter.stop();
  if (!ok) protoErrors.push(`stalled: ${next} of ${n} clients started within ${cfg.stallMs * 4} ms`);
  closeClients(clients);
  return {
    ok,
    ...m,
    connections: n,
    conns_per_s: n / m.wall_s,
    ...latStats(lat),
    gw_cpu_us_per_conn: m.gw_cpu_s != null ? (m.gw_cpu_s * 1e6) / n : null,
  };
}

// B9: reconnect storm. `clients` clients on gateway A (cfg.ws) each subscribe `resources` distinct
// resources; then gateway A is killed (SIGKILL, pid cfg.dropPid) and every client does what
// resclient does: reconnect at once when a connected socket closes, retry every 3 s while a connect
// fails, then version + resubscribe of every resource it held, to gateway B (cfg.ws2, cold cache).
// Measured: time from the kill until every client has all its data again, and gateway B's CPU.
const RESCLIENT_RECONNECT_DELAY_MS = 3000;

async function scenarioReconnectStorm() {
  const n = cfg.clients, k = cfg.resources;
  const rids = (i) => Array.from({ length: k }, (_, j) => `test.b9.c${i}.r${j + 1}`);
  const clients = await openClients(n, { concurrency: 200 });
  await Promise.all(clients.map((c, i) => Promise.all(rids(i).map((rid) => c.subscribe(rid)))));
  if (protoErrors.length) return { ok: false };
  log(`${n} clients subscribed to ${n * k} resources on gateway A`);
  const before = { ...svcCount };
  await sleep(300);
  let restored = 0, attempts = 0, retries = 0, bad = 0;
  const lat = new Float64Array(n);
  let finish;
  const finished = new Promise((r) => (finish = r));
  const meter = new CpuMeter();
  let t0;
  const resubscribe = (c, i) => {
    let left = k;
    c.requestCb('version', { protocol: '1.2.1' }, (r) => {
      if (!r.result || typeof r.result.protocol !== 'string') {
        bad++;
        protoErrors.push(`client ${i}: version failed after reconnect: ${JSON.stringify(r).slice(0, 200)}`);
      }
      for (const rid of rids(i)) {
        c.requestCb(`subscribe.${rid}`, undefined, (m) => {
          if (!checkSubscribe(m, rid, i)) bad++;
          if (--left === 0) {
            lat[restored] = now() - t0;
            if (++restored === n) finish(true);
          }
        });
      }
    });
  };
  const reconnect = (c, i) => {
    attempts++;
    const ws = new WebSocket(cfg.ws2, { perMessageDeflate: false });
    let opened = false;
    ws.on('open', () => {
      opened = true;
      c.ws = ws;
      c.pending.clear();
      resubscribe(c, i);
    });
    ws.on('message', (data) => c.onMessage(data));
    ws.on('error', () => {});
    ws.on('close', () => {
      if (!opened) {
        retries++;
        setTimeout(() => reconnect(c, i), RESCLIENT_RECONNECT_DELAY_MS);
      } else if (!closing) {
        wsErrors++;
      }
    });
  };
  clients.forEach((c, i) => {
    c.ws.removeAllListeners('close');
    c.ws.removeAllListeners('error');
    c.ws.on('error', () => {});
    c.ws.on('close', () => reconnect(c, i)); // resclient: a connected socket closed, reconnect with no delay
  });
  meter.start();
  t0 = now();
  process.kill(cfg.dropPid, 'SIGKILL');
  const timer = setTimeout(() => finish(false), cfg.stallMs * 4);
  const ok = await finished;
  clearTimeout(timer);
  const m = meter.stop();
  if (!ok) protoErrors.push(`stalled: ${restored} of ${n} clients restored`);
  const expected = n * k;
  const svc = { access: svcCount.access - before.access, get: svcCount.get - before.get };
  if (ok && (svc.get !== expected || svc.access !== expected)) {
    protoErrors.push(`gateway B sent ${svc.access} access and ${svc.get} get requests, expected ${expected} each`);
  }
  closeClients(clients);
  const sorted = Float64Array.from(lat.subarray(0, restored)).sort();
  return {
    ok: ok && bad === 0,
    ...m,
    clients_restored: restored,
    subscriptions: restored * k,
    restore_all_ms: restored === n ? sorted[n - 1] : null,
    restore_p50_ms: percentile(sorted, 50),
    connect_attempts: attempts,
    connect_retries: retries,
    resubs_per_s: (restored * k) / m.wall_s,
    gw_cpu_us_per_sub: m.gw_cpu_s != null && restored ? (m.gw_cpu_s * 1e6) / (restored * k) : null,
    service_requests_b: svc,
  };
}

// B6: memory per idle connection holding one subscription.
async function scenarioMemory() {
  const warm = await openClients(10, { rid: 'test.model' });
  await sleep(1000);
  const rss0 = procRssKb(cfg.gwPid);
  const clients = await openClients(cfg.clients, { rid: 'test.model', concurrency: 200 });
  await sleep(cfg.settleMs);
  const rss1 = procRssKb(cfg.gwPid);
  // Check that all connections are still alive and subscribed: a final event reaches everybody.
  const all = warm.concat(clients);
  const checker = new SeqChecker(all, 1);
  checker.attach(() => {});
  publishEvent(globalThis.serviceConn, 1);
  const t0 = now();
  while (checker.delivered < all.length && now() - t0 < cfg.stallMs) await sleep(20);
  const sum = checker.summary();
  closeClients(all);
  return {
    ok: sum.clients_behind === 0 && sum.gaps === 0 && sum.dup_or_reorder === 0,
    connections: cfg.clients,
    rss_before_kb: rss0,
    rss_after_kb: rss1,
    kb_per_conn: (rss1 - rss0) / cfg.clients,
    check_event_delivered: sum.delivered,
  };
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const nc = await startService();
  globalThis.serviceConn = nc;
  const scenarios = {
    fanout: scenarioFanoutThroughput,
    latency: scenarioFanoutLatency,
    call: scenarioCall,
    callRotate: scenarioCallRotate,
    hold: scenarioHold,
    storm: scenarioSubscribeStorm,
    memory: scenarioMemory,
    connect: scenarioConnectRate,
    reconnect: scenarioReconnectStorm,
  };
  const fn = scenarios[cfg.scenario];
  if (!fn) throw new Error(`unknown scenario ${cfg.scenario}`);
  let res;
  try {
    res = await fn(nc);
  } catch (e) {
    res = { ok: false, exception: String(e && e.stack ? e.stack : e) };
  }
  res.ws_errors = wsErrors;
  res.errors = protoErrors.slice(0, 10);
  res.error_count = protoErrors.length;
  res.service_requests = { ...svcCount };
  if (wsErrors > 0 || protoErrors.length > 0) res.ok = false;
  process.stdout.write(JSON.stringify(res) + '\n');
  await nc.close().catch(() => {});
  process.exit(0);
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ ok: false, exception: String(e && e.stack ? e.stack : e) }) + '\n');
  process.exit(1);
});
