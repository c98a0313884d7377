// One job (job.html?id=JOB[&offset=R&limit=N][&q=TEXT]): the job, its progress curves
// and its nodes' resources every 2 s while it lives; its logs on demand. The grid is one
// page of ranks (the API's limit/offset: 10,000 ranks are megabytes), with the whole
// job's counts and the ranks needing attention anywhere in it above; offset in the URL
// opens that page. `q` in the URL runs a log search on load (a link to a search result
// can be shared). Chart.js draws the curves; each canvas's data-points says how many
// points it drew.
'use strict';

const params = new URLSearchParams(location.search);
const jobId = params.get('id') || '';
const base = '/api/jobs/' + encodeURIComponent(jobId);
const charts = {};
// The page of ranks shown: the API's default size unless the URL says otherwise.
const page = {offset: Math.max(0, Number(params.get('offset')) || 0),
              limit: Number(params.get('limit')) || 0};
const COLORS = ['#0969da', '#cf222e', '#1a7f37', '#8250df', '#bf8700', '#0a3069', '#bc4c00', '#57606a'];

// --- charts -----------------------------------------------------------------------------

// datasets: [{label, points: [{x, y}]}]; x is linear (iteration, or minutes).
function drawChart(id, xTitle, datasets) {
  const canvas = document.getElementById(id);
  const count = datasets.reduce((n, d) => n + d.points.length, 0);
  canvas.setAttribute('data-points', String(count));
  // An empty chart says so (no GPU on the node, no "lr" in the ranks' progress records).
  canvas.parentElement.classList.toggle('empty', count === 0);
  if (typeof Chart === 'undefined') {
    document.getElementById('charts-missing').hidden = false;
    return;
  }
  const data = {datasets: datasets.map((d, i) => ({
    label: d.label, data: d.points, borderColor: COLORS[i % COLORS.length],
    backgroundColor: COLORS[i % COLORS.length], borderWidth: 1.5, pointRadius: 0, spanGaps: true,
  }))};
  if (charts[id]) {
    charts[id].data = data;
    charts[id].update('none');
    return;
  }
  charts[id] = new Chart(canvas, {
    type: 'line', data,
    options: {
      animation: false, responsive: true, maintainAspectRatio: false, parsing: false,
      normalized: true,
      scales: {x: {type: 'linear', title: {display: true, text: xTitle}}},
      plugins: {legend: {display: datasets.length > 1, labels: {boxWidth: 10}}},
    },
  });
}

function column(columns, name) { return columns.indexOf(name); }

function drawProgress(p) {
  const it = column(p.columns, 'iteration');
  const series = (name) => {
    const c = column(p.columns, name);
    return p.points.filter((r) => r[c] !== null && r[it] !== null).map((r) => ({x: r[it], y: r[c]}));
  };
  drawChart('chart-loss', 'iteration', [{label: 'loss', points: series('loss')}]);
  drawChart('chart-lr', 'iteration', [{label: 'lr', points: series('lr')}]);
  drawChart('chart-tokens', 'iteration', [{label: 'tokens/s', points: series('tokens_per_s')}]);
}

function drawResources(res, startMs) {
  const t = column(res.columns, 't_ms');
  const per = (name, scale) => res.nodes.map((n) => {
    const c = column(res.columns, name);
    return {label: 'node ' + (n.node_rank ?? '?') + ' ' + n.host,
            points: n.points.filter((r) => r[c] !== null)
                .map((r) => ({x: (r[t] - startMs) / 60000, y: r[c] * scale}))};
  });
  const netBoth = res.nodes.map((n) => {
    const rx = column(res.columns, 'net_rx_bytes_per_s'), tx = column(res.columns, 'net_tx_bytes_per_s');
    return {label: 'node ' + (n.node_rank ?? '?') + ' ' + n.host,
            points: n.points.filter((r) => r[rx] !== null && r[tx] !== null)
                .map((r) => ({x: (r[t] - startMs) / 60000, y: (r[rx] + r[tx]) / 1e6}))};
  });
  const GiB = 1 / (1024 * 1024 * 1024);
  drawChart('chart-cpu', 'minutes', per('cpu_percent', 1));
  drawChart('chart-mem', 'minutes', per('mem_used_bytes', GiB));
  drawChart('chart-net', 'minutes', netBoth);
  drawChart('chart-gpu', 'minutes', per('gpu_util_percent', 1));
  drawChart('chart-gpumem', 'minutes', per('gpu_mem_used_mib', 1 / 1024));
  drawChart('chart-power', 'minutes', per('gpu_power_w', 1));
}

// --- tables -----------------------------------------------------------------------------

function drawSummary(data) {
  const j = data.job;
  document.title = 'Coord ' + j.id;
  document.getElementById('job-id').textContent = j.id;
  const st = document.getElementById('job-state');
  st.textContent = j.state;
  st.setAttribute('data-state', j.state);
  st.className = 'state state-' + j.state;
  const rows = [
    ['name', j.name], ['nodes', j.nodes], ['ranks', j.ranks],
    ['generation', j.generation], ['restarts', j.restarts + ' of ' + j.max_restarts],
    ['age', fmtAge(j.age_s)],
    ['iteration', j.iteration === null ? '' : fmtNum(j.iteration, 0) +
        (j.train_iters ? ' / ' + fmtNum(j.train_iters, 0) : '')],
    ['loss', fmtNum(j.loss, 4)], ['tokens/s', fmtNum(j.tokens_per_s, 0)],
    ['step', j.step_ms === null ? '' : fmtNum(j.step_ms, 1) + ' ms'],
    ['last progress', j.seconds_since_progress === null ? '' : fmtAge(j.seconds_since_progress) + ' ago'],
    ['last checkpoint', data.checkpoints.last_iteration ?? ''],
    ['created', fmtTime(j.created_ms)], ['started', fmtTime(j.started_ms)],
    ['ended', fmtTime(j.ended_ms)], ['config', j.config_path],
    ['master', j.master ?? ''],
    ['stragglers', data.stragglers.map((s) => 'rank ' + s.rank + ' on ' + s.host + ' (' +
        fmtNum(s.score, 2) + 'x its peers)').join('; ')],
  ];
  document.getElementById('summary').replaceChildren(
      ...rows.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
  document.getElementById('message').textContent = j.message;
}

function rankClass(r) {
  if (r.state === 'running') return 'rank-running';
  if (r.state === 'exited') return r.exit_code === 0 && !r.signal ? 'rank-exited-ok' : 'rank-exited-bad';
  return 'rank-unknown';
}

function drawGrid(nodes) {
  const rows = nodes.map((n) => el('tr', {'data-node': n.node_rank},
      el('td', {class: 'num'}, n.node_rank), el('td', {}, n.host + ':' + n.port),
      el('td', {}, n.state + (n.error ? ': ' + n.error : '')),
      el('td', {}, el('div', {class: 'ranks'}, ...n.ranks.map((r) => {
        const bits = [];
        if (r.exit_code !== null) bits.push(r.signal ? 'signal ' + r.signal : 'exit ' + r.exit_code);
        if (r.iteration !== null) bits.push('it ' + r.iteration);
        if (r.step_ms !== null) bits.push(fmtNum(r.step_ms, 1) + ' ms');
        if (r.progress_age_s !== null) bits.push(fmtAge(r.progress_age_s) + ' ago');
        return el('div', {class: 'rank ' + rankClass(r) + (r.straggler ? ' straggler' : ''),
                          'data-rank': r.rank, 'data-state': r.state,
                          title: r.error || (r.straggler ? 'straggler' : '')},
            el('b', {}, 'rank ' + r.rank + ' ' + r.state), bits.join(' · '));
      })))));
  document.querySelector('#grid tbody').replaceChildren(...rows);
}

function drawCounts(c) {
  const parts = [['running', c.ranks_running], ['exited 0', c.ranks_exited_ok],
      ['ended otherwise', c.ranks_exited_error], ['not started', c.ranks_not_started]]
      .filter(([, n]) => n > 0).map(([what, n]) => fmtNum(n, 0) + ' ' + what);
  const nodes = Object.entries(c.node_states).map(([state, n]) => fmtNum(n, 0) + ' ' + state);
  document.getElementById('counts').textContent = 'ranks: ' + (parts.join(', ') || 'none') +
      ' · nodes: ' + (nodes.join(', ') || 'none');
}

function drawPager(p) {
  const range = document.getElementById('page-range');
  const last = p.offset + p.ranks - 1;
  range.textContent = p.ranks ? p.offset + '–' + last : 'none';
  range.setAttribute('data-first', p.ranks ? String(p.offset) : '');
  range.setAttribute('data-last', p.ranks ? String(last) : '');
  document.getElementById('page-total').textContent = fmtNum(p.total, 0);
  page.limit = p.limit;
  page.total = p.total;
  document.getElementById('page-prev').disabled = p.offset === 0;
  document.getElementById('page-next').disabled = p.offset + p.limit >= p.total;
}

function drawTrouble(t) {
  document.getElementById('no-trouble').hidden = t.ranks.length > 0;
  const more = document.getElementById('trouble-more');
  more.hidden = t.total <= t.ranks.length;
  more.textContent = (t.total - t.ranks.length) + ' more not listed';
  document.querySelector('#trouble tbody').replaceChildren(...t.ranks.map((r) => {
    const show = el('button', {type: 'button'}, 'show in grid');
    show.onclick = () => goToRank(r.rank);
    return el('tr', {'data-rank': r.rank, 'data-why': r.why},
        el('td', {class: 'num'}, r.rank), el('td', {}, r.why),
        el('td', {}, r.node_rank + ' ' + r.host),
        el('td', {}, r.state + (r.error ? ': ' + r.error : '')),
        el('td', {}, r.exit_code === null ? '' : r.signal ? 'signal ' + r.signal : r.exit_code),
        el('td', {class: 'num'}, r.iteration ?? ''),
        el('td', {}, r.progress_age_s === null ? '' : fmtAge(r.progress_age_s) + ' ago'),
        el('td', {}, show));
  }));
}

function drawStates(states) {
  document.querySelector('#states tbody').replaceChildren(...states.map((s) => el('tr', {},
      el('td', {}, fmtTime(s.t_ms)), el('td', {class: 'num'}, s.generation),
      el('td', {}, s.from ?? ''), el('td', {}, s.to), el('td', {}, s.message))));
}

function drawFailures(failures) {
  document.getElementById('no-failures').hidden = failures.length > 0;
  document.querySelector('#failures tbody').replaceChildren(...failures.map((f) => el('tr', {},
      el('td', {}, f.kind), el('td', {}, f.host ? f.node_rank + ' ' + f.host : ''),
      el('td', {class: 'num'}, f.rank ?? ''),
      el('td', {}, f.signal ? 'signal ' + f.signal : f.exit_code),
      el('td', {}, fmtTime(f.occurred_ms)),
      el('td', {}, fmtTime(f.detected_ms) + (f.detection_s !== null ? ' (+' + fmtNum(f.detection_s, 1) + ' s)' : '')),
      el('td', {}, fmtTime(f.relaunched_ms) + (f.restart_s !== null ? ' (+' + fmtNum(f.restart_s, 1) + ' s)' : '')),
      el('td', {}, f.action), el('td', {class: 'message'}, f.message))));
}

function drawCheckpoints(cp) {
  const items = cp.seen.slice().reverse().map((c) =>
      el('li', {}, 'iteration ' + c.iteration + ' at ' + fmtTime(c.t_ms) + ' (generation ' + c.generation + ')'));
  if (!items.length) items.push(el('li', {class: 'sub'}, 'none reported yet'));
  document.getElementById('checkpoints').replaceChildren(...items);
}

// --- logs -------------------------------------------------------------------------------

// A number field, not a list: a job of 10,000 ranks would be 10,000 <option>s.
function fillRanks(world) {
  const input = document.getElementById('log-rank');
  input.max = Math.max(0, world - 1);
  if (Number(input.value) >= world) input.value = 0;
}

async function showLog(rank, stream, from) {
  const q = new URLSearchParams({stream});
  if (from) { q.set('from', from); q.set('lines', 400); } else { q.set('tail', 400); }
  const pre = document.getElementById('log');
  try {
    const data = await api(base + '/ranks/' + rank + '/log?' + q);
    pre.replaceChildren(...data.lines.map((l) => el('span', {class: l.stream},
        l.n !== null ? el('span', {class: 'n'}, String(l.n).padStart(6) + '  ') : '', l.text, '\n')));
    if (data.truncated) pre.append(el('span', {class: 'n'}, '[cut: more than the page shows]\n'));
    if (!data.lines.length) pre.textContent = '(no lines)';
  } catch (e) { pre.textContent = String(e.message); }
}

async function search(text, regex, icase) {
  const status = document.getElementById('search-status');
  const list = document.getElementById('search-results');
  status.textContent = 'searching...';
  list.replaceChildren();
  const q = new URLSearchParams({q: text, regex: regex ? 1 : 0, icase: icase ? 1 : 0});
  try {
    const data = await api(base + '/logs/search?' + q);
    list.replaceChildren(...data.matches.map((m) => {
      const li = el('li', {class: 'hit', 'data-rank': m.rank, 'data-line': m.line, 'data-stream': m.stream},
          'rank ' + m.rank + ' ' + m.stream + ':' + m.line + '  ', m.text);
      li.onclick = () => {
        document.getElementById('log-rank').value = m.rank;
        document.getElementById('log-stream').value = m.stream;
        document.getElementById('log-from').value = Math.max(1, m.line - 5);
        showLog(m.rank, m.stream, Math.max(1, m.line - 5));
      };
      return li;
    }));
    status.textContent = data.matches.length + ' match' + (data.matches.length === 1 ? '' : 'es') +
        ' in ' + fmtNum(data.scanned_bytes / 1e6, 2) + ' MB' +
        (data.truncated ? ' (first ones only)' : '') + (data.complete ? '' : ' (not every log read)') +
        (data.error ? ': ' + data.error : '');
    status.setAttribute('data-matches', String(data.matches.length));
  } catch (e) { status.textContent = String(e.message); }
}

document.getElementById('log-form').onsubmit = (ev) => {
  ev.preventDefault();
  showLog(document.getElementById('log-rank').value, document.getElementById('log-stream').value,
          document.getElementById('log-from').value);
};
document.getElementById('search-form').onsubmit = (ev) => {
  ev.preventDefault();
  search(document.getElementById('search-q').value, document.getElementById('search-regex').checked,
         document.getElementById('search-icase').checked);
};

// --- the page of ranks ------------------------------------------------------------------

function jobPath() {
  const q = new URLSearchParams({offset: page.offset});
  if (page.limit) q.set('limit', page.limit);
  return base + '?' + q;
}

// The resource curves of the grid page's nodes (the API's node page: at most 128).
function resourcesPath(job) {
  const nproc = Math.max(1, job.job.nproc_per_node || 1);
  const q = new URLSearchParams({offset: Math.floor(page.offset / nproc),
                                 limit: Math.min(128, Math.max(1, Math.ceil(job.page.limit / nproc)))});
  return base + '/resources?' + q;
}

function drawResourcesRange(p) {
  const range = document.getElementById('resources-range');
  range.hidden = p.total <= p.nodes;
  range.textContent = 'nodes ' + p.offset + '–' + (p.offset + p.limit - 1) + ' (the page of ranks above): ' +
      p.nodes + ' of ' + p.total + ' nodes with curves';
}

function drawJob(job) {
  drawSummary(job);
  drawCounts(job.counts);
  drawPager(job.page);
  drawTrouble(job.trouble);
  drawGrid(job.nodes);
}

// Another page now (the poll may have stopped: the job ended); the URL keeps it.
async function showPage(offset) {
  page.offset = Math.max(0, offset);
  const q = new URLSearchParams(location.search);
  q.set('offset', page.offset);
  history.replaceState(null, '', '?' + q);
  try { drawJob(await api(jobPath())); showError(null); } catch (e) { showError(e); }
}
function goToRank(rank) {
  const limit = page.limit || 1;
  showPage(Math.floor(rank / limit) * limit);
}

document.getElementById('page-prev').onclick = () => showPage(page.offset - (page.limit || 0));
document.getElementById('page-next').onclick = () => showPage(page.offset + (page.limit || 0));
document.getElementById('pager').onsubmit = (ev) => {
  ev.preventDefault();
  const rank = Number(document.getElementById('page-rank').value);
  if (Number.isInteger(rank) && rank >= 0 && (page.total === undefined || rank < page.total)) {
    goToRank(rank);
  }
};

// --- the poll ---------------------------------------------------------------------------

let first = true;
poll(async () => {
  const [job, progress] = await Promise.all([api(jobPath()), api(base + '/progress')]);
  const resources = await api(resourcesPath(job));
  drawJob(job);
  drawResourcesRange(resources.page);
  drawStates(job.states);
  drawFailures(job.failures);
  drawCheckpoints(job.checkpoints);
  drawProgress(progress);
  drawResources(resources, job.job.created_ms || 0);
  fillRanks(job.job.ranks);
  if (first) {
    first = false;
    showLog(0, 'both', '');
    if (params.get('q')) {
      document.getElementById('search-q').value = params.get('q');
      search(params.get('q'), params.get('regex') === '1', params.get('icase') === '1');
    }
  }
  return !TERMINAL.has(job.job.state);  // one last draw after the end, then quiet
});
