// queue.jsx - the review queue: held messages, oldest or newest first, keyboard-first
// (j/k move, a approve, d deny, u user card, x select; bulk approve/deny of the selection).
// New holds arrive on the stream; items another moderator resolved disappear live.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, can, subscribe } from './api.js';
import { Action, ErrorNote, Highlighted, dateTime, time, userHref } from './ui.jsx';

function fromStream(d) {
  const e = d.event;
  return {
    event_id: e.id,
    platform: e.platform,
    channel: e.channel,
    user: e.user.id || e.user.name,
    user_name: e.user.name,
    text: e.text,
    decision: d.decision,
    created_ms: d.at_ms,
    status: 'pending',
  };
}

function Context({ item }) {
  const [ctx, setCtx] = useState(null);
  useEffect(() => {
    setCtx(null);
    if (!item || !item.user) return;
    const q = new URLSearchParams({ user: item.user, channel: item.channel || '', limit: '20' });
    api('GET', `/v1/decisions?${q}`)
      .then((r) => setCtx(r.decisions))
      .catch((e) => setCtx({ error: e }));
  }, [item && item.event_id]);
  if (!item) return null;
  const rec = Array.isArray(ctx) ? ctx.find((d) => d.strikes !== undefined || d.strike !== undefined) : null;
  return (
    <aside class="context" aria-label="user context">
      <h2>
        <a href={userHref(item.channel, item.user)}>{item.user_name || item.user}</a>
        <span class="sub"> in {item.channel}</span>
      </h2>
      {rec && (
        <p>
          Strikes: <strong>{rec.strikes ?? rec.strike}</strong>
          {rec.reputation !== undefined && <> · reputation {rec.reputation}</>}
        </p>
      )}
      {ctx && ctx.error && <ErrorNote error={ctx.error} />}
      {Array.isArray(ctx) && (
        <ul class="history">
          {ctx.slice(0, 10).map((d) => (
            <li key={d.id}>
              <Action action={d.action} /> {(d.rules || []).join(', ')} <span class="sub">{d.id}</span>
            </li>
          ))}
        </ul>
      )}
    </aside>
  );
}

export function Queue({ me }) {
  const [items, setItems] = useState([]);
  const [order, setOrder] = useState('oldest');
  const [cur, setCur] = useState(0);
  const [sel, setSel] = useState(new Set());
  const [error, setError] = useState(null);
  const [note, setNote] = useState('');
  const mayAct = can(me, 'review');
  const state = useRef();

  useEffect(() => {
    api('GET', '/v1/review?status=pending&limit=1000')
      .then((r) => setItems((live) => {
        const ids = new Set(r.items.map((i) => i.event_id));
        return r.items.concat(live.filter((i) => !ids.has(i.event_id)));
      }))
      .catch(setError);
    const offs = [
      subscribe('decision', (d) => {
        if (d.decision.action !== 'hold' || d.event.type === 'mod_action') return;
        setItems((v) => (v.some((i) => i.event_id === d.event.id) ? v : v.concat([fromStream(d)])));
      }),
      subscribe('review', (r) => {
        setItems((v) => v.filter((i) => i.event_id !== r.event_id));
        setSel((s) => {
          if (!s.has(r.event_id)) return s;
          const n = new Set(s);
          n.delete(r.event_id);
          return n;
        });
      }),
    ];
    return () => offs.forEach((f) => f());
  }, []);

  const sorted = order === 'oldest' ? items.slice().sort((a, b) => a.created_ms - b.created_ms) : items.slice().sort((a, b) => b.created_ms - a.created_ms);
  const at = Math.min(cur, Math.max(0, sorted.length - 1));
  const current = sorted[at];

  const verdict = async (ids, approve) => {
    setError(null);
    for (const id of ids) {
      try {
        await api('POST', `/v1/review/${encodeURIComponent(id)}/${approve ? 'approve' : 'deny'}`, {
          moderator: me.name || 'dashboard',
          ...(note ? { note } : {}),
        }, { okStatus: [409] });
        setItems((v) => v.filter((i) => i.event_id !== id));
      } catch (e) {
        setError(e);
        break;
      }
    }
    setSel(new Set());
  };

  state.current = { sorted, at, current, sel, mayAct, verdict };
  useEffect(() => {
    const onKey = (e) => {
      if (e.target.closest && e.target.closest('input, textarea, select')) return;
      if (e.ctrlKey || e.metaKey || e.altKey) return;
      const s = state.current;
      switch (e.key) {
        case 'j':
          setCur(Math.min(s.at + 1, s.sorted.length - 1));
          break;
        case 'k':
          setCur(Math.max(s.at - 1, 0));
          break;
        case 'a':
          if (s.mayAct && s.current) s.verdict([s.current.event_id], true);
          break;
        case 'd':
          if (s.mayAct && s.current) s.verdict([s.current.event_id], false);
          break;
        case 'u':
          if (s.current) location.hash = userHref(s.current.channel, s.current.user);
          break;
        case 'x':
          if (s.current)
            setSel((old) => {
              const n = new Set(old);
              n.has(s.current.event_id) ? n.delete(s.current.event_id) : n.add(s.current.event_id);
              return n;
            });
          break;
        default:
          return;
      }
      e.preventDefault();
    };
    addEventListener('keydown', onKey);
    return () => removeEventListener('keydown', onKey);
  }, []);

  useEffect(() => {
    const el = document.querySelector('.queue li[aria-current="true"]');
    if (el && el.scrollIntoView) el.scrollIntoView({ block: 'nearest' });
  }, [at, current && current.event_id]);

  const toggle = (id) => setSel((old) => {
    const n = new Set(old);
    n.has(id) ? n.delete(id) : n.add(id);
    return n;
  });

  return (
    <section class="queue">
      <h1>
        Review queue <span class="count">{items.length} pending</span>
      </h1>
      <div class="toolbar">
        <label>
          Order{' '}
          <select value={order} onChange={(e) => setOrder(e.target.value)}>
            <option value="oldest">oldest first</option>
            <option value="newest">newest first</option>
          </select>
        </label>
        {mayAct && (
          <>
            <label>
              Note <input value={note} onInput={(e) => setNote(e.target.value)} placeholder="optional, goes to the audit" />
            </label>
            <button type="button" disabled={!sel.size} onClick={() => verdict([...sel], true)}>
              Approve selected ({sel.size})
            </button>
            <button type="button" disabled={!sel.size} onClick={() => verdict([...sel], false)}>
              Deny selected ({sel.size})
            </button>
          </>
        )}
        <span class="keys">
          keys: <kbd>j</kbd>/<kbd>k</kbd> move{mayAct && <>, <kbd>a</kbd> approve, <kbd>d</kbd> deny, <kbd>x</kbd> select</>}, <kbd>u</kbd> user
        </span>
      </div>
      <ErrorNote error={error} />
      <div class="split">
        <ul class="items" aria-label="held messages">
          {sorted.map((it, i) => (
            <li
              key={it.event_id}
              data-event={it.event_id}
              aria-current={i === at ? 'true' : undefined}
              class={i === at ? 'current' : ''}
              onClick={() => setCur(i)}
            >
              {mayAct && (
                <input
                  type="checkbox"
                  aria-label={`select ${it.event_id}`}
                  checked={sel.has(it.event_id)}
                  onChange={() => toggle(it.event_id)}
                />
              )}
              <div class="body">
                <div class="meta">
                  <span class="t" title={dateTime(it.created_ms)}>{time(it.created_ms)}</span> {it.channel} ·{' '}
                  <a href={userHref(it.channel, it.user)}>{it.user_name || it.user}</a> ·{' '}
                  <span class="rule">{((it.decision && it.decision.rules) || []).join(', ')}</span>
                  {it.decision && it.decision.reason && <span class="reason"> — {it.decision.reason}</span>}
                </div>
                <Highlighted text={it.text} matches={it.decision && it.decision.matches} />
              </div>
              {mayAct && (
                <div class="acts">
                  <button type="button" onClick={() => verdict([it.event_id], true)}>
                    Approve
                  </button>
                  <button type="button" onClick={() => verdict([it.event_id], false)}>
                    Deny
                  </button>
                </div>
              )}
            </li>
          ))}
        </ul>
        <Context item={current} />
      </div>
      {!sorted.length && <p class="empty">Nothing is waiting for review.</p>}
    </section>
  );
}
