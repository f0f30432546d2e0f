// rules.jsx - the serving ruleset, an editor with live lint (POST /v1/rules/validate: errors
// at their line and column), a dry run of the edited rules over the recent events (POST
// /v1/rules/dryrun), a reload of the rules file, and the history of loaded rulesets with a
// diff between any two.
import { useEffect, useRef, useState } from 'preact/hooks';
import { diffLines } from 'diff';
import { api, can } from './api.js';
import { Action, ErrorNote, dateTime } from './ui.jsx';

function Lint({ diags, onGo }) {
  if (!diags) return null;
  if (!diags.length)
    return (
      <p class="ok" role="status">
        The rules load.
      </p>
    );
  return (
    <ul class="diags" role="status" aria-label="lint errors">
      {diags.map((d, i) => (
        <li key={i}>
          <button type="button" class="link" onClick={() => onGo(d.line, d.col)}>
            {d.line}:{d.col}
          </button>{' '}
          error: {d.message}
        </li>
      ))}
    </ul>
  );
}

function DryRun({ r }) {
  if (!r) return null;
  return (
    <div class="dryrun" role="status">
      <h2>Dry run</h2>
      <p>
        Over the last <strong>{r.events.toLocaleString()}</strong> events ({r.decided.toLocaleString()} decided, in{' '}
        {(r.took_us / 1000).toFixed(1)} ms): <strong data-testid="changed">{r.changed}</strong> decisions change.
      </p>
      <table class="rows">
        <thead>
          <tr>
            <th scope="col">action</th>
            <th scope="col">now</th>
            <th scope="col">with the edit</th>
          </tr>
        </thead>
        <tbody>
          {Object.keys(r.before).map((a) => (
            <tr key={a}>
              <td>
                <Action action={a} />
              </td>
              <td>{r.before[a]}</td>
              <td>{r.after[a]}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {r.by_rule.map((g) => (
        <div key={g.rule} class="byrule">
          <h3>
            {g.rule}: {g.changed} changed
          </h3>
          <ul>
            {g.examples.map((x, i) => (
              <li key={i}>
                <span class="msg">{x.text}</span> — <Action action={x.before.action} /> ({x.before.rules.join(', ') || 'no rule'}) →{' '}
                <Action action={x.after.action} /> ({x.after.rules.join(', ') || 'no rule'})
              </li>
            ))}
          </ul>
        </div>
      ))}
    </div>
  );
}

function History({ list }) {
  const [a, setA] = useState(1);
  const [b, setB] = useState(0);
  if (!list || !list.length) return null;
  const A = list[Math.min(a, list.length - 1)];
  const B = list[Math.min(b, list.length - 1)];
  const parts = A && B && A.source != null && B.source != null ? diffLines(A.source, B.source) : [];
  const pick = (v, set, label) => (
    <label>
      {label}{' '}
      <select value={v} onChange={(e) => set(parseInt(e.target.value, 10))}>
        {list.map((r, i) => (
          <option key={i} value={i}>
            {r.ruleset} ({dateTime(r.loaded_at_ms)}, {r.by})
          </option>
        ))}
      </select>
    </label>
  );
  return (
    <div class="history">
      <h2>Loaded rulesets</h2>
      <ol>
        {list.map((r, i) => (
          <li key={i}>
            {r.ruleset} — {r.rules} rules, {dateTime(r.loaded_at_ms)} UTC, by {r.by}
          </li>
        ))}
      </ol>
      {list.length > 1 && (
        <>
          {pick(a, setA, 'From')} {pick(b, setB, 'to')}
          <pre class="diff" aria-label="diff">
            {parts.map((p, i) => (
              <span key={i} class={p.added ? 'add' : p.removed ? 'del' : 'same'}>
                {p.value
                  .replace(/\n$/, '')
                  .split('\n')
                  .map((l) => (p.added ? '+ ' : p.removed ? '- ' : '  ') + l)
                  .join('\n') + '\n'}
              </span>
            ))}
          </pre>
        </>
      )}
    </div>
  );
}

export function Rules({ me }) {
  const [serving, setServing] = useState(null);
  const [text, setText] = useState('');
  const [diags, setDiags] = useState(null);
  const [dry, setDry] = useState(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const [hist, setHist] = useState(null);
  const [reloaded, setReloaded] = useState(null);
  const ta = useRef();
  const timer = useRef();
  const mayEdit = can(me, 'rules');

  const loadAll = () => {
    api('GET', '/v1/rules')
      .then((r) => {
        setServing(r);
        setText((t) => t || r.source || '');
      })
      .catch(setError);
    api('GET', '/v1/rules/history').then((r) => setHist(r.rulesets)).catch(() => {});
  };
  useEffect(loadAll, []);

  const lint = (t) => {
    if (!mayEdit) return;
    api('POST', '/v1/rules/validate', t, { okStatus: [422] })
      .then((r) => setDiags(r.valid ? [] : (r.error && r.error.diagnostics) || []))
      .catch(setError);
  };
  const onInput = (e) => {
    const t = e.target.value;
    setText(t);
    setDry(null);
    clearTimeout(timer.current);
    timer.current = setTimeout(() => lint(t), 300);
  };
  const go = (line, col) => {
    const el = ta.current;
    if (!el) return;
    const lines = el.value.split('\n');
    let pos = 0;
    for (let i = 0; i < line - 1 && i < lines.length; i++) pos += lines[i].length + 1;
    pos += Math.max(0, col - 1);
    el.focus();
    el.setSelectionRange(pos, pos);
  };
  const dryRun = async () => {
    setBusy(true);
    setError(null);
    try {
      const r = await api('POST', '/v1/rules/dryrun', text, { okStatus: [422], raw: true });
      if (r.status === 422) setDiags((r.json.error && r.json.error.diagnostics) || []);
      else setDry(r.json);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const reload = async () => {
    setError(null);
    try {
      setReloaded(await api('POST', '/v1/rules/reload'));
      loadAll();
    } catch (e) {
      setError(e);
    }
  };
  const badLines = new Set((diags || []).map((d) => d.line));
  const nlines = text.split('\n').length;
  return (
    <section class="rules">
      <h1>Rules</h1>
      {serving && (
        <p>
          Serving <strong>{serving.ruleset}</strong> from <code>{serving.path}</code>: {serving.rules.length} rules, loaded{' '}
          {dateTime(serving.loaded_at_ms)} UTC.
        </p>
      )}
      <ErrorNote error={error} />
      {mayEdit ? (
        <>
          <div class="editor">
            <div class="gutter" aria-hidden="true">
              {Array.from({ length: nlines }, (_, i) => (
                <div key={i} class={badLines.has(i + 1) ? 'bad' : ''}>
                  {i + 1}
                </div>
              ))}
            </div>
            <label class="sr-only" for="rules-text">
              Rules (YAML)
            </label>
            <textarea id="rules-text" ref={ta} spellcheck={false} value={text} onInput={onInput} wrap="off" />
          </div>
          <Lint diags={diags} onGo={go} />
          <div class="toolbar">
            <button type="button" onClick={dryRun} disabled={busy}>
              {busy ? 'Running…' : 'Dry run over recent events'}
            </button>
            <button type="button" onClick={reload}>
              Reload the rules file
            </button>
            <span class="hint">The editor does not write the file: save your change to {serving ? serving.path : 'the rules file'}, then reload.</span>
          </div>
          {reloaded && (
            <p class="notice" role="status">
              Reloaded: {reloaded.previous} → {reloaded.ruleset} ({reloaded.rules} rules)
            </p>
          )}
          <DryRun r={dry} />
        </>
      ) : (
        <pre class="source">{serving && serving.source}</pre>
      )}
      <History list={hist} />
    </section>
  );
}
