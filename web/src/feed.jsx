// feed.jsx - the live feed: decisions as the daemon makes them (GET /v1/stream), filtered,
// pausable, matched spans highlighted, shadow decisions marked. The channel, action and allowed
// filters are the daemon's (a stream asked with them: it sends only what the feed shows, and
// plain allows sampled unless asked for every one); rule and user are filtered here. Events
// arrive as text into a bounded buffer and only the rows drawn are parsed; the list is drawn at
// most four times a second, the newest SHOW rows, whatever the rate, so that a busy channel
// (10,000 decisions/s) does not freeze the page.
import { useEffect, useRef, useState } from 'preact/hooks';
import { STREAM_DEFAULT, onStreamLive, setStreamFilter, subscribe, subscribeRaw } from './api.js';
import { Action, Highlighted, time, userHref } from './ui.jsx';

const KEEP = 2000;
const SHOW = 100;
const ALLOW_SAMPLED = 50;
const ACTIONS = ['', 'allow', 'warn', 'hold', 'delete', 'timeout', 'ban'];
const ALLOWED = [
  ['sampled', `sampled (${ALLOW_SAMPLED}/s at most)`],
  ['all', 'every one'],
  ['none', 'none'],
];

// what the daemon filters (GET /v1/stream's query)
export function streamFilter(f) {
  return { channel: f.channel.trim(), action: f.action, allow: f.allowed === 'all' ? 'all' : f.allowed === 'none' ? '0' : String(ALLOW_SAMPLED) };
}

function plainAllow(d) {
  const x = d.decision;
  return x.action === 'allow' && !(x.shadow || []).length && !x.channel_action && !x.targets && d.event.type !== 'mod_action';
}

function matches(f, d) {
  const e = d.event;
  if (f.channel && e.channel !== f.channel.trim()) return false;
  if (f.action && d.decision.action !== f.action) return false;
  if (f.user && e.user.id !== f.user && e.user.name !== f.user) return false;
  if (f.rule && !(d.decision.rules || []).includes(f.rule) && !(d.decision.shadow || []).some((s) => s.rule === f.rule))
    return false;
  if (f.allowed === 'none' && plainAllow(d)) return false;
  return true;
}

export function Feed() {
  const buf = useRef([]); // {raw, d}: the text as it came, parsed when drawn; newest last
  const dirty = useRef(false);
  const [rows, setRows] = useState([]);
  const [paused, setPaused] = useState(false);
  const [rate, setRate] = useState({ decided: 0, shown: 0, sampled: 0 });
  const [lagged, setLagged] = useState(0);
  const [live, setLive] = useState(null);
  const [f, setF] = useState({ channel: '', action: '', rule: '', user: '', allowed: 'sampled' });
  const pausedRef = useRef(paused);
  const fRef = useRef(f);
  pausedRef.current = paused;
  fRef.current = f;

  useEffect(() => {
    let got = 0;
    const off = subscribeRaw('decision', (raw) => {
      got++;
      const b = buf.current;
      b.push({ raw, d: null });
      if (b.length > KEEP * 2) b.splice(0, b.length - KEEP);
      dirty.current = true;
    });
    // the daemon counts what it decided in the feed's channels, and the allows it left out
    const offStats = subscribe('stats', (s) => {
      const per = 1000 / Math.max(1, s.interval_ms);
      const decided = Object.values(s.decided || {}).reduce((a, n) => a + n, 0);
      setRate({ decided: Math.round(decided * per), shown: Math.round(got * per), sampled: Math.round((s.sampled_out || 0) * per) });
      got = 0;
    });
    const offLag = subscribe('lagging', (l) => setLagged((n) => n + (l.dropped || 0)));
    const offLive = onStreamLive(setLive);
    const tick = setInterval(() => {
      if (pausedRef.current || !dirty.current) return;
      dirty.current = false;
      const b = buf.current;
      const out = [];
      for (let i = b.length - 1; i >= 0 && out.length < SHOW; i--) {
        const e = b[i];
        if (e.d === null) {
          try {
            e.d = JSON.parse(e.raw);
          } catch (err) {
            e.d = false;
          }
          e.raw = null;
        }
        if (e.d && matches(fRef.current, e.d)) out.push(e.d);
      }
      setRows(out);
    }, 250);
    return () => {
      off();
      offStats();
      offLag();
      offLive();
      clearInterval(tick);
      setStreamFilter(STREAM_DEFAULT);
    };
  }, []);

  // the daemon's filters: asked again when they change (typing settles first)
  const first = useRef(true);
  useEffect(() => {
    dirty.current = true;
    if (first.current) {
      first.current = false;
      setStreamFilter(streamFilter(f));
      return undefined;
    }
    const t = setTimeout(() => setStreamFilter(streamFilter(f)), 300);
    return () => clearTimeout(t);
  }, [f.channel, f.action, f.allowed]);
  useEffect(() => {
    dirty.current = true;
  }, [f.rule, f.user]);

  const set = (k) => (e) => setF({ ...f, [k]: e.target.type === 'checkbox' ? e.target.checked : e.target.value });
  return (
    <section class="feed" data-live={live === null ? undefined : live}>
      <h1>Live feed</h1>
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          Channel <input value={f.channel} onInput={set('channel')} placeholder="any" />
        </label>
        <label>
          Action{' '}
          <select value={f.action} onChange={set('action')}>
            {ACTIONS.map((a) => (
              <option key={a} value={a}>
                {a || 'any'}
              </option>
            ))}
          </select>
        </label>
        <label>
          Rule <input value={f.rule} onInput={set('rule')} placeholder="any" />
        </label>
        <label>
          User <input value={f.user} onInput={set('user')} placeholder="any" />
        </label>
        <label>
          Allowed{' '}
          <select value={f.allowed} onChange={set('allowed')}>
            {ALLOWED.map(([v, label]) => (
              <option key={v} value={v}>
                {label}
              </option>
            ))}
          </select>
        </label>
        <button type="button" onClick={() => setPaused(!paused)} aria-pressed={paused ? 'true' : 'false'}>
          {paused ? 'Resume' : 'Pause'}
        </button>
        <span class="rate" aria-live="off">
          {rate.decided.toLocaleString()} decisions/s, {rate.shown.toLocaleString()} shown
          {rate.sampled ? ` · ${rate.sampled.toLocaleString()} allowed/s not sent (sampled)` : ''}
          {lagged ? ` · ${lagged.toLocaleString()} skipped (slow connection)` : ''}
        </span>
      </form>
      <table class="rows">
        <thead>
          <tr>
            <th scope="col">time</th>
            <th scope="col">channel</th>
            <th scope="col">user</th>
            <th scope="col">action</th>
            <th scope="col">rules</th>
            <th scope="col">message</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((d) => (
            <tr key={d.event.id + ':' + d.at_ms} data-event={d.event.id} class={d.decision.shadow ? 'has-shadow' : ''}>
              <td class="t">{time(d.at_ms)}</td>
              <td>{d.event.channel}</td>
              <td>
                <a href={userHref(d.event.channel, d.event.user.id || d.event.user.name || d.decision.target)}>
                  {d.event.user.name || d.event.user.id || d.event.target}
                </a>
              </td>
              <td>
                <Action action={d.decision.action} />
              </td>
              <td>
                {(d.decision.rules || []).join(', ')}
                {(d.decision.shadow || []).map((s) => (
                  <span key={s.rule} class="shadow" title="shadow rule: reported, not enforced">
                    shadow {s.rule}→{s.action}
                  </span>
                ))}
              </td>
              <td>
                {d.event.type === 'mod_action' ? (
                  <span class="modact">
                    {d.event.moderator}: {d.event.action} {d.event.target}
                  </span>
                ) : (
                  <Highlighted text={d.event.text} matches={d.decision.matches} />
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {!rows.length && <p class="empty">No decisions yet{paused ? ' (paused)' : ''}.</p>}
    </section>
  );
}
