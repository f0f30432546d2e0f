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

// One EventSource for the whole page; views subscribe to its event types.
const listeners = { decision: new Set(), review: new Set(), reload: new Set(), lagging: new Set(), state: new Set() };
let source = null;

export function openStream() {
  if (source) return;
  source = new EventSource('/v1/stream');
  for (const type of ['decision', 'review', 'reload', 'lagging']) {
    source.addEventListener(type, (ev) => {
      let data;
      try {
        data = JSON.parse(ev.data);
      } catch (e) {
        return;
      }
      for (const fn of listeners[type]) fn(data);
    });
  }
  source.onopen = () => listeners.state.forEach((fn) => fn('open'));
  source.onerror = () => listeners.state.forEach((fn) => fn('reconnecting'));
}

export function closeStream() {
  if (source) source.close();
  source = null;
}

export function subscribe(type, fn) {
  listeners[type].add(fn);
  return () => listeners[type].delete(fn);
}
