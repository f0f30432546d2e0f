// ui.jsx - small pieces the views share.
import { segments } from './text.js';

export function Highlighted({ text, matches }) {
  return (
    <span class="msg">
      {segments(text, matches).map((s, i) =>
        s.rule ? (
          <mark key={i} title={`rule ${s.rule}`} data-rule={s.rule}>
            {s.text}
          </mark>
        ) : (
          <span key={i}>{s.text}</span>
        )
      )}
    </span>
  );
}

export function Action({ action }) {
  return <span class={`act act-${action}`}>{action}</span>;
}

export function time(ms) {
  if (!ms) return '';
  const d = new Date(ms);
  return d.toLocaleTimeString([], { hour12: false }) + '.' + String(d.getMilliseconds()).padStart(3, '0');
}

export function dateTime(ms) {
  if (!ms) return '';
  return new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
}

export function ErrorNote({ error }) {
  if (!error) return null;
  return (
    <p class="error" role="alert">
      {String(error.message || error)}
    </p>
  );
}

export function userHref(channel, user) {
  return `#/user/${encodeURIComponent(channel || '')}/${encodeURIComponent(user || '')}`;
}
