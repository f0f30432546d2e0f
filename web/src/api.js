// api.js - the daemon's JSON API as the dashboard uses it: same-origin requests carrying the
// session cookie, with the session's CSRF token on every request that changes something.
let csrf = null;

export class ApiError extends Error {
  constructor(status, body) {
    super(body && body.error ? body.error.message : `HTTP ${status}`);
    this.status = status;
    this.code = body && body.error ? body.error.code : 'http';
    this.body = body;
  }
}

export function setCsrf(token) {
  csrf = token;
}

export async function api(method, path, body, opts = {}) {
  const headers = {};
  if (method !== 'GET') {
    if (csrf) headers['X-CSRF-Token'] = csrf;
    if (body !== undefined && typeof body !== 'string') headers['Content-Type'] = 'application/json';
  }
  const res = await fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch (e) {
    json = null;
  }
  if (!res.ok && !(opts.okStatus || []).includes(res.status)) throw new ApiError(res.status, json);
  return opts.raw ? { status: res.status, json, text } : json;
}

// The scopes that allow something (admin allows everything).
export function can(me, ...scopes) {
  if (!me) return false;
  return me.scopes.includes('admin') || scopes.some((s) => me.scopes.includes(s));
}

// One EventSource for the whole page; views subscribe to its event types. What it asks the
// daemon for (GET /v1/stream?channel=&action=&allow=) is the view's: the feed sets its filters,
// every other view takes holds and other non-allow decisions in full and no plain allow.
export const STREAM_DEFAULT = { allow: '0' };
const TYPES = ['decision', 'review', 'reload', 'lagging', 'stats'];
const listeners = { state: new Set() };
const raw = {};
for (const t of TYPES) {
  listeners[t] = new Set();
  raw[t] = new Set();
}
let source = null;
let query = '';
let live = null; // the query of the stream that is open, once it is
let seen = new Set(); // ids while one stream takes over from another
const liveListeners = new Set();

function queryOf(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) if (v !== '' && v !== undefined && v !== null) q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}

function dispatch(type, ev) {
  // Two streams overlap while one takes over from the other: an event both carry (the same
  // stream-wide id) is passed on once.
  if (seen && ev.lastEventId) {
    if (seen.has(ev.lastEventId)) return;
    if (seen.size < 65536) seen.add(ev.lastEventId);
  }
  // a raw listener takes the text as it came (the feed parses only what it shows)
  for (const fn of raw[type]) fn(ev.data);
  if (!listeners[type].size) return;
  let data;
  try {
    data = JSON.parse(ev.data);
  } catch (e) {
    return;
  }
  for (const fn of listeners[type]) fn(data);
}

function connect(q) {
  const es = new EventSource('/v1/stream' + q);
  for (const type of TYPES) es.addEventListener(type, (ev) => es === source || es.old ? dispatch(type, ev) : null);
  es.onopen = () => {
    if (es !== source) return;
    // the new stream is subscribed: the one it replaces may go
    if (es.prev) {
      es.prev.close();
      es.prev.old = false;
      es.prev = null;
      setTimeout(() => (seen = null), 2000);
    }
    live = q;
    liveListeners.forEach((fn) => fn(live));
    listeners.state.forEach((fn) => fn('open'));
  };
  es.onerror = () => es === source && listeners.state.forEach((fn) => fn('reconnecting'));
  return es;
}

export function openStream(params = STREAM_DEFAULT) {
  if (source) return;
  query = queryOf(params);
  source = connect(query);
}

// Asks the daemon for other events: a stream with them is opened, and the current one closed
// once it is subscribed, so that no event falls between the two.
export function setStreamFilter(params) {
  const q = queryOf(params);
  if (q === query) return;
  query = q;
  if (!source) return;
  const prev = source;
  if (prev.prev) prev.prev.close(); // a switch still under way: the older one goes now
  prev.old = true;
  seen = new Set();
  source = connect(q);
  source.prev = prev;
}

// The query of the open stream ('' for none), now and whenever it changes.
export function onStreamLive(fn) {
  liveListeners.add(fn);
  fn(live);
  return () => liveListeners.delete(fn);
}

export function closeStream() {
  if (source) {
    if (source.prev) source.prev.close();
    source.close();
  }
  source = null;
  live = null;
}

export function subscribe(type, fn) {
  listeners[type].add(fn);
  return () => listeners[type].delete(fn);
}

export function subscribeRaw(type, fn) {
  raw[type].add(fn);
  return () => raw[type].delete(fn);
}
