// Scenarios run by tests/test_js_client.py: each uses Twilio's JavaScript Sync SDK as an app
// would and reports, as JSON lines, every call's outcome and every event it sees (see lib.mjs
// for the input and output formats). Usage: node scenarios.mjs <scenario> '<params JSON>'.
//
// Client labels: A writes, B observes (and writes once, so that A sees a remote change), C
// opens afresh to read what the server holds. Object scenarios end with B's write arriving at
// A: an object's events arrive in order, so a duplicate of any earlier event (say, an echo of
// A's own change) would have arrived before it.

import { attempt, connect, record, report, run, step, waitFor, watch } from './lib.mjs';

const OBJECTS = ['document', 'list', 'map', 'stream'];

/** Open `id` on `client` (an open mode may be given), report it and every event it emits,
 * and wait until its subscription is established (live events flow from then on). */
async function open(label, client, object, id, mode = undefined) {
  const handle = await step(`${label}.open.${object}`, () => client[object](mode ? { id, mode } : id));
  watch(label, object, handle);
  await waitFor(
    { type: 'subscription', client: label, object, state: 'established' },
    { what: `${label}'s ${object} subscription` },
  );
  return handle;
}

const remoteEvent = (client, name) => ({ type: 'event', client, name, isLocal: false });

const scenarios = {
  /** Document: set, update, mutate, setTtl, removeDocument, with A's and B's events. */
  async document({ name }) {
    const a = connect('A');
    const b = connect('B');
    const docA = await open('A', a, 'document', name);
    const docB = await open('B', b, 'document', name);
    await step('A.set', () => docA.set({ title: 'first', n: 1 }));
    await step('A.update', () => docA.update({ extra: true }));
    await step('A.mutate', () => docA.mutate((data) => ({ ...data, n: data.n + 1 })));
    await waitFor(remoteEvent('B', 'updated'), { count: 3 });
    await step('B.set', () => docB.set({ title: 'from B' }));
    await waitFor(remoteEvent('A', 'updated'));
    await step('A.setTtl', () => docA.setTtl(3600));
    report('A.document', docA);
    const c = connect('C');
    await step('C.open.document', () => c.document({ id: name, mode: 'open_existing' }));
    await step('A.removeDocument', () => docA.removeDocument());
    await waitFor(remoteEvent('B', 'removed'));
  },

  /** List: push, get, set, update, mutate, remove, setItemTtl, setTtl, getItems, removeList. */
  async list({ name }) {
    const a = connect('A');
    const b = connect('B');
    const listA = await open('A', a, 'list', name);
    const listB = await open('B', b, 'list', name);
    for (const n of [0, 1, 2]) await step('A.push', () => listA.push({ n }));
    await step('A.get', () => listA.get(1));
    await step('A.set', () => listA.set(0, { n: 0, v: 'set' }));
    await step('A.update', () => listA.update(1, { v: 'updated' }));
    await step('A.mutate', () => listA.mutate(2, (data) => ({ ...data, n: data.n * 10 })));
    await step('A.remove', () => listA.remove(1));
    await step('A.setItemTtl', () => listA.setItemTtl(0, 3600));
    await step('A.setTtl', () => listA.setTtl(7200));
    report('A.list', listA);
    await waitFor(remoteEvent('B', 'itemRemoved'));
    await step('B.push', () => listB.push({ from: 'B' }));
    await waitFor(remoteEvent('A', 'itemAdded'));
    const c = connect('C');
    const listC = await step('C.open.list', () => c.list({ id: name, mode: 'open_existing' }));
    // Single-item reads first: a fresh client's cache is empty, so they query the server.
    await step('C.get', () => listC.get(2));
    await attempt('C.getRemoved', () => listC.get(1));
    await step('C.getItems', () => listC.getItems());
    await step('A.removeList', () => listA.removeList());
    await waitFor(remoteEvent('B', 'removed'));
  },

  /** Map: set (add, then update), update (existing and new key), mutate (new, then existing),
   * get, remove, setItemTtl, setTtl, getItems, removeMap; `odd` is a key needing encoding. */
  async map({ name, odd }) {
    const a = connect('A');
    const b = connect('B');
    const mapA = await open('A', a, 'map', name);
    const mapB = await open('B', b, 'map', name);
    const count = (data) => ({ count: (data.count ?? 0) + 1 });
    await step('A.set', () => mapA.set('a', { v: 1 }));
    await step('A.set', () => mapA.set('a', { v: 2 }));
    await step('A.update', () => mapA.update('a', { w: true }));
    await step('A.update', () => mapA.update('b', { fresh: true }));
    await step('A.mutate', () => mapA.mutate('c', count));
    await step('A.mutate', () => mapA.mutate('c', count));
    await step('A.set', () => mapA.set(odd, { odd: true }));
    await step('A.get', () => mapA.get('a'));
    await step('A.remove', () => mapA.remove('b'));
    await step('A.setItemTtl', () => mapA.setItemTtl('a', 3600));
    await step('A.setTtl', () => mapA.setTtl(7200));
    report('A.map', mapA);
    await waitFor(remoteEvent('B', 'itemRemoved'));
    await step('B.set', () => mapB.set('fromB', { by: 'B' }));
    await waitFor(remoteEvent('A', 'itemAdded'));
    const c = connect('C');
    const mapC = await step('C.open.map', () => c.map({ id: name, mode: 'open_existing' }));
    // Single-item reads first: a fresh client's cache is empty, so they query the server.
    await step('C.get', () => mapC.get(odd));
    await attempt('C.getRemoved', () => mapC.get('b'));
    await step('C.getItems', () => mapC.getItems());
    await step('A.removeMap', () => mapA.removeMap());
    await waitFor(remoteEvent('B', 'removed'));
  },

  /** Stream: publishMessage both ways, setTtl, removeStream. */
  async stream({ name }) {
    const a = connect('A');
    const b = connect('B');
    const streamA = await open('A', a, 'stream', name);
    const streamB = await open('B', b, 'stream', name);
    await step('A.publish', () => streamA.publishMessage({ n: 1 }));
    await step('A.publish', () => streamA.publishMessage({ n: 2 }));
    await waitFor(remoteEvent('B', 'messagePublished'), { count: 2 });
    await step('B.publish', () => streamB.publishMessage({ from: 'B' }));
    await waitFor(remoteEvent('A', 'messagePublished'));
    await step('A.setTtl', () => streamA.setTtl(3600));
    report('A.stream', streamA);
    await step('A.removeStream', () => streamA.removeStream());
    await waitFor(remoteEvent('B', 'removed'));
  },

  /** A fills a list (indexes 0..count-1) and a map (keys k0..k<count-1>) and removes index
   * and key number `removed`; then a fresh client per walk of `walks` ([{object, name, query,
   * moves}]) calls getItems(query) and then each of `moves` ('nextPage', 'prevPage', or
   * 'rest': nextPage while hasNextPage) on the page it got. Each page is reported as step
   * `<object>.<name>`. */
  async paging({ list, map, count, removed, walks }) {
    const a = connect('A');
    const listA = await step('A.open.list', () => a.list(list));
    const mapA = await step('A.open.map', () => a.map(map));
    for (let n = 0; n < count; n++) {
      await listA.push({ n });
      await mapA.set(`k${n}`, { n });
    }
    await step('A.remove', () => listA.remove(removed));
    await step('A.remove', () => mapA.remove(`k${removed}`));
    const ids = { list, map };
    for (const { object, name, query, moves } of walks) {
      // A client of its own per walk: pages come from the server, not from a cache.
      const client = connect(`C.${object}.${name}`, { as: 'C' });
      const handle = await client[object]({ id: ids[object], mode: 'open_existing' });
      const label = `${object}.${name}`;
      let page = await step(label, () => handle.getItems(query));
      for (const move of moves) {
        if (move !== 'rest') {
          page = await step(label, () => page[move]());
          continue;
        }
        for (let pages = 0; page.hasNextPage && pages < count; pages++) {
          page = await step(label, () => page.nextPage());
        }
      }
    }
  },

  /** For each object type: open_existing on a missing name, create_new (named and anonymous),
   * create_new on an existing name, open_existing by name and by SID. */
  async openModes({ name, missing }) {
    const a = connect('A');
    const b = connect('B');
    for (const object of OBJECTS) {
      const id = `${name}-${object}`;
      const existing = (client, id) => client[object]({ id, mode: 'open_existing' });
      const createNew = (id) => a[object]({ id, mode: 'create_new' });
      await attempt(`${object}.openExistingMissing`, () => existing(a, missing));
      const created = await step(`${object}.createNew`, () => createNew(id));
      await attempt(`${object}.createNewExisting`, () => createNew(id));
      await step(`${object}.createAnonymous`, () => createNew(undefined));
      await step(`${object}.openExisting`, () => existing(b, id));
      const c = connect(`C.${object}`, { as: 'B' });
      await step(`${object}.openBySid`, () => existing(c, created.sid));
    }
  },

  /** Open each of `names` ({document, list, map}) and, if it opened, write to it. */
  async acl({ names }) {
    const a = connect('A');
    for (const [object, id] of Object.entries(names)) {
      const handle = await attempt(`A.open.${object}`, () => a[object](id));
      if (handle && object === 'document') {
        await attempt('A.set.document', () => handle.set({ by: 'A' }));
      }
    }
  },

  /** updateToken on a live connection: the connection and its subscriptions carry on. */
  async tokenUpdate({ name, nextToken }) {
    const a = connect('A');
    const b = connect('B');
    const docA = await open('A', a, 'document', name);
    await step('A.set', () => docA.set({ token: 'first' }));
    await step('A.updateToken', () => a.updateToken(nextToken));
    report('A.connectionState', a.connectionState);
    await step('A.set', () => docA.set({ token: 'next' }));
    const docB = await step('B.open.document', () => b.document(name));
    await step('B.set', () => docB.set({ from: 'B' }));
    await waitFor(remoteEvent('A', 'updated'));
  },

  /** A starts with a token the server must refuse; then updateToken(goodToken) recovers. */
  async denied({ name, goodToken }) {
    const a = connect('A');
    await waitFor({ type: 'state', client: 'A', state: 'denied' });
    await attempt('A.openWhileDenied', () => a.document(name));
    await step('A.updateToken', () => a.updateToken(goodToken));
    await waitFor({ type: 'state', client: 'A', state: 'connected' });
    const doc = await step('A.open.document', () => a.document(name));
    await step('A.set', () => doc.set({ recovered: true }));
  },

  /** A's token is about to expire from the start, then expires; updateToken(freshToken)
   * brings the client back. */
  async expiry({ name, freshToken }) {
    const a = connect('A');
    await waitFor({ type: 'tokenAboutToExpire', client: 'A' });
    await waitFor({ type: 'tokenExpired', client: 'A' });
    const ended = (state) => state === 'disconnected' || state === 'denied';
    await waitFor({ type: 'state', client: 'A', state: ended }, { what: 'disconnected or denied' });
    report('A.connectionState', a.connectionState);
    await step('A.updateToken', () => a.updateToken(freshToken));
    await waitFor({ type: 'state', client: 'A', state: 'connected' }, { count: 2 });
    const doc = await step('A.open.document', () => a.document(name));
    await step('A.set', () => doc.set({ renewed: true }));
  },

  /** Open the existing objects `names` ({object: name}), report `ready` once subscribed, and
   * report their events until `expect` ({object: count}) events have arrived. */
  async watch({ names, expect }) {
    const a = connect('A');
    for (const [object, id] of Object.entries(names)) {
      await open('A', a, object, id, 'open_existing');
    }
    record('ready', { step: 'subscribed' });
    for (const [object, count] of Object.entries(expect)) {
      const what = `${count} ${object} events`;
      await waitFor({ type: 'event', client: 'A', object }, { count, what });
    }
  },

  /** The interop write sequence on the existing objects `names` (mirrored by the Python
   * writers in tests/test_js_client.py). */
  async write({ names }) {
    const a = connect('A');
    const h = {};
    for (const object of OBJECTS) {
      const id = names[object];
      h[object] = await step(`A.open.${object}`, () => a[object]({ id, mode: 'open_existing' }));
    }
    await step('A.document.set', () => h.document.set({ v: 1 }));
    await step('A.document.set', () => h.document.set({ v: 2 }));
    await step('A.list.push', () => h.list.push({ n: 0 }));
    await step('A.list.push', () => h.list.push({ n: 1 }));
    await step('A.list.set', () => h.list.set(0, { n: 10 }));
    await step('A.list.remove', () => h.list.remove(1));
    await step('A.map.set', () => h.map.set('a', { v: 1 }));
    await step('A.map.set', () => h.map.set('a', { v: 2 }));
    await step('A.map.remove', () => h.map.remove('a'));
    await step('A.stream.publish', () => h.stream.publishMessage({ m: 1 }));
    await step('A.document.removeDocument', () => h.document.removeDocument());
    await step('A.list.removeList', () => h.list.removeList());
    await step('A.map.removeMap', () => h.map.removeMap());
    await step('A.stream.removeStream', () => h.stream.removeStream());
  },
};

await run(scenarios);
