// The browser tests' world: a real `kefu serve` on a loopback port, a host
// site that embeds the widget under a strict CSP, Debian's Chromium, and a
// scripted agent speaking the contract over a plain WebSocket.

import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { crc32, deflateSync } from 'node:zlib';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import WebSocket from 'ws';

const ROOT = resolve(__dirname, '../..');
export const KEFU_BIN = process.env.KEFU_BIN ?? join(ROOT, 'target/debug/kefu');
export const SHOTS = join(ROOT, 'web/e2e/screenshots');
const SECRET = 'e2e-secret-that-is-long-enough-0123456789abcdef';

/** One `kefu serve` with its own data dir, stopped and removed by `stop`. */
export class Kefu {
  private constructor(
    readonly url: string,
    readonly dataDir: string,
    private readonly child: ChildProcess,
  ) {}

  static async start(extra: string[] = []): Promise<Kefu> {
    const dataDir = mkdtempSync(join(tmpdir(), 'kefu-e2e-'));
    const args = ['serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir, '--secret', SECRET, ...extra];
    if (process.env.KEFU_E2E_WEB_DIR) args.push('--web-dir', process.env.KEFU_E2E_WEB_DIR);
    const child = spawn(KEFU_BIN, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn' },
    });
    let log = '';
    child.stderr!.on('data', (d) => (log += d));
    const url = await new Promise<string>((ok, fail) => {
      const timer = setTimeout(() => fail(new Error(`kefu did not start in 20 s:\n${log}`)), 20_000);
      let out = '';
      child.stdout!.on('data', (d) => {
        out += d;
        const m = /serving on (http:\/\/\S+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          ok(m[1]);
        }
      });
      child.on('exit', (code) => fail(new Error(`kefu exited with ${code}:\n${log}`)));
    });
    return new Kefu(url, dataDir, child);
  }

  /** Creates an agent account with `kefu agent add`. */
  addAgent(id: string, name: string, password: string): void {
    execFileSync(KEFU_BIN, ['agent', 'add', '--id', id, '--name', name, '--password-stdin', '--data-dir', this.dataDir], {
      input: `${password}\n`,
    });
  }

  /** A token from `kefu token`, as an operator's backend would mint one. */
  token(user: string, role: 'customer' | 'agent' | 'admin', name?: string): string {
    const args = ['token', '--user', user, '--role', role, '--secret', SECRET, '--ttl', '1h'];
    if (name) args.push('--name', name);
    return execFileSync(KEFU_BIN, args).toString().trim();
  }

  async api<T = any>(token: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
    const res = await fetch(this.url + path, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null) {
      const exited = new Promise((ok) => this.child.once('exit', ok));
      this.child.kill('SIGTERM');
      await Promise.race([exited, sleep(5_000)]);
      if (this.child.exitCode === null) this.child.kill('SIGKILL');
    }
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/**
 * A site on another origin that embeds the widget with one script tag, under
 * a Content-Security-Policy allowing only its own scripts and Kefu's script
 * and frame; `settings` become `window.kefuSettings` through a script file,
 * since the policy forbids inline script.
 */
export class HostSite {
  private constructor(readonly url: string, private readonly server: Server) {}

  static async start(kefu: Kefu, settings: Record<string, unknown> = {}): Promise<HostSite> {
    const kefuOrigin = new URL(kefu.url).origin;
    const csp = [
      "default-src 'none'",
      `script-src 'self' ${kefuOrigin}`,
      `frame-src ${kefuOrigin}`,
      "style-src 'self'",
      "img-src 'self'",
    ].join('; ');
    const pages: Record<string, [string, string]> = {
      '/': [
        'text/html',
        `<!doctype html><html><head><meta charset="utf-8"><title>Acme Shop</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/site.css"></head>
<body><header><h1>Acme Shop</h1></header>
<main><p>Spring collection: everything 20% off.</p><button id="buy">Buy now</button></main>
<script src="/settings.js"></script>
<script src="${kefu.url}/widget.js" async></script></body></html>`,
      ],
      '/settings.js': ['text/javascript', `window.kefuSettings = ${JSON.stringify(settings)};`],
      // Hostile page styles: the widget must look the same under them.
      '/site.css': [
        'text/css',
        `body{font-family:Georgia,serif;margin:0;background:#fafaf5}header{background:#333;color:#fff;padding:12px 24px}
main{padding:24px}button{all:unset;background:#c00;color:#fff;padding:8px 16px}
iframe{border:8px dashed red!important}div{box-sizing:content-box}`,
      ],
    };
    const server = createServer((req, res) => {
      const page = pages[(req.url ?? '/').split('?')[0]];
      if (!page) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': page[0], 'content-security-policy': csp });
      res.end(page[1]);
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.2', ok));
    const addr = server.address() as { port: number };
    return new HostSite(`http://127.0.0.2:${addr.port}`, server);
  }

  async stop(): Promise<void> {
    await new Promise((ok) => this.server.close(ok));
  }
}

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
}

export const DESKTOP = { viewport: { width: 1280, height: 800 } };
export const PHONE = {
  viewport: { width: 390, height: 844 },
  deviceScaleFactor: 2,
  isMobile: true,
  hasTouch: true,
  userAgent:
    'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1',
};

/**
 * A browser context that records every dialog and every console error, so
 * a test can say that no `alert` opened and the page logged no CSP violation.
 */
export async function person(browser: Browser, options: Parameters<Browser['newContext']>[0] = {}) {
  const context = await browser.newContext({ locale: 'en-US', ...options });
  const dialogs: string[] = [];
  const errors: string[] = [];
  context.on('page', (page) => watch(page, dialogs, errors));
  return { context, dialogs, errors };
}

function watch(page: Page, dialogs: string[], errors: string[]) {
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(String(e)));
}

export async function shot(page: Page, name: string): Promise<void> {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`) });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((ok) => setTimeout(ok, ms));
}

/** Polls `check` until it returns a value, or fails after `ms`. */
export async function eventually<T>(check: () => T | undefined | Promise<T | undefined>, what: string, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value as T;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

export type Frame = Record<string, any>;

/** A WebSocket authenticated with a first `auth` frame. */
async function authenticatedSocket(kefu: Kefu, token: string): Promise<{ ws: WebSocket; frames: Frame[] }> {
  const ws = new WebSocket(kefu.url.replace(/^http/, 'ws') + '/ws');
  const frames: Frame[] = [];
  ws.on('message', (data) => frames.push(JSON.parse(String(data)) as Frame));
  await new Promise((ok, fail) => {
    ws.once('open', ok);
    ws.once('error', fail);
  });
  ws.send(JSON.stringify({ action: 'auth', content: token, ext: { device: 'script' } }));
  await eventually(() => frames.find((f) => f.action === 'auth'), 'auth ack');
  return { ws, frames };
}

/**
 * A person played by a script over the WebSocket contract: every pushed
 * message confirmed, every frame kept for the test to look at.
 */
class ScriptedPerson {
  private seq = 0;

  protected constructor(
    protected readonly ws: WebSocket,
    readonly frames: Frame[],
    readonly token: string,
    readonly userId: string,
    private readonly category: 'customer' | 'manager',
  ) {
    ws.on('message', (data) => {
      const frame = JSON.parse(String(data)) as Frame;
      if (typeof frame.id === 'number' && frame.category !== 'ack') {
        ws.send(JSON.stringify({ category: 'receive', id: frame.id }));
      }
    });
  }

  async waitFor(pred: (f: Frame) => boolean, what: string, ms?: number): Promise<Frame> {
    return eventually(() => this.frames.find(pred), what, ms);
  }

  /** Sends a message and waits for its ack, a success or an error. */
  protected async send(content: string, fields: Frame): Promise<Frame> {
    const client_msg_id = `${this.category}-${++this.seq}-${Date.now()}`;
    const frame = { category: this.category, action: 'send', kind: 'text', content, client_msg_id, ...fields };
    this.ws.send(JSON.stringify(frame));
    return this.waitFor((f) => f.category === 'ack' && f.client_msg_id === client_msg_id, `ack of ${content}`);
  }

  protected frame(fields: Frame): void {
    this.ws.send(JSON.stringify({ category: this.category, ...fields }));
  }

  read(taskId: number, upTo: number): void {
    this.frame({ action: 'read', task_id: taskId, quote: upTo });
  }

  close(): void {
    this.ws.close();
  }
}

/** An agent played by a script, with a token from `kefu token`. */
export class ScriptedAgent extends ScriptedPerson {
  static async connect(kefu: Kefu, userId: string, name: string): Promise<ScriptedAgent> {
    const token = kefu.token(userId, 'agent', name);
    const { ws, frames } = await authenticatedSocket(kefu, token);
    return new ScriptedAgent(ws, frames, token, userId, 'manager');
  }

  /** Messages a customer sent this agent, in arrival order. */
  fromCustomers(): Frame[] {
    return this.frames.filter((f) => f.category === 'customer' && f.action === 'send');
  }

  /** Answers `to`; resolves with the ack, refused or not. */
  async reply(to: string, content: string, extra: Frame = {}): Promise<Frame> {
    return this.send(content, { to, ...extra });
  }

  typing(taskId: number): void {
    this.frame({ action: 'typing', task_id: taskId });
  }
}

/** A real PNG (a colour gradient), so thumbnails show something. */
export function gradientPng(width: number, height: number): Buffer {
  const raw = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) {
    const row = y * (width * 3 + 1);
    for (let x = 0; x < width; x++) {
      raw[row + 1 + x * 3] = Math.round((255 * x) / width);
      raw[row + 2 + x * 3] = Math.round((255 * y) / height);
      raw[row + 3 + x * 3] = 200;
    }
  }
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type), data]);
    const out = Buffer.alloc(body.length + 8);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc32(body) >>> 0, body.length + 4);
    return out;
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/**
 * A customer played by a script: an anonymous visitor (POST /api/visitor
 * with a name).
 */
export class ScriptedCustomer extends ScriptedPerson {
  name: string | null = null;

  static async connect(kefu: Kefu, name?: string): Promise<ScriptedCustomer> {
    const res = await fetch(`${kefu.url}/api/visitor`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(name === undefined ? {} : { name }),
    });
    if (res.status !== 201) throw new Error(`visitor: ${res.status} ${await res.text()}`);
    const v = (await res.json()) as { token: string; user_id: string; name: string | null };
    const { ws, frames } = await authenticatedSocket(kefu, v.token);
    const customer = new ScriptedCustomer(ws, frames, v.token, v.user_id, 'customer');
    customer.name = v.name;
    return customer;
  }

  /** Sends a message (text, or any other fields) and waits for its ack. */
  async say(content: string, extra: Frame = {}): Promise<Frame> {
    const ack = await this.send(content, extra);
    if (ack.ext?.error) throw new Error(`refused: ${JSON.stringify(ack.ext.error)}`);
    return ack;
  }

  /** Messages agents sent this customer, in arrival order (retransmissions dropped). */
  fromAgents(): Frame[] {
    const seen = new Set<number>();
    return this.frames.filter((f) => f.category === 'manager' && f.action === 'send' && !seen.has(f.id) && seen.add(f.id));
  }

  typing(): void {
    this.frame({ action: 'typing' });
  }

  revoke(id: number): void {
    this.frame({ action: 'revoke', quote: id, client_msg_id: `rv-${id}` });
  }
}
