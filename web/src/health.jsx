// health.jsx - channels and health: live waves and raids and the channel modes whiply switched
// on (from the stream's decisions), panic mode (GET /v1/channels, a start and a stop button),
// the action outbox (counts, dead letters with a retry),
// bus partition ownership, throughput, latency percentiles and actions per rule over time
// (from GET /metrics, every 2 s), as charts (uPlot).
import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { api, can, subscribe } from './api.js';
import { Action, ErrorNote, dateTime, time, userHref } from './ui.jsx';

const KEEP_WAVES = 50;

// Prometheus text exposition: name{labels} value lines into [{name, labels, value}].
export function parseMetrics(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line[0] === '#') continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[3]) for (const l of m[3].matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2].replace(/\\(.)/g, '$1');
    out.push({ name: m[1], labels, value: parseFloat(m[4]) });
  }
  return out;
}

function outboxCounts(ms) {
  const by = {};
  for (const m of ms) {
    if (m.name !== 'whiply_outbox_operations') continue;
    const c = (by[m.labels.platform] = by[m.labels.platform] || { platform: m.labels.platform, due: 0, dead: 0 });
    if (m.labels.status === 'dead') c.dead += m.value;
    else c.due += m.value;
  }
  return Object.values(by).filter((c) => c.due || c.dead);
}

function sum(ms, name, pred = () => true) {
  return ms.filter((m) => m.name === name && pred(m.labels)).reduce((a, m) => a + m.value, 0);
}

// A quantile from a cumulative histogram's deltas, as the upper bound of its bucket.
function quantile(buckets, q) {
  const total = buckets.length ? buckets[buckets.length - 1][1] : 0;
  if (!total) return null;
  for (const [le, n] of buckets) if (n >= q * total) return le;
  return null;
}

function Chart({ title, series, data }) {
  const el = useRef();
  const plot = useRef();
  useEffect(() => {
    const opts = {
      title,
      width: Math.min(720, (el.current && el.current.clientWidth) || 640),
      height: 220,
      series: [{}, ...series.map((s, i) => ({ label: s, stroke: ['#2563eb', '#b45309', '#047857', '#7c3aed'][i % 4], width: 2 }))],
      axes: [{}, { size: 70 }],
    };
    plot.current = new uPlot(opts, data, el.current);
    return () => plot.current.destroy();
  }, []);
  useEffect(() => {
    if (plot.current) plot.current.setData(data);
  }, [data]);
  return <figure class="chart" ref={el} aria-label={title} />;
}

// Waves and raids (a decision naming its targets) and channel modes switched on (a decision
// with a channel_action), as the stream brings them while the page is open.
function useChannelEvents() {
  const [waves, setWaves] = useState([]);
  const [modes, setModes] = useState([]);
  useEffect(
    () =>
      subscribe('decision', (d) => {
        const x = d.decision;
        if (x.targets) setWaves((w) => [d].concat(w).slice(0, KEEP_WAVES));
        if (x.channel_action) {
          const m = { channel: d.event.channel, mode: x.channel_action.mode, from: d.at_ms, until: d.at_ms + x.channel_action.duration_s * 1000, rule: (x.rules || [])[0] };
          setModes((v) => [m].concat(v.filter((o) => !(o.channel === m.channel && o.mode === m.mode))).slice(0, KEEP_WAVES));
        }
      }),
    []
  );
  return { waves, modes };
}

function Waves({ waves }) {
  return (
    <>
      <h2>Waves and raids</h2>
      {!waves.length ? (
        <p class="empty">None since this page opened.</p>
      ) : (
        <table class="rows waves">
          <thead>
            <tr>
              <th scope="col">time</th>
              <th scope="col">channel</th>
              <th scope="col">rule</th>
              <th scope="col">action</th>
              <th scope="col">members</th>
            </tr>
          </thead>
          <tbody>
            {waves.map((d) => (
              <tr key={d.event.id} data-event={d.event.id}>
                <td>{time(d.at_ms)}</td>
                <td>{d.event.channel}</td>
                <td>{(d.decision.rules || []).join(', ')}</td>
                <td>
                  <Action action={d.decision.action} />
                </td>
                <td>
                  <details>
                    <summary>{d.decision.targets.length} users</summary>
                    {d.decision.targets.map((t, i) => (
                      <span key={t}>
                        {i ? ', ' : ''}
                        <a href={userHref(d.event.channel, t)}>{t}</a>
                      </span>
                    ))}
                  </details>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}

function Modes({ modes }) {
  const now = Date.now();
  const on = modes.filter((m) => m.until > now);
  return (
    <>
      <h2>Channel modes whiply switched on</h2>
      {!on.length ? (
        <p class="empty">None on since this page opened.</p>
      ) : (
        <table class="rows modes">
          <thead>
            <tr>
              <th scope="col">channel</th>
              <th scope="col">mode</th>
              <th scope="col">by rule</th>
              <th scope="col">until</th>
            </tr>
          </thead>
          <tbody>
            {on.map((m) => (
              <tr key={m.channel + m.mode}>
                <td>{m.channel}</td>
                <td>{m.mode}</td>
                <td>{m.rule}</td>
                <td>{time(m.until)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}

// Panic mode: the channels whose panic switch is on (GET /v1/channels, asked every 5 s and at
// every panic decision the stream brings), each with a button that ends it, and a form that
// switches a channel's on (POST /v1/channels/CHANNEL/panic, `review` scope). What panic
// means is the rules' `panic: true` preset.
function hhmm(ms) {
  const d = new Date(ms);
  return String(d.getHours()).padStart(2, '0') + ':' + String(d.getMinutes()).padStart(2, '0');
}

function Panic({ me }) {
  const [rows, setRows] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const [warning, setWarning] = useState(null);
  const [form, setForm] = useState({ channel: '', platform: '', minutes: '10' });
  const load = () =>
    api('GET', '/v1/channels')
      .then((r) => setRows(r.channels))
      .catch(setError);
  useEffect(() => {
    load();
    const t = setInterval(load, 5000);
    const off = subscribe('decision', (d) => {
      if (d.event.type === 'mod_action' && d.event.action === 'panic') load();
    });
    return () => {
      clearInterval(t);
      off();
    };
  }, []);
  const send = async (channel, platform, forS) => {
    setBusy(true);
    setError(null);
    setWarning(null);
    try {
      const body = { for_s: forS };
      if (platform) body.platform = platform;
      const r = await api('POST', `/v1/channels/${encodeURIComponent(channel)}/panic`, body);
      if (r.warning) setWarning(r.warning);
      await load();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const mod = can(me, 'review');
  const start = (e) => {
    e.preventDefault();
    const m = parseInt(form.minutes, 10);
    if (!form.channel || !(m > 0)) return setError(new Error('a channel and a number of minutes (1 to 10080)'));
    send(form.channel, form.platform, Math.min(m, 10080) * 60);
  };
  const field = (k) => (e) => setForm({ ...form, [k]: e.currentTarget.value });
  return (
    <>
      <h2>Panic mode</h2>
      {rows && !rows.length && <p class="empty">No channel is in panic mode.</p>}
      {rows && rows.length > 0 && (
        <table class="rows panic">
          <thead>
            <tr>
              <th scope="col">channel</th>
              <th scope="col">platform</th>
              <th scope="col">until</th>
              <th scope="col">by</th>
              {mod && <th scope="col">end</th>}
            </tr>
          </thead>
          <tbody>
            {rows.map((c) => (
              <tr key={c.platform + ' ' + c.channel} data-channel={c.channel}>
                <td>{c.channel}</td>
                <td>{c.platform}</td>
                <td title={dateTime(c.panic_until)}>panic until {hhmm(c.panic_until)}</td>
                <td>{c.by}</td>
                {mod && (
                  <td>
                    <button type="button" disabled={busy} onClick={() => send(c.channel, c.platform, 0)}>
                      Stop panic
                    </button>
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {mod && (
        <form class="panic-start" onSubmit={start}>
          <label>
            Channel <input id="panic-channel" value={form.channel} onInput={field('channel')} placeholder="#channel" />
          </label>{' '}
          <label>
            Platform <input id="panic-platform" value={form.platform} onInput={field('platform')} placeholder="twitch" />
          </label>{' '}
          <label>
            Minutes <input id="panic-minutes" type="number" min="1" max="10080" value={form.minutes} onInput={field('minutes')} />
          </label>{' '}
          <button type="submit" disabled={busy}>
            Start panic
          </button>
        </form>
      )}
      {warning && <p class="error" role="status">{warning}</p>}
      <ErrorNote error={error} />
    </>
  );
}

// The action outbox: what is due and dead by platform (metrics), and the dead letters, each
// with a retry (POST /v1/actions/ID/retry).
function Outbox({ me, counts }) {
  const [dead, setDead] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(null);
  const load = () =>
    api('GET', '/v1/actions?status=dead&limit=100')
      .then((r) => setDead(r.actions))
      .catch(setError);
  useEffect(() => {
    load();
    const t = setInterval(load, 5000);
    return () => clearInterval(t);
  }, []);
  const retry = async (id) => {
    setBusy(id);
    setError(null);
    try {
      await api('POST', `/v1/actions/${encodeURIComponent(id)}/retry`, { moderator: me.name || 'dashboard' });
      await load();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(null);
    }
  };
  return (
    <>
      <h2>Action outbox</h2>
      {counts.length ? (
        <table class="rows outbox-counts">
          <thead>
            <tr>
              <th scope="col">platform</th>
              <th scope="col">due</th>
              <th scope="col">dead</th>
            </tr>
          </thead>
          <tbody>
            {counts.map((c) => (
              <tr key={c.platform}>
                <td>{c.platform}</td>
                <td>{c.due}</td>
                <td>{c.dead}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : (
        <p class="empty">Nothing due or dead.</p>
      )}
      <ErrorNote error={error} />
      {dead && dead.length > 0 && (
        <table class="rows dead">
          <caption>Dead letters</caption>
          <thead>
            <tr>
              <th scope="col">operation</th>
              <th scope="col">platform</th>
              <th scope="col">channel</th>
              <th scope="col">event</th>
              <th scope="col">attempts</th>
              <th scope="col">last attempt</th>
              <th scope="col">since</th>
              {can(me, 'review') && <th scope="col">retry</th>}
            </tr>
          </thead>
          <tbody>
            {dead.map((a) => (
              <tr key={a.id} data-action={a.id}>
                <td>{a.kind}</td>
                <td>{a.platform}</td>
                <td>{a.channel}</td>
                <td>{a.event_id}</td>
                <td>{a.attempts}</td>
                <td>{a.detail}</td>
                <td>{dateTime(a.updated_ms)}</td>
                {can(me, 'review') && (
                  <td>
                    <button type="button" disabled={busy === a.id} onClick={() => retry(a.id)}>
                      Retry
                    </button>
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}

function Partitions({ owned }) {
  return (
    <>
      <h2>Bus partitions</h2>
      {!owned.length ? (
        <p class="empty">No bus is configured: this instance decides every channel.</p>
      ) : (
        <p class="partitions">
          {owned.map((p) => (
            <span key={p.partition} class={p.owned ? 'part owned' : 'part'} title={p.owned ? 'owned by this instance' : 'another instance'}>
              {p.partition}
            </span>
          ))}
          <span class="sub">
            {' '}
            {owned.filter((p) => p.owned).length} of {owned.length} owned by {owned[0].instance}
          </span>
        </p>
      )}
    </>
  );
}

export function Health({ me }) {
  const { waves, modes } = useChannelEvents();
  const [now, setNow] = useState(null);
  const [tp, setTp] = useState([[], [], []]);
  const [lat, setLat] = useState([[], [], []]);
  const [error, setError] = useState(null);
  const prev = useRef(null);
  useEffect(() => {
    let stop = false;
    const poll = async () => {
      try {
        const res = await fetch('/metrics', { credentials: 'same-origin' });
        if (!res.ok) throw new Error(`GET /metrics: HTTP ${res.status}`);
        const ms = parseMetrics(await res.text());
        const t = Date.now() / 1000;
        const events = sum(ms, 'whiply_events_total');
        const acted = sum(ms, 'whiply_decisions_total', (l) => l.action !== 'allow');
        const buckets = ms
          .filter((m) => m.name === 'whiply_engine_seconds_per_event_bucket')
          .map((m) => [m.labels.le === '+Inf' ? Infinity : parseFloat(m.labels.le), m.value]);
        const p = prev.current;
        if (p) {
          const dt = t - p.t;
          const d = buckets.map(([le, n], i) => [le, n - (p.buckets[i] ? p.buckets[i][1] : 0)]);
          const us = (x) => (x == null || !isFinite(x) ? null : x * 1e6);
          setTp((o) => [o[0].concat(t).slice(-150), o[1].concat((events - p.events) / dt).slice(-150), o[2].concat((acted - p.acted) / dt).slice(-150)]);
          setLat((o) => [o[0].concat(t).slice(-150), o[1].concat(us(quantile(d, 0.5))).slice(-150), o[2].concat(us(quantile(d, 0.99))).slice(-150)]);
        }
        prev.current = { t, events, acted, buckets };
        const rules = ms.filter((m) => m.name === 'whiply_rule_hits_total').map((m) => [m.labels.rule, m.value]);
        rules.sort((a, b) => b[1] - a[1]);
        setNow({
          events,
          pending: sum(ms, 'whiply_review_pending'),
          conns: sum(ms, 'whiply_http_connections'),
          queue: sum(ms, 'whiply_audit_queue_depth'),
          damaged: sum(ms, 'whiply_audit_damaged'),
          rules: rules.slice(0, 15),
          outbox: outboxCounts(ms),
          partitions: ms
            .filter((m) => m.name === 'whiply_bus_partition_owned')
            .map((m) => ({ partition: +m.labels.partition, instance: m.labels.instance, owned: m.value > 0 }))
            .sort((a, b) => a.partition - b.partition),
        });
        setError(null);
      } catch (e) {
        setError(e);
      }
      if (!stop) setTimeout(poll, 2000);
    };
    poll();
    return () => {
      stop = true;
    };
  }, []);
  return (
    <section class="health">
      <h1>Channels and health</h1>
      {error && (
        <p class="error" role="alert">
          {String(error.message)}
        </p>
      )}
      {now && (
        <dl class="record">
          <dt>Events decided</dt>
          <dd>{now.events.toLocaleString()}</dd>
          <dt>Waiting for review</dt>
          <dd>{now.pending}</dd>
          <dt>Audit queue</dt>
          <dd>{now.queue}</dd>
          <dt>Audit trail</dt>
          <dd>{now.damaged ? 'DAMAGED' : 'ok'}</dd>
          <dt>Connections</dt>
          <dd>{now.conns}</dd>
        </dl>
      )}
      <Waves waves={waves} />
      <Modes modes={modes} />
      <Panic me={me} />
      <Outbox me={me} counts={now ? now.outbox : []} />
      {now && <Partitions owned={now.partitions} />}
      <Chart title="Throughput (events/s)" series={['decided', 'acted on']} data={tp} />
      <Chart title="Engine latency per event (µs, bucket bound)" series={['p50', 'p99']} data={lat} />
      {now && (
        <>
          <h2>Rule hits</h2>
          <table class="rows">
            <thead>
              <tr>
                <th scope="col">rule</th>
                <th scope="col">hits</th>
              </tr>
            </thead>
            <tbody>
              {now.rules.map(([r, n]) => (
                <tr key={r}>
                  <td>{r}</td>
                  <td>{n}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}
