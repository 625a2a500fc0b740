// Headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core) on the book-collection
// example page: two pages stay in sync when one edits, adds and deletes; a page keeps working after the
// gateway restarts. Screenshots go to tests/e2e_js/artifacts/ (gitignored; CI keeps them).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { ARTIFACTS, REPO, freePort, startGateway, startExample, waitFor } from './support.mjs';

const require = createRequire(path.join(REPO, 'examples', 'package.json'));
const { chromium } = require('playwright-core');

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

let gatewayPort;
let gateway;
let example;
let browser;
const consoleErrors = [];

before(async () => {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  gatewayPort = await freePort();
  gateway = await startGateway(gatewayPort);
  example = await startExample('book-collection');
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS, timeout: 30000 });
});

after(async () => {
  if (browser) await browser.close();
  if (example) await example.stop();
  if (gateway) await gateway.stop();
});

async function openBookPage() {
  const context = await browser.newContext({ viewport: { width: 900, height: 700 } });
  const page = await context.newPage();
  page.setDefaultTimeout(10000);
  page.on('pageerror', (err) => consoleErrors.push(String(err)));
  await page.goto(`${example.url}?gateway=ws://127.0.0.1:${gatewayPort}`);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 15000 });
  return page;
}

const titles = (page) => page.$$eval('#books .list-item h3', (hs) => hs.map((h) => h.textContent));

async function editFirstBook(page, title) {
  const card = page.locator('#books .list-item').first();
  // A failed OK (say, while the gateway restarts) leaves the card in edit mode: no Edit button then.
  if (!(await card.evaluate((node) => node.classList.contains('editing')))) {
    await card.locator('.edit-btn').click();
  }
  await card.locator('.title-input').fill(title);
  await card.locator('.ok-btn').click();
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

test('two pages of the book example stay in sync', async () => {
  const [a, b] = [await openBookPage(), await openBookPage()];
  assert.deepEqual(await titles(b), ['Animal Farm', 'Brave New World', 'Coraline']);

  await editFirstBook(a, 'Animal Farm, edited in page A');
  await waitFor(async () => (await titles(b))[0] === 'Animal Farm, edited in page A', 'the edit to show in page B');

  await a.fill('#new-title', 'Dune');
  await a.fill('#new-author', 'Frank Herbert');
  await a.click('#add-new');
  await waitFor(async () => (await titles(b)).includes('Dune'), 'the new book to show in page B');
  assert.equal(await a.inputValue('#new-title'), '');

  await a.click('#add-new'); // empty fields: the service's error is shown in page A
  await waitFor(async () => (await a.textContent('#error-msg')) === 'Must provide both title and author',
    'the invalidParams message in page A');
  await shot(a, 'book-collection-page-a');
  await shot(b, 'book-collection-page-b');

  await b.locator('#books .list-item').last().locator('.delete-btn').click();
  await waitFor(async () => !(await titles(a)).includes('Dune'), 'the delete in page B to reach page A');
  assert.deepEqual(consoleErrors, []);
  await a.context().close();
  await b.context().close();
});

test('a page keeps working after the gateway restarts', async () => {
  const [a, b] = [await openBookPage(), await openBookPage()];
  await gateway.stop();
  gateway = await startGateway(gatewayPort);
  // The pages reconnect by themselves (resclient retries); an edit made afterwards reaches the other page.
  let n = 0;
  await waitFor(async () => {
    n += 1;
    await editFirstBook(a, `After restart ${n}`);
    await waitFor(async () => (await titles(b))[0] === `After restart ${n}`, 'the edit in page B', 3000);
    return true;
  }, 'an edit after the restart to reach the other page', 30000);
  await shot(b, 'book-collection-after-restart');
  assert.deepEqual(consoleErrors, []);
  await a.context().close();
  await b.context().close();
});

// Each example's own page, in the browser, against its Python service (one example at a time:
// hello-world and jwt-authentication both own example.model, as in resgate).
const PAGE_CHECKS = {
  'hello-world': async (page) => {
    await waitFor(async () => (await page.textContent('body')).trim() === 'Hello, World!', 'the greeting');
  },
  'edit-text': async (page) => {
    await page.waitForSelector('#message');
    assert.equal(await page.inputValue('#message'), 'Edit me!');
  },
  'password-authentication': async (page) => {
    await page.fill('#input', 'wrong');
    await page.click('#login');
    await waitFor(async () => (await page.textContent('#message')) === 'Invalid params: wrong password', 'the error');
    await page.fill('#input', 'secret');
    await page.click('#login');
    await waitFor(async () => /^Seconds since service start: \d+$/.test(await page.textContent('#message')),
      'the ticker');
  },
  'jwt-authentication': async (page, url) => {
    await waitFor(async () => /access denied/i.test(await page.textContent('#root')), 'access denied without the cookie');
    await page.goto(url.replace('?', 'login?'));
    await page.goto(url);
    await page.waitForSelector('#message');
    assert.equal(await page.inputValue('#message'), 'Hello, secure World!');
  },
  'client-session': async (page) => {
    await page.waitForSelector('#login-panel', { state: 'visible' });
    await page.fill('#input-username', 'john');
    await page.fill('#input-password', 'john');
    await page.click('#login-panel button');
    await page.waitForSelector('#logout-panel', { state: 'visible' });
    assert.equal(await page.textContent('#name'), 'John Doe');
    await waitFor(async () => /^Seconds since service start: \d+$/.test(await page.textContent('#message')),
      'the ticker');
    await page.reload(); // the relogin key in localStorage resumes the session
    await page.waitForSelector('#logout-panel', { state: 'visible' });
    assert.equal(await page.textContent('#role'), 'user');
  },
};

test('every example page works against its Python service', async () => {
  for (const [name, check] of Object.entries(PAGE_CHECKS)) {
    const proc = await startExample(name);
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      page.on('pageerror', (err) => consoleErrors.push(`${name}: ${err}`));
      const url = `${proc.url}?gateway=ws://127.0.0.1:${gatewayPort}`;
      await page.goto(url);
      await check(page, url);
      await shot(page, name);
    } catch (err) {
      err.message = `${name}: ${err.message}`;
      throw err;
    } finally {
      await context.close();
      await proc.stop();
    }
  }
  assert.deepEqual(consoleErrors, []);
});
