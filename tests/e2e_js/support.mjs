// Process and client helpers for the end-to-end tests (run by tests/e2e_js/test_e2e_js.py with
// `node --test`). They start real processes: the gateway (`python -m gateway`) and the example
// services (`python examples/<name>/service.py`), on free loopback ports, against the NATS server
// given in NATS_URL; every process started here is stopped by its own handle.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { createRequire } from 'node:module';

export const REPO = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const require = createRequire(path.join(REPO, 'examples', 'package.json'));
export const ResClient = require('resclient').default;
export const WebSocket = require('ws');

export const PYTHON = process.env.PYTHON || 'python3';
export const NATS_URL = process.env.NATS_URL || 'nats://127.0.0.1:4222';
export const ARTIFACTS = process.env.E2E_ARTIFACTS || path.join(REPO, 'tests', 'e2e_js', 'artifacts');

// A port free a moment ago, drawn below the kernel's ephemeral range as tests/support/natsserver.py's
// free_port does: a port from that range can become any outgoing connection's local port meanwhile.
export async function freePort() {
  let low = 32768;
  try {
    low = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').split(/\s+/)[0]) || low;
  } catch {}
  for (let i = 0; i < 100 && low > 11000; i++) {
    const port = 10000 + Math.floor(Math.random() * (low - 10000));
    if (await listens(port)) return port;
  }
  return listens(0);
}

function listens(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(0));
    srv.listen(port, '127.0.0.1', () => {
      const bound = srv.address().port;
      srv.close(() => resolve(bound));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Poll `check` (sync or async, truthy = done) every 50 ms for at most `timeout` ms.
export async function waitFor(check, what, timeout = 10000) {
  const deadline = Date.now() + timeout;
  let last;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (err) {
      last = err;
    }
    await sleep(50);
  }
  throw new Error(`timed out after ${timeout} ms waiting for ${what}${last ? `: ${last}` : ''}`);
}

// `promise`, or a rejection after `ms` (a request sent just as the connection drops may never settle).
export function withTimeout(promise, ms) {
  let timer;
  const expire = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms); });
  return Promise.race([promise, expire]).finally(() => clearTimeout(timer));
}

function portOpen(port) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    sock.once('connect', () => { sock.destroy(); resolve(true); });
    sock.once('error', () => resolve(false));
  });
}

// A child process that is ready once `port` accepts connections; `stop()` ends it by PID (SIGTERM).
export class Proc {
  constructor(name, argv, port) {
    this.name = name;
    this.port = port;
    this.output = '';
    this.child = spawn(argv[0], argv.slice(1), { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (chunk) => { this.output = (this.output + chunk).slice(-20000); };
    this.child.stdout.on('data', keep);
    this.child.stderr.on('data', keep);
    this.exited = new Promise((resolve) => this.child.once('exit', (code, sig) => resolve(code ?? sig)));
  }

  // Resolves once the port accepts connections; otherwise stops the process (a gateway that cannot
  // reach NATS never opens its port, and would outlive the suite) and rejects with its output.
  async ready(timeout = 15000) {
    let gone = false;
    this.exited.then(() => { gone = true; });
    try {
      await waitFor(async () => {
        if (gone) throw new Error(`${this.name} exited early`);
        return portOpen(this.port);
      }, `${this.name} on port ${this.port}`, timeout);
    } catch (err) {
      await this.stop();
      err.message += `\n--- ${this.name} output ---\n${this.output}`;
      throw err;
    }
    return this;
  }

  async stop() {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 10000);
      await this.exited;
      clearTimeout(timer);
    }
  }
}

export async function startGateway(port, extra = []) {
  const argv = [PYTHON, '-m', 'gateway', '--nats', NATS_URL, '--addr', '127.0.0.1', '--port', String(port),
    '--adminport', '0', ...extra];
  return new Proc(`gateway:${port}`, argv, port).ready();
}

export async function startExample(name) {
  const port = await freePort();
  const argv = [PYTHON, path.join(REPO, 'examples', name, 'service.py'), '--nats', NATS_URL, '--http-port', String(port)];
  const proc = await new Proc(`example ${name}`, argv, port).ready();
  proc.url = `http://127.0.0.1:${port}/`;
  return proc;
}

// A resclient on Node's `ws` (Node 20 has no global WebSocket); `headers` go with the upgrade request.
// `allowSynchronousEvents: false` makes `ws` dispatch messages as browsers do, one per task: resclient
// handles a subscribe response in a promise callback, so when `ws` emitted a response and the event
// behind it (read in one chunk) in the same tick, resclient applied the event first and then the
// response's older data over it, and a resubscribed client kept a stale value (seen in the reconnect
// test under load: the gateway had sent the response, then the change event).
export function newClient(gatewayPort, headers = {}) {
  const url = `ws://127.0.0.1:${gatewayPort}`;
  const socket = () => new WebSocket(url, { headers, allowSynchronousEvents: false });
  return new ResClient(socket, { reconnectDelay: 300, subscribeStaleDelay: 300 });
}

// Resolves with the next `event` of `item` (a model or collection), or rejects after `timeout` ms.
export function nextEvent(item, event, timeout = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      item.off(event, handler);
      reject(new Error(`no ${event} event on ${item.getResourceId()} within ${timeout} ms`));
    }, timeout);
    const handler = (ev) => {
      clearTimeout(timer);
      item.off(event, handler);
      resolve(ev);
    };
    item.on(event, handler);
  });
}
