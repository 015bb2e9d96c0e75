// Airlock explorer: browse the schema and run read-only SQL through this
// request's tunnel endpoint.
//
// Security contract (see docs/tunnels.md):
//  - The credential lives in one variable of this closure. It is never written
//    to the URL, to storage (localStorage, sessionStorage, cookies) or to the
//    DOM; the input field is cleared as soon as it has been read.
//  - Every value from the server reaches the page through textContent or
//    createElement, never through HTML parsing (the page's Content-Security-
//    Policy also enforces Trusted Types, so an HTML sink would throw).
//  - The only thing read from the URL is an optional "#autorun=<SQL>" fragment
//    (never sent to the server), run once a credential has been entered.
'use strict';

(function () {
  const kMaxRenderedRows = 1000;

  let credential = null;  // memory only
  let running = false;

  const $ = (id) => document.getElementById(id);

  function element(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function showMessage(text) {
    $('message').textContent = text || '';
  }

  function showError(text) {
    const box = $('error');
    box.textContent = text || '';
    box.hidden = !text;
  }

  function describeError(body, status) {
    if (body && typeof body.error === 'string') {
      return body.error + ': ' + (typeof body.message === 'string' ? body.message : '');
    }
    return 'HTTP ' + status;
  }

  // Why the endpoint stopped answering, in the tunnel's words: a closed
  // endpoint answers 410 with its reason (window_ended, revoked, ...).
  async function whyClosed() {
    try {
      const response = await call('session');
      if (response.ok) return 'The connection dropped; try again.';
      const body = await response.json().catch(() => null);
      return describeError(body, response.status);
    } catch (e) {
      return 'The tunnel cannot be reached.';
    }
  }

  // Requests are relative to the page (/t/<id>/), carry the credential as a
  // bearer header and are never cached.
  async function call(path, options) {
    const init = Object.assign({ cache: 'no-store', credentials: 'omit', redirect: 'error' },
                               options || {});
    init.headers = Object.assign({ Authorization: 'Bearer ' + credential }, init.headers || {});
    const response = await fetch(path, init);
    if (response.status === 401) {
      let body = null;
      try { body = await response.json(); } catch (e) { /* not JSON */ }
      forget(describeError(body, 401));
      throw new Error('unauthenticated');
    }
    return response;
  }

  function forget(reason) {
    credential = null;
    $('workspace').hidden = true;
    $('login').hidden = false;
    $('forget').hidden = true;
    $('session-info').textContent = '';
    clear($('tables'));
    clearResult();
    showMessage(reason || '');
  }

  async function connect(event) {
    event.preventDefault();
    const input = $('credential');
    const value = input.value.trim();
    input.value = '';
    if (!value) return;
    credential = value;
    showMessage('');
    let response;
    try {
      response = await call('session');
    } catch (e) {
      if (e.message !== 'unauthenticated') forget('cannot reach the tunnel: ' + e.message);
      return;
    }
    const body = await response.json().catch(() => null);
    if (!response.ok || !body) {
      forget(describeError(body, response.status));
      return;
    }
    const until = new Date(body.expires_at * 1000);
    $('session-info').textContent = 'request ' + body.request_id +
        (body.principal ? ' · ' + body.principal : '') + ' · until ' + until.toLocaleString();
    $('login').hidden = true;
    $('workspace').hidden = false;
    $('forget').hidden = false;
    await loadTables();
    const autorun = takeAutorun();
    if (autorun !== null) {
      $('sql').value = autorun;
      await run();
    } else {
      $('sql').focus();
    }
  }

  function takeAutorun() {
    const hash = window.location.hash;
    if (!hash.startsWith('#autorun=')) return null;
    try {
      return decodeURIComponent(hash.slice('#autorun='.length));
    } catch (e) {
      return null;
    }
  }

  function quoteIdentifier(name) {
    return '"' + String(name).replace(/"/g, '""') + '"';
  }

  // A first aggregate call within a clean room's rules.
  function aggregateExample(name, room) {
    const call = {dataset: name, dimensions: (room.dimensions || []).slice(0, 1), metrics: []};
    const functions = Array.isArray(room.allowed_functions) ? room.allowed_functions : [];
    if (functions.includes('count')) call.metrics.push({function: 'count'});
    const metric = (room.metrics || [])[0];
    const other = functions.find((f) => f !== 'count');
    if (metric && other) call.metrics.push({function: other, column: metric});
    return 'AGGREGATE ' + JSON.stringify(call);
  }

  async function loadTables() {
    const list = $('tables');
    clear(list);
    let response;
    try {
      response = await call('tables');
    } catch (e) {
      return;
    }
    const body = await response.json().catch(() => null);
    if (!response.ok || !body || !Array.isArray(body.tables)) {
      list.appendChild(element('li', describeError(body, response.status)));
      return;
    }
    for (const table of body.tables) {
      const item = element('li');
      item.dataset.table = String(table.name);
      const button = element('button', table.name, 'table');
      button.type = 'button';
      button.title = 'Show columns and a sample query';
      item.appendChild(button);
      if (typeof table.rows === 'number') {
        item.appendChild(element('span', table.rows.toLocaleString() + ' rows', 'rows'));
      }
      // A clean room (the policy's aggregate_only obligation): only
      // aggregate calls are answered; say so, and why, before a query fails.
      const room = table.aggregate_only && typeof table.aggregate_only === 'object'
        ? table.aggregate_only : null;
      if (room) {
        const names = (list) => (Array.isArray(list) && list.length ? list.join(', ') : 'none');
        item.appendChild(element('p',
          'Aggregate-only (policy obligation aggregate_only): groups of at least ' +
          String(room.min_group_size) + ' rows, by ' + names(room.dimensions) + '; ' +
          names(room.allowed_functions) + ' of ' + names(room.metrics) +
          '. Free SQL is refused: send AGGREGATE {...}.', 'aggregate-only'));
      }
      const columns = element('ul', null, 'columns');
      columns.hidden = true;
      for (const column of Array.isArray(table.columns) ? table.columns : []) {
        columns.appendChild(element('li', column.name + ' : ' + column.type));
      }
      item.appendChild(columns);
      button.addEventListener('click', () => {
        columns.hidden = !columns.hidden;
        $('sql').value = room ? aggregateExample(table.name, room)
          : 'SELECT * FROM ' + quoteIdentifier(table.name) + ' LIMIT 100';
      });
      list.appendChild(item);
    }
  }

  function clearResult() {
    clear($('result').tHead);
    clear($('result').tBodies[0]);
    $('status').textContent = '';
    showError('');
  }

  function renderCell(row, value, type) {
    if (value === null) {
      row.appendChild(element('td', 'NULL', 'null'));
    } else if (typeof value === 'number' || type === 'int64' || type === 'int32' ||
               type === 'float64') {
      row.appendChild(element('td', value, 'number'));
    } else {
      row.appendChild(element('td', typeof value === 'string' ? value : JSON.stringify(value)));
    }
  }

  function renderResult(body, elapsedMs) {
    const table = $('result');
    const headRow = element('tr');
    const columns = Array.isArray(body.columns) ? body.columns : [];
    for (const column of columns) {
      const th = element('th', column.name);
      th.title = column.type;
      headRow.appendChild(th);
    }
    table.tHead.appendChild(headRow);
    const rows = Array.isArray(body.rows) ? body.rows : [];
    const fragment = document.createDocumentFragment();
    const shown = Math.min(rows.length, kMaxRenderedRows);
    for (let i = 0; i < shown; ++i) {
      const tr = element('tr');
      const row = rows[i];
      for (let c = 0; c < row.length; ++c) {
        renderCell(tr, row[c], columns[c] ? columns[c].type : '');
      }
      fragment.appendChild(tr);
    }
    table.tBodies[0].appendChild(fragment);
    let status = rows.length.toLocaleString() + (rows.length === 1 ? ' row' : ' rows') +
                 ' in ' + elapsedMs + ' ms';
    if (shown < rows.length) status += ' (showing the first ' + shown.toLocaleString() + ')';
    $('status').textContent = status;
    if (typeof body.error === 'string') {
      showError('The result is incomplete. ' + describeError(body, 200));
    }
  }

  async function run() {
    const sql = $('sql').value;
    if (running || !credential || !sql.trim()) return;
    running = true;
    $('run').disabled = true;
    clearResult();
    $('status').textContent = 'running…';
    const started = performance.now();
    try {
      const response = await call('query', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify({ sql: sql }),
      });
      let body = null;
      try {
        body = await response.json();
      } catch (e) {
        // Cut off mid-stream: the endpoint closed or the connection dropped.
        $('status').textContent = '';
        showError('The response was cut off. ' + await whyClosed());
        return;
      }
      const elapsed = Math.round(performance.now() - started);
      if (!response.ok) {
        $('status').textContent = '';
        showError(describeError(body, response.status));
        return;
      }
      renderResult(body, elapsed);
    } catch (e) {
      if (e.message !== 'unauthenticated') {
        $('status').textContent = '';
        showError('Request failed: ' + e.message);
      }
    } finally {
      running = false;
      $('run').disabled = false;
    }
  }

  async function downloadCsv() {
    const sql = $('sql').value;
    if (!credential || !sql.trim()) return;
    showError('');
    try {
      const response = await call('query?format=csv', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ sql: sql }),
      });
      if (!response.ok) {
        const body = await response.json().catch(() => null);
        showError(describeError(body, response.status));
        return;
      }
      const blob = await response.blob();
      const link = element('a');
      link.href = URL.createObjectURL(blob);
      link.download = 'result.csv';
      document.body.appendChild(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 60000);
    } catch (e) {
      if (e.message !== 'unauthenticated') {
        showError('The CSV download failed or was cut off: ' + e.message);
      }
    }
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('login-form').addEventListener('submit', connect);
    $('forget').addEventListener('click', () => forget('Credential forgotten.'));
    $('run').addEventListener('click', run);
    $('csv').addEventListener('click', downloadCsv);
    $('sql').addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        run();
      }
    });
    const autorun = takeAutorun();
    if (autorun !== null) $('sql').value = autorun;
    document.body.dataset.ready = 'true';
    $('credential').focus();
  });
})();
