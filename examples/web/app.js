// A shared todo list with presence, on Twilio's JavaScript Sync SDK (twilio-sync, browser
// build: `Twilio.Sync.Client`) talking to sync_server. No framework, no build step.
//
//   SyncList "todos":    items {text, done, by}; add = push, toggle = update, delete = remove.
//   SyncMap  "presence": one item per identity here now, with an item TTL (renewed while the
//                        tab is open); a closing tab has the backend remove it, and one that
//                        vanishes without a word drops out when the TTL runs out. Two tabs of one
//                        identity share the item: when one closes, the other re-adds it on its
//                        next renewal.
//
// The page renders only from what the SDK reports (initial pages, then events), so a change
// made here shows up the same way as a change made by anyone else.
'use strict';

const PRESENCE_TTL_S = 60;
const PRESENCE_REFRESH_MS = 20_000; // well inside the TTL

const $ = (selector) => document.querySelector(selector);
const identity =
  new URLSearchParams(location.search).get('identity') || `guest-${Math.random().toString(36).slice(2, 7)}`;

/** A token for `identity` from our backend (examples/web/app.py): {identity, token, syncUrl}. */
async function fetchToken() {
  const response = await fetch(`/token?identity=${encodeURIComponent(identity)}`);
  if (!response.ok) throw new Error(`GET /token: ${response.status} ${await response.text()}`);
  return response.json();
}

function showError(error) {
  console.error(error);
  $('#error').hidden = false;
  $('#error').textContent = String(error?.message ?? error);
}

/** Run an SDK call from a click; on failure, say so and re-render (undoing e.g. a checkbox). */
function act(promise) {
  promise.catch((error) => {
    showError(error);
    renderTodos();
  });
}

// ---- live contents of a list or map --------------------------------------------------------

/** Keep `items` (index or key -> data) equal to `collection`: events from now on, plus the
 * initial pages for whatever no event has mentioned yet (an event is at least as new). */
async function mirror(collection, keyField, items, render) {
  const mentioned = new Set();
  const put = ({ item }) => {
    mentioned.add(item[keyField]);
    items.set(item[keyField], item.data);
    render();
  };
  collection.on('itemAdded', put);
  collection.on('itemUpdated', put);
  collection.on('itemRemoved', (event) => {
    mentioned.add(event[keyField]);
    items.delete(event[keyField]);
    render();
  });
  for (let page = await collection.getItems({ pageSize: 100 }); ; page = await page.nextPage()) {
    for (const item of page.items) {
      if (!mentioned.has(item[keyField])) items.set(item[keyField], item.data);
    }
    if (!page.hasNextPage) break;
  }
  render();
}

// ---- rendering ---------------------------------------------------------------------------------

let todos; // the SyncList, once open
const todoItems = new Map(); // index -> {text, done, by}
const here = new Map(); // identity -> {since}

function element(tag, properties = {}, ...children) {
  const node = Object.assign(document.createElement(tag), properties);
  node.append(...children);
  return node;
}

function renderTodos() {
  const rows = [...todoItems].sort(([a], [b]) => a - b).map(([index, todo]) => {
    const box = element('input', { type: 'checkbox', checked: Boolean(todo.done), title: 'Done' });
    box.addEventListener('change', () => act(todos.update(index, { done: box.checked })));
    const remove = element('button', { type: 'button', title: 'Remove', textContent: '✕' });
    remove.addEventListener('click', () => act(todos.remove(index)));
    const row = element(
      'li',
      { className: todo.done ? 'done' : '' },
      box,
      element('span', { className: 'text', textContent: todo.text }),
      element('span', { className: 'by', textContent: todo.by ? `by ${todo.by}` : '' }),
      remove,
    );
    row.dataset.index = index;
    return row;
  });
  $('#todos').replaceChildren(...rows);
  $('#empty').hidden = rows.length > 0;
}

function renderPresence() {
  const names = [...here.keys()].sort();
  $('#presence').replaceChildren(
    ...names.map((name) => element('li', { textContent: name === identity ? `${name} (you)` : name })),
  );
}

// ---- start -----------------------------------------------------------------------------------

async function main() {
  $('#me').textContent = identity;
  let { token, syncUrl } = await fetchToken();
  const client = new Twilio.Sync.Client(token, {
    cdsUri: syncUrl,
    twilsock: { uri: `${syncUrl.replace(/^http/, 'ws')}/v3/wsconnect` },
  });
  client.on('connectionStateChanged', (state) => {
    $('#status').textContent = state;
    $('#status').dataset.state = state;
  });
  client.on('connectionError', (error) => showError(`connection error: ${error.message}`));
  const renew = async () => {
    token = (await fetchToken()).token;
    await client.updateToken(token);
  };
  client.on('tokenAboutToExpire', () => renew().catch(showError));
  client.on('tokenExpired', () => renew().catch(showError));

  const presence = await client.map('presence');
  const since = new Date().toISOString();
  const announce = () => presence.set(identity, { since }, { ttl: PRESENCE_TTL_S });
  await announce();
  setInterval(() => announce().catch(showError), PRESENCE_REFRESH_MS);
  // Leaving: the SDK cannot send anything from an unloading page (it sends from a timer), so
  // the page hands its token to our backend, which removes the item (app.py, `leave`). If even
  // that never arrives, the item's TTL removes it.
  window.addEventListener('pagehide', () => navigator.sendBeacon('/leave', token));
  window.addEventListener('pageshow', (event) => event.persisted && announce().catch(showError));

  todos = await client.list('todos');
  $('#add').addEventListener('submit', (event) => {
    event.preventDefault();
    const input = $('#new-todo');
    const text = input.value.trim();
    if (text) act(todos.push({ text, done: false, by: identity }));
    input.value = '';
  });

  await Promise.all([mirror(todos, 'index', todoItems, renderTodos), mirror(presence, 'key', here, renderPresence)]);
}

main().catch(showError);
