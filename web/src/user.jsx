// user.jsx - a user's card: their decisions in a channel (GET /v1/decisions), strikes and
// reputation as the last decision that reported them, and manual actions (POST /v1/moderate:
// a mod_action event through the same path as any event, audited).
import { useEffect, useState } from 'preact/hooks';
import { api, can } from './api.js';
import { Action, ErrorNote } from './ui.jsx';

export function UserCard({ me, channel, user }) {
  const [hist, setHist] = useState(null);
  const [error, setError] = useState(null);
  const [done, setDone] = useState(null);
  const [dur, setDur] = useState('600');
  const [note, setNote] = useState('');
  const load = () => {
    const q = new URLSearchParams({ user, limit: '200' });
    if (channel) q.set('channel', channel);
    api('GET', `/v1/decisions?${q}`).then((r) => setHist(r.decisions)).catch(setError);
  };
  useEffect(load, [channel, user]);
  const rec = (hist || []).find((d) => d.strikes !== undefined || d.strike !== undefined);
  const act = async (action) => {
    setError(null);
    setDone(null);
    try {
      const body = { channel, user, action, ...(note ? { note } : {}) };
      if (action === 'timeout') body.duration_s = parseInt(dur, 10) || 600;
      const r = await api('POST', '/v1/moderate', body);
      setDone(r);
      load();
    } catch (e) {
      setError(e);
    }
  };
  const counts = {};
  for (const d of hist || []) counts[d.action] = (counts[d.action] || 0) + 1;
  return (
    <section class="user">
      <h1>
        {user} <span class="sub">in {channel || 'every channel'}</span>
      </h1>
      <dl class="record">
        <dt>Strikes</dt>
        <dd data-testid="strikes">{rec ? rec.strikes ?? rec.strike : 0}</dd>
        <dt>Reputation</dt>
        <dd>{rec && rec.reputation !== undefined ? rec.reputation : '—'}</dd>
        <dt>Decisions</dt>
        <dd>
          {Object.entries(counts)
            .map(([a, n]) => `${a} ${n}`)
            .join(' · ') || 'none'}
        </dd>
      </dl>
      {can(me, 'review') && (
        <form class="actions" onSubmit={(e) => e.preventDefault()}>
          <h2>Act</h2>
          <label>
            Note <input value={note} onInput={(e) => setNote(e.target.value)} placeholder="optional" />
          </label>
          <button type="button" onClick={() => act('warn')}>
            Warn
          </button>
          <label>
            Timeout seconds <input type="number" min="1" max="1209600" value={dur} onInput={(e) => setDur(e.target.value)} />
          </label>
          <button type="button" onClick={() => act('timeout')}>
            Timeout
          </button>
          <button type="button" onClick={() => act('ban')}>
            Ban
          </button>
          <button type="button" onClick={() => act('unban')}>
            Unban / forgive strikes
          </button>
        </form>
      )}
      <ErrorNote error={error} />
      {done && (
        <p class="notice" role="status">
          Recorded {done.event.id}: {done.decision.strikes !== undefined ? `strikes now ${done.decision.strikes}` : 'no state kept by these rules'}
        </p>
      )}
      <h2>History</h2>
      <table class="rows">
        <thead>
          <tr>
            <th scope="col">event</th>
            <th scope="col">action</th>
            <th scope="col">rules</th>
            <th scope="col">strike</th>
            <th scope="col">reason</th>
          </tr>
        </thead>
        <tbody>
          {(hist || []).map((d, i) => (
            <tr key={d.id + i}>
              <td>{d.id}</td>
              <td>
                <Action action={d.action} />
              </td>
              <td>{(d.rules || []).join(', ')}</td>
              <td>{d.strikes ?? d.strike ?? ''}</td>
              <td>{d.reason || ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
