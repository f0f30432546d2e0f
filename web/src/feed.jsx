// feed.jsx - the live feed: decisions as the daemon makes them (GET /v1/stream), filtered,
// pausable, matched spans highlighted, shadow decisions marked. Events arrive into a bounded
// buffer; the list is drawn at most four times a second whatever the rate, so a busy channel
// (10,000 decisions/s) does not freeze the page.
import { useEffect, useRef, useState } from 'preact/hooks';
import { subscribe } from './api.js';
import { Action, Highlighted, time, userHref } from './ui.jsx';

const KEEP = 2000;
const SHOW = 150;
const ACTIONS = ['', 'allow', 'warn', 'hold', 'delete', 'timeout', 'ban'];

function matches(f, d) {
  const e = d.event;
  if (f.channel && e.channel !== f.channel) return false;
  if (f.action && d.decision.action !== f.action) return false;
  if (f.user && e.user.id !== f.user && e.user.name !== f.user) return false;
  if (f.rule && !(d.decision.rules || []).includes(f.rule) && !(d.decision.shadow || []).some((s) => s.rule === f.rule))
    return false;
  if (f.hideAllow && d.decision.action === 'allow' && !(d.decision.shadow || []).length) return false;
  return true;
}

export function Feed() {
  const buf = useRef([]);
  const seen = useRef(0);
  const [rows, setRows] = useState([]);
  const [paused, setPaused] = useState(false);
  const [rate, setRate] = useState(0);
  const [lagged, setLagged] = useState(0);
  const [f, setF] = useState({ channel: '', action: '', rule: '', user: '', hideAllow: false });
  const pausedRef = useRef(paused);
  const fRef = useRef(f);
  pausedRef.current = paused;
  fRef.current = f;

  useEffect(() => {
    const off = subscribe('decision', (d) => {
      seen.current++;
      const b = buf.current;
      b.push(d);
      if (b.length > KEEP * 2) b.splice(0, b.length - KEEP);
    });
    const offLag = subscribe('lagging', (l) => setLagged((n) => n + (l.dropped || 0)));
    let last = seen.current;
    let lastT = performance.now();
    const tick = setInterval(() => {
      const now = performance.now();
      setRate(Math.round(((seen.current - last) * 1000) / (now - lastT)));
      last = seen.current;
      lastT = now;
      if (pausedRef.current) return;
      const b = buf.current;
      const out = [];
      for (let i = b.length - 1; i >= 0 && out.length < SHOW; i--) if (matches(fRef.current, b[i])) out.push(b[i]);
      setRows(out);
    }, 250);
    return () => {
      off();
      offLag();
      clearInterval(tick);
    };
  }, []);

  const set = (k) => (e) => setF({ ...f, [k]: e.target.type === 'checkbox' ? e.target.checked : e.target.value });
  return (
    <section class="feed">
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
        <label class="check">
          <input type="checkbox" checked={f.hideAllow} onChange={set('hideAllow')} /> Hide allowed
        </label>
        <button type="button" onClick={() => setPaused(!paused)} aria-pressed={paused ? 'true' : 'false'}>
          {paused ? 'Resume' : 'Pause'}
        </button>
        <span class="rate" aria-live="off">
          {rate.toLocaleString()} decisions/s{lagged ? ` · ${lagged.toLocaleString()} skipped (slow connection)` : ''}
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
