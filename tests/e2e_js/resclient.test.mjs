// The official JavaScript client (npm resclient) against the gateway and the example services:
// get, subscribe, calls, events seen by a second client, collection add/remove, login and access
// (password, JWT cookie, client session), and reconnect + resubscribe after the gateway restarts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { freePort, startGateway, startExample, newClient, nextEvent, waitFor, withTimeout } from './support.mjs';

let gatewayPort;
let gateway;
const examples = {};
const clients = [];

function client(headers) {
  const c = newClient(gatewayPort, headers);
  clients.push(c);
  return c;
}

before(async () => {
  gatewayPort = await freePort();
  gateway = await startGateway(gatewayPort);
  // Each example owns its resource names, so they can share one NATS and one gateway.
  // As in resgate, hello-world and jwt-authentication both serve example.model, and
  // password-authentication and client-session both serve ticker.model: the second of each pair
  // runs alone in its own test.
  for (const name of ['edit-text', 'book-collection', 'password-authentication', 'jwt-authentication']) {
    examples[name] = await startExample(name);
  }
});

after(async () => {
  for (const c of clients) await c.disconnect();
  for (const proc of Object.values(examples)) await proc.stop();
  await gateway?.stop();
});

test('edit-text: a set by one client is a change for the other', async () => {
  const [a, b] = [client(), client()];
  const modelA = await a.get('example.shared');
  const modelB = await b.get('example.shared');
  assert.equal(modelB.message, 'Edit me!');
  const changed = nextEvent(modelB, 'change');
  await modelA.set({ message: 'Edited by A' });
  await changed;
  assert.equal(modelB.message, 'Edited by A');
});

test('book-collection: subscribe, set, and a second client sees the change', async () => {
  const [a, b] = [client(), client()];
  const booksA = await a.get('library.books');
  assert.deepEqual(booksA.toArray().map((book) => book.title), ['Animal Farm', 'Brave New World', 'Coraline']);
  const bookB = await b.get('library.book.1');
  const changed = nextEvent(bookB, 'change');
  await booksA.toArray()[0].set({ title: 'Animal Farm (2nd ed.)' });
  const ev = await changed;
  assert.deepEqual(ev, { title: 'Animal Farm' });
  assert.equal(bookB.title, 'Animal Farm (2nd ed.)');
});

test('book-collection: errors come back with the example\'s codes and messages', async () => {
  const c = client();
  await assert.rejects(c.call('library.books', 'new', { title: 'No author' }),
    (err) => err.code === 'system.invalidParams' && err.message === 'Must provide both title and author');
  const book = await c.get('library.book.2');
  await assert.rejects(book.set({ title: '  ' }),
    (err) => err.code === 'system.invalidParams' && err.message === 'Title must not be empty');
  await assert.rejects(c.get('library.book.999'), (err) => err.code === 'system.notFound');
});

test('book-collection: new and delete reach another client as add and remove', async () => {
  const [a, b] = [client(), client()];
  const booksB = await b.get('library.books');
  const added = nextEvent(booksB, 'add');
  await a.call('library.books', 'new', { title: 'Dune', author: 'Frank Herbert' });
  const add = await added;
  assert.equal(add.idx, 3);
  assert.equal(add.item.title, 'Dune');
  const removed = nextEvent(booksB, 'remove');
  await a.call('library.books', 'delete', { id: add.item.id });
  assert.equal((await removed).idx, 3);
  assert.equal(booksB.length, 3);
});

test('password-authentication: access needs the login token; logout ends the updates', async () => {
  const c = client();
  await assert.rejects(c.get('ticker.model'), (err) => err.code === 'system.accessDenied');
  await assert.rejects(c.authenticate('passwd', 'login', { password: 'wrong' }),
    (err) => err.code === 'system.invalidParams' && err.message === 'Invalid params: wrong password');
  await c.authenticate('passwd', 'login', { password: 'secret' });
  const ticker = await c.get('ticker.model');
  const before = ticker.seconds;
  await nextEvent(ticker, 'change', 3000);
  assert.ok(ticker.seconds > before, `seconds went from ${before} to ${ticker.seconds}`);
  await c.authenticate('passwd', 'logout');
  // The gateway re-checks access after the token changed and unsubscribes the model.
  await waitFor(() => c.get('ticker.model').then(() => false, (err) => err.code === 'system.accessDenied'),
    'access denied after logout');
});

test('client-session: login, the {cid} user model, the ticker, relogin from another connection', async () => {
  // Alone: password-authentication owns ticker.model too.
  await examples['password-authentication'].stop();
  delete examples['password-authentication'];
  examples['client-session'] = await startExample('client-session');
  const c = client();
  const user = await c.get('session.user.{cid}');
  assert.deepEqual(user.props, { id: null, name: null, role: null });
  await assert.rejects(c.authenticate('session', 'login', { username: 'jane', password: 'nope' }),
    (err) => err.code === 'session.wrongUsernamePassword' && err.message === 'Wrong username or password');
  const changed = nextEvent(user, 'change');
  const { reloginKey } = await c.authenticate('session', 'login', { username: 'Jane', password: 'jane' });
  assert.equal(typeof reloginKey, 'string');
  await changed;
  assert.deepEqual(user.props, { id: 3, name: 'Jane Doe', role: 'user' });
  await assert.rejects(c.authenticate('session', 'login', { username: 'jane', password: 'jane' }),
    (err) => err.code === 'session.alreadyLoggedIn');
  assert.equal(typeof (await c.get('ticker.model')).seconds, 'number');

  const other = client();
  const next = await other.authenticate('session', 'relogin', { reloginKey });
  assert.notEqual(next.reloginKey, reloginKey);
  const otherUser = await other.get('session.user.{cid}');
  assert.equal(otherUser.name, 'Jane Doe');
  // The old key is used up; using it again ends the whole session.
  await assert.rejects(client().authenticate('session', 'relogin', { reloginKey }),
    (err) => err.code === 'session.invalidReloginKey');
  await assert.rejects(client().authenticate('session', 'relogin', { reloginKey: next.reloginKey }),
    (err) => err.code === 'session.invalidReloginKey');
});

test('jwt-authentication: the /login cookie on the WebSocket upgrade gives access', async () => {
  const anonymous = client();
  await anonymous.authenticate('auth', 'jwtHeader').then(
    () => assert.fail('auth without a cookie succeeded'),
    (err) => assert.equal(err.message, 'Invalid params: missing jwt token'));
  await assert.rejects(anonymous.get('example.model'), (err) => err.code === 'system.accessDenied');

  const resp = await fetch(examples['jwt-authentication'].url + 'login');
  assert.equal(resp.status, 200);
  const cookie = resp.headers.get('set-cookie').split(';')[0];
  assert.match(cookie, /^access-token=[\w-]+\.[\w-]+\.[\w-]+$/);
  const c = client({ Cookie: cookie });
  c.setOnConnect(() => c.authenticate('auth', 'jwtHeader').catch(() => {}));
  const model = await c.get('example.model');
  assert.equal(model.message, 'Hello, secure World!');
  await model.set({ message: 'Hello from Node' });
  assert.equal(model.message, 'Hello from Node');

  const forged = client({ Cookie: cookie.slice(0, -2) + 'xx' });
  await assert.rejects(forged.authenticate('auth', 'jwtHeader'),
    (err) => err.message === 'Invalid params: invalid jwt token');
});

test('hello-world: get a model', async () => {
  // Alone: jwt-authentication owns example.model too.
  await examples['jwt-authentication'].stop();
  delete examples['jwt-authentication'];
  const hello = await startExample('hello-world');
  try {
    const model = await client().get('example.model');
    assert.equal(model.message, 'Hello, World!');
  } finally {
    await hello.stop();
  }
});

test('reconnect: after a gateway restart clients resubscribe and get events again', async () => {
  const [a, b] = [client(), client()];
  const bookA = await a.get('library.book.3');
  const bookB = await b.get('library.book.3');
  const keep = () => {};
  bookA.on('change', keep);
  bookB.on('change', keep);

  await gateway.stop();
  gateway = await startGateway(gatewayPort);

  // Both clients reconnect on their own. A's call is retried until the new gateway serves it; B then
  // gets the new title either as a change event or with its resubscription.
  const title = `Coraline ${Date.now()}`;
  await waitFor(() => withTimeout(bookA.set({ title }), 3000).then(() => true),
    'a call to succeed after the restart', 30000);
  try {
    await waitFor(() => bookB.title === title, 'the second client to see the new title', 15000);
  } catch (err) {
    // (the restarted gateway's warnings and errors, if any)
    err.message += `\n--- gateway output ---\n${gateway.output}`;
    throw err;
  }
  const changed = nextEvent(bookB, 'change');
  await bookA.set({ author: 'N. Gaiman' });
  await changed;
  assert.equal(bookB.author, 'N. Gaiman');
});
