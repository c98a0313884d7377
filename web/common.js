// Shared by the Coord status pages: fetching the JSON API, formatting, and a poller that
// stops once the page says the job has ended.
'use strict';

const POLL_MS = 2000;

// GET an /api/ path as JSON; throws Error(message) with the API's {"error"} text.
async function api(path) {
  const r = await fetch(path, {cache: 'no-store'});
  let body = null;
  try { body = await r.json(); } catch (e) { /* not JSON */ }
  if (!r.ok) throw new Error((body && body.error) || (r.status + ' ' + r.statusText));
  return body;
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('data-')) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c instanceof Node ? c : String(c ?? ''));
  return e;
}

function fmtAge(s) {
  if (s === null || s === undefined) return '';
  if (s < 60) return s.toFixed(0) + ' s';
  if (s < 3600) return (s / 60).toFixed(1) + ' min';
  if (s < 86400) return (s / 3600).toFixed(1) + ' h';
  return (s / 86400).toFixed(1) + ' d';
}
function fmtNum(v, digits) {
  if (v === null || v === undefined) return '';
  return Number(v).toLocaleString(undefined, {maximumFractionDigits: digits ?? 2});
}
function fmtTime(ms) { return ms ? new Date(ms).toLocaleString() : ''; }
const TERMINAL = new Set(['SUCCEEDED', 'FAILED', 'KILLED']);

function showError(err) {
  const p = document.getElementById('error');
  p.hidden = !err;
  p.textContent = err ? String(err.message || err) : '';
}
function stamp() {
  document.getElementById('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
}

// Calls refresh() now and every POLL_MS until it returns false (the job ended).
function poll(refresh) {
  const tick = async () => {
    let again = true;
    try { again = await refresh(); showError(null); stamp(); } catch (e) { showError(e); }
    if (again !== false) setTimeout(tick, POLL_MS);
  };
  tick();
}
