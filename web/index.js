// The jobs list (index.html): /api/jobs every 2 s, newest job first.
'use strict';

function jobRow(j) {
  const link = el('a', {href: 'job.html?id=' + encodeURIComponent(j.id)}, j.id);
  const iter = j.iteration === null ? '' :
      fmtNum(j.iteration, 0) + (j.train_iters ? ' / ' + fmtNum(j.train_iters, 0) : '');
  return el('tr', {'data-job': j.id},
      el('td', {}, link), el('td', {}, j.name),
      el('td', {}, el('span', {class: 'state state-' + j.state}, j.state)),
      el('td', {class: 'num'}, j.nodes), el('td', {class: 'num'}, j.ranks),
      el('td', {class: 'num'}, j.generation), el('td', {class: 'num'}, j.restarts),
      el('td', {class: 'num'}, fmtAge(j.age_s)), el('td', {class: 'num'}, iter),
      el('td', {class: 'num'}, fmtNum(j.loss, 4)), el('td', {class: 'num'}, fmtNum(j.tokens_per_s, 0)),
      el('td', {}, j.stragglers.length ? 'rank ' + j.stragglers.join(', ') : ''));
}

poll(async () => {
  const data = await api('/api/jobs');
  document.querySelector('#jobs tbody').replaceChildren(...data.jobs.map(jobRow));
  document.getElementById('empty').hidden = data.jobs.length > 0;
  return true;
});
