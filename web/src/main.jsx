// main.jsx - the dashboard: sign-in, navigation, and the views (docs/dashboard.md).
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, setCsrf, openStream, closeStream, subscribe } from './api.js';
import { ErrorNote } from './ui.jsx';
import { Feed } from './feed.jsx';
import { Queue } from './queue.jsx';
import { UserCard } from './user.jsx';
import { ModLog } from './log.jsx';
import { Rules } from './rules.jsx';
import { Health } from './health.jsx';
import './app.css';

const VIEWS = [
  ['feed', 'Live feed'],
  ['queue', 'Review queue'],
  ['log', 'Mod log'],
  ['rules', 'Rules'],
  ['health', 'Health'],
];

function route() {
  const h = location.hash.replace(/^#\/?/, '');
  const parts = h.split('/').map((p) => {
    try {
      return decodeURIComponent(p);
    } catch (e) {
      return p;
    }
  });
  return { view: parts[0] || 'queue', args: parts.slice(1) };
}

function SignIn({ onIn }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const me = await api('POST', '/v1/session', { token: token.trim() });
      setToken('');
      onIn(me);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="signin">
      <h1>whiply</h1>
      <form onSubmit={submit}>
        <label for="token">API token</label>
        <input id="token" type="password" autocomplete="off" value={token} onInput={(e) => setToken(e.target.value)} required />
        <button type="submit" disabled={busy}>
          Sign in
        </button>
        <ErrorNote error={error} />
        <p class="hint">
          The token is exchanged for a session cookie and not kept. <code>make run</code> writes an admin token to{' '}
          <code>data/admin.token</code>.
        </p>
      </form>
    </main>
  );
}

function App() {
  const [me, setMe] = useState(undefined); // undefined: asking; null: signed out
  const [r, setR] = useState(route());
  const [stream, setStream] = useState('connecting');
  const [reloaded, setReloaded] = useState(null);

  useEffect(() => {
    const onHash = () => setR(route());
    addEventListener('hashchange', onHash);
    api('GET', '/v1/session')
      .then((m) => {
        setCsrf(m.csrf);
        setMe(m);
      })
      .catch(() => setMe(null));
    return () => removeEventListener('hashchange', onHash);
  }, []);

  useEffect(() => {
    if (!me) return undefined;
    openStream();
    const offs = [subscribe('state', setStream), subscribe('reload', setReloaded)];
    return () => {
      offs.forEach((f) => f());
      closeStream();
    };
  }, [me]);

  if (me === undefined) return <p class="boot">Loading…</p>;
  if (me === null)
    return (
      <SignIn
        onIn={(m) => {
          setCsrf(m.csrf);
          setMe(m);
        }}
      />
    );

  const signOut = async () => {
    try {
      await api('DELETE', '/v1/session');
    } finally {
      setCsrf(null);
      setMe(null);
    }
  };

  let body;
  switch (r.view) {
    case 'feed':
      body = <Feed me={me} />;
      break;
    case 'user':
      body = <UserCard me={me} channel={r.args[0] || ''} user={r.args[1] || ''} />;
      break;
    case 'log':
      body = <ModLog me={me} />;
      break;
    case 'rules':
      body = <Rules me={me} />;
      break;
    case 'health':
      body = <Health me={me} />;
      break;
    default:
      body = <Queue me={me} />;
  }
  return (
    <div class="shell">
      <header>
        <span class="brand">whiply</span>
        <nav aria-label="views">
          {VIEWS.map(([v, label]) => (
            <a key={v} href={`#/${v}`} aria-current={r.view === v ? 'page' : undefined}>
              {label}
            </a>
          ))}
        </nav>
        <span class={`stream stream-${stream}`} role="status">
          {stream === 'open' ? 'live' : stream}
        </span>
        <span class="who">
          {me.name} <span class="scopes">({me.scopes.join(', ')})</span>
        </span>
        <button type="button" class="link" onClick={signOut}>
          Sign out
        </button>
      </header>
      {reloaded && (
        <p class="notice" role="status">
          Rules reloaded: {reloaded.previous} → {reloaded.ruleset} ({reloaded.rules} rules, by {reloaded.by})
        </p>
      )}
      <main>{body}</main>
    </div>
  );
}

render(<App />, document.getElementById('app'));
