// health.jsx - channels and health: throughput, latency percentiles and actions per rule
// over time (from GET /metrics, every 2 s), as charts (uPlot).
import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

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

export function Health() {
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
