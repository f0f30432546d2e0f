// log.jsx - the mod log: the audit trail searched by user, rule, action, moderator and time
// (GET /v1/audit), exported as NDJSON or CSV, with the result of `audit verify` and the last
// signed checkpoint (GET /v1/audit/verify).
import { useEffect, useState } from 'preact/hooks';
import { api } from './api.js';
import { ErrorNote, dateTime } from './ui.jsx';

const FIELDS = [
  ['user', 'User'],
  ['channel', 'Channel'],
  ['rule', 'Rule'],
  ['action', 'Action'],
  ['moderator', 'Moderator'],
  ['since', 'Since (10m, RFC 3339)'],
];

function query(f, extra) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries({ ...f, ...extra })) if (v) q.set(k, v);
  return q.toString();
}

export function ModLog() {
  const [f, setF] = useState({ kind: '', user: '', channel: '', rule: '', action: '', moderator: '', since: '' });
  const [rows, setRows] = useState(null);
  const [error, setError] = useState(null);
  const [verify, setVerify] = useState(null);
  const [verifying, setVerifying] = useState(false);
  const search = (e) => {
    if (e) e.preventDefault();
    setError(null);
    api('GET', `/v1/audit?${query(f, { limit: '200' })}`).then((r) => setRows(r.rows)).catch(setError);
  };
  useEffect(search, []);
  const runVerify = () => {
    setVerifying(true);
    api('GET', '/v1/audit/verify')
      .then(setVerify)
      .catch(setError)
      .finally(() => setVerifying(false));
  };
  const set = (k) => (e) => setF({ ...f, [k]: e.target.value });
  return (
    <section class="log">
      <h1>Mod log</h1>
      <form class="filters" onSubmit={search}>
        <label>
          Kind{' '}
          <select value={f.kind} onChange={set('kind')}>
            {['', 'decision', 'review', 'reload', 'system', 'checkpoint'].map((k) => (
              <option key={k} value={k}>
                {k || 'any'}
              </option>
            ))}
          </select>
        </label>
        {FIELDS.map(([k, label]) => (
          <label key={k}>
            {label} <input value={f[k]} onInput={set(k)} />
          </label>
        ))}
        <button type="submit">Search</button>
        <a class="button" href={`/v1/audit?${query(f, { format: 'ndjson' })}`} download="audit.ndjson">
          Export NDJSON
        </a>
        <a class="button" href={`/v1/audit?${query(f, { format: 'csv' })}`} download="audit.csv">
          Export CSV
        </a>
      </form>
      <div class="verify">
        <button type="button" onClick={runVerify} disabled={verifying}>
          {verifying ? 'Verifying…' : 'Verify the audit trail'}
        </button>
        {verify && (
          <div class={verify.ok ? 'ok' : 'bad'} role="status">
            <p>
              <strong>{verify.ok ? 'The chain is whole.' : 'The chain is NOT whole.'}</strong> ({verify.took_ms} ms; background
              check: {verify.background.state}, {verify.background.rows_verified} rows)
            </p>
            <pre>{verify.report}</pre>
            <p>
              Last signed checkpoint:{' '}
              {verify.checkpoint ? `row ${verify.checkpoint.checkpoint.seq}, key ${String(verify.checkpoint.public_key).slice(0, 16)}…` : 'none'}
            </p>
          </div>
        )}
      </div>
      <ErrorNote error={error} />
      {rows && (
        <table class="rows">
          <thead>
            <tr>
              <th scope="col">row</th>
              <th scope="col">time (UTC)</th>
              <th scope="col">kind</th>
              <th scope="col">event</th>
              <th scope="col">channel</th>
              <th scope="col">user</th>
              <th scope="col">action</th>
              <th scope="col">detail</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr key={r.seq}>
                <td>{r.seq}</td>
                <td>{dateTime(r.at_ms)}</td>
                <td>{r.kind}</td>
                <td>{r.event_id}</td>
                <td>{r.channel}</td>
                <td>{r.user}</td>
                <td>{r.action}</td>
                <td class="detail">
                  {r.body.moderator ? `by ${r.body.moderator} ` : ''}
                  {(r.body.rules || []).join(', ')}
                  {r.body.note ? ` “${r.body.note}”` : ''}
                  {r.body.event === 'reload' ? `${r.body.from} → ${r.body.to}` : ''}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
