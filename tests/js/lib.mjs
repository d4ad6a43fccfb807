// Shared harness for the scenarios in scenarios.mjs, which run Twilio's JavaScript Sync SDK
// (twilio-sync, unmodified) against a sync_server and report what the app sees.
//
// Input: `node scenarios.mjs <scenario> '<params JSON>'`. The params name the clients
// (`clients: {A: {url, token}, ...}`) and whatever the scenario needs (object names, ...).
// Environment: SCENARIO_TIMEOUT_S (default 30) bounds the whole run; SYNC_JS_LOG_LEVEL
// (default "silent") is the SDK's log level (its log goes to stderr).
//
// Output: one JSON object per line on stdout, each with `type` and `t` (ms since the epoch):
//   {"type":"state","client":"A","state":"connected"}          connectionStateChanged
//   {"type":"connectionError","client":"A",...}                 connectionError
//   {"type":"tokenAboutToExpire","client":"A"}, {"type":"tokenExpired","client":"A"}
//   {"type":"event","client":"B","object":"list","name":"itemAdded","isLocal":false,"item":{...}}
//   {"type":"result","step":"A.push","value":...}               a call that resolved
//   {"type":"error","step":"A.get","error":{name,message,status,code}}  a call that rejected
//   {"type":"subscription","client":"B","object":"list","state":"established"}
//   {"type":"ready","step":"..."}                                 the test may go on
//   {"type":"done"} last, on success (exit 0); {"type":"fatal","error":"..."} on failure (exit 1,
//   or 2 on timeout).

import {
  Paginator,
  SyncClient,
  SyncDocument,
  SyncList,
  SyncListItem,
  SyncMap,
  SyncMapItem,
  SyncStream,
} from 'twilio-sync';

// stdout carries only our JSON lines: route console output (the SDK logger's) to stderr.
for (const method of ['log', 'info', 'debug']) console[method] = console.error.bind(console);

export const params = JSON.parse(process.argv[3] ?? '{}');
const TIMEOUT_S = Number(process.env.SCENARIO_TIMEOUT_S ?? 30);
const WAIT_TIMEOUT_MS = 15_000;

// ---- output and the journal of everything reported -------------------------------------

const journal = [];
const waiters = new Set();

const line = (entry) => JSON.stringify(entry) + '\n';

/** Print one record and remember it for `waitFor`. */
export function record(type, fields = {}) {
  const entry = { type, t: Date.now(), ...fields };
  process.stdout.write(line(entry));
  journal.push(entry);
  for (const waiter of [...waiters]) waiter.check();
  return entry;
}

function matches(entry, pattern) {
  return Object.entries(pattern).every(([key, want]) =>
    typeof want === 'function' ? want(entry[key]) : entry[key] === want,
  );
}

/** Resolve with the first `count` records matching `pattern` (already reported or to come);
 * a pattern value may be a predicate. Rejects after WAIT_TIMEOUT_MS, naming what it waited for. */
export function waitFor(pattern, { count = 1, what = JSON.stringify(pattern) } = {}) {
  return new Promise((resolve, reject) => {
    const waiter = {
      check() {
        const found = journal.filter((entry) => matches(entry, pattern));
        if (found.length >= count) {
          waiters.delete(waiter);
          clearTimeout(timer);
          resolve(found.slice(0, count));
        }
      },
    };
    const timer = setTimeout(() => {
      waiters.delete(waiter);
      const seen = journal.filter((entry) => matches(entry, pattern)).length;
      reject(new Error(`no ${count} × ${what} within ${WAIT_TIMEOUT_MS} ms (saw ${seen})`));
    }, WAIT_TIMEOUT_MS);
    waiters.add(waiter);
    waiter.check();
  });
}

// ---- what the SDK hands the app, as JSON ---------------------------------------------------

/** A JSON view of an SDK value: objects, items, pages, stream messages, errors, plain data. */
export function describe(value) {
  if (value instanceof Paginator) {
    const { items, hasNextPage, hasPrevPage } = value;
    return { items: items.map(describe), hasNextPage, hasPrevPage };
  }
  if (value instanceof SyncListItem || value instanceof SyncMapItem) {
    const item = value instanceof SyncListItem ? { index: value.index } : { key: value.key };
    return {
      ...item,
      data: value.data,
      revision: value.revision,
      lastEventId: value.lastEventId,
      dateUpdated: value.dateUpdated,
      dateExpires: value.dateExpires ?? null,
    };
  }
  if (value instanceof SyncDocument || value instanceof SyncList || value instanceof SyncMap) {
    return {
      sid: value.sid,
      uniqueName: value.uniqueName,
      revision: value.revision,
      lastEventId: value.lastEventId,
      dateUpdated: value.dateUpdated,
      dateExpires: value.dateExpires ?? null,
      ...(value instanceof SyncDocument ? { data: value.data } : {}),
    };
  }
  if (value instanceof SyncStream) {
    return { sid: value.sid, uniqueName: value.uniqueName, dateExpires: value.dateExpires ?? null };
  }
  if (value instanceof Error) {
    const { name, message, status = null, code = null } = value;
    return { name, message, status, code };
  }
  return value === undefined ? null : value;
}

// ---- clients and their objects -----------------------------------------------------------

const clients = [];

/** A SyncClient for `params.clients[as]` (default: the label's own entry), reporting its
 * connection state, errors and token events under `label`. */
export function connect(label, { as = label } = {}) {
  const config = params.clients?.[as];
  if (!config) throw new Error(`params.clients.${as} is missing (need {url, token})`);
  const client = new SyncClient(config.token, {
    cdsUri: config.url,
    twilsock: { uri: config.url.replace(/^http/, 'ws') + '/v3/wsconnect' },
    logLevel: process.env.SYNC_JS_LOG_LEVEL ?? 'silent',
  });
  clients.push(client);
  client.on('connectionStateChanged', (state) => record('state', { client: label, state }));
  client.on('connectionError', (e) =>
    record('connectionError', {
      client: label,
      terminal: e.terminal,
      message: e.message,
      httpStatusCode: e.httpStatusCode ?? null,
      errorCode: e.errorCode ?? null,
    }),
  );
  client.on('tokenAboutToExpire', () => record('tokenAboutToExpire', { client: label }));
  client.on('tokenExpired', () => record('tokenExpired', { client: label }));
  return client;
}

const EVENTS = {
  document: ['updated', 'removed'],
  list: ['itemAdded', 'itemUpdated', 'itemRemoved', 'removed'],
  map: ['itemAdded', 'itemUpdated', 'itemRemoved', 'removed'],
  stream: ['messagePublished', 'removed'],
};

/** Report every event of `handle` (a SyncDocument/List/Map/Stream of type `object`), and its
 * subscription state. That comes from the SDK's internal `_subscriptionStateChanged`, the only
 * way to tell when live events flow: it matters for streams, which have no replay. */
export function watch(label, object, handle) {
  handle.on('_subscriptionStateChanged', (state) => {
    record('subscription', { client: label, object, state });
  });
  for (const name of EVENTS[object]) {
    handle.on(name, (event) => {
      const fields = {};
      for (const [key, value] of Object.entries(event)) fields[key] = describe(value);
      record('event', { client: label, object, name, ...fields });
    });
  }
  return handle;
}

// ---- steps ----------------------------------------------------------------------------------

/** Run one SDK call that must succeed: report its result, return it (a rejection fails the run). */
export async function step(label, call) {
  let value;
  try {
    value = await call();
  } catch (error) {
    record('error', { step: label, error: describe(error) });
    throw new Error(`step ${label} failed: ${error?.message ?? error}`);
  }
  record('result', { step: label, value: describe(value) });
  return value;
}

/** Run one SDK call that may fail (the test decides): report its result or its error. */
export async function attempt(label, call) {
  try {
    const value = await call();
    record('result', { step: label, value: describe(value) });
    return value;
  } catch (error) {
    record('error', { step: label, error: describe(error) });
    return undefined;
  }
}

/** Report an app-visible value that is not a call's result (e.g. `client.connectionState`). */
export function report(label, value) {
  record('result', { step: label, value: describe(value) });
}

// ---- running --------------------------------------------------------------------------------

/** Print the last record and exit with `code` once it is written. */
function finish(type, fields, code) {
  process.stdout.write(line({ type, t: Date.now(), ...fields }), () => process.exit(code));
}

/** Shut every client down (each given at most 5 s). */
async function shutdownAll() {
  const shutdown = async (client) => client.shutdown();
  const pause = () => new Promise((resolve) => setTimeout(resolve, 5000));
  await Promise.all(clients.map((client) => Promise.race([shutdown(client).catch(() => {}), pause()])));
}

/** Run the scenario named by argv[2] from `scenarios` (name -> async function(params)). */
export async function run(scenarios) {
  const name = process.argv[2];
  const scenario = scenarios[name];
  if (!scenario) {
    const known = Object.keys(scenarios).join(', ');
    finish('fatal', { error: `unknown scenario ${JSON.stringify(name)}; known: ${known}` }, 1);
    return;
  }
  const timeout = () => finish('fatal', { error: `scenario ${name} timed out after ${TIMEOUT_S} s` }, 2);
  setTimeout(timeout, TIMEOUT_S * 1000);
  for (const what of ['uncaughtException', 'unhandledRejection']) {
    process.on(what, (error) => finish('fatal', { error: `${what}: ${error?.stack ?? error}` }, 1));
  }
  try {
    await scenario(params);
  } catch (error) {
    await shutdownAll();
    finish('fatal', { error: String(error?.stack ?? error) }, 1);
    return;
  }
  await shutdownAll();
  finish('done', {}, 0);
}
