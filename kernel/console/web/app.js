// The Airlock console: a page of the kernel's own that calls its JSON API.
// The token lives in this script's memory only (never in storage, cookies or
// URLs); live updates come from GET /v1/events, read with fetch() because
// EventSource cannot send an Authorization header. Every element is built
// with DOM calls (Trusted Types forbid HTML sinks).
'use strict';

(() => {
  const session = {token: '', me: null, events: null, lastEventId: '', view: ''};

  const $ = (id) => document.getElementById(id);

  // --- small DOM helpers ----------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name === 'text') node.textContent = value;
      else if (name === 'onclick') node.addEventListener('click', value);
      else node.setAttribute(name, value === true ? '' : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function showError(message) {
    $('error').textContent = message || '';
  }

  function when(us) {
    if (!us) return '';
    return new Date(us / 1000).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
  }

  function duration(seconds) {
    if (seconds % 86400 === 0) return `${seconds / 86400} d`;
    if (seconds % 3600 === 0) return `${seconds / 3600} h`;
    if (seconds % 60 === 0) return `${seconds / 60} min`;
    return `${seconds} s`;
  }

  // --- the API --------------------------------------------------------------

  async function api(method, path, body) {
    const init = {method, headers: {Authorization: `Bearer ${session.token}`}};
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (e) {
      data = null;
    }
    if (!response.ok) {
      const message = data && data.message ? data.message : `${response.status} ${response.statusText}`;
      const error = new Error(message);
      error.status = response.status;
      throw error;
    }
    return data;
  }

  // --- sign-in --------------------------------------------------------------

  async function signIn(token) {
    session.token = token;
    try {
      session.me = await api('GET', '/v1/me');
    } catch (e) {
      session.token = '';
      session.me = null;
      $('sign-in-error').textContent = e.status === 401 ? 'That token was not accepted.' : e.message;
      return;
    }
    $('token').value = '';
    $('sign-in-error').textContent = '';
    $('who-name').textContent = session.me.subject;
    // With tenants the kernel says who is a platform admin (of no tenant).
    const tenant = session.me.tenant || (session.me.platform_admin ? 'all tenants' : '');
    $('who-tenant').textContent = tenant;
    $('who-tenant').hidden = !tenant;
    $('nav').hidden = false;
    $('who').hidden = false;
    $('nav-admin').hidden = !session.me.admin;
    startEvents();
    if (!location.hash || location.hash === '#/') location.hash = '#/catalog';
    else route();
  }

  function signOut() {
    session.token = '';
    session.me = null;
    if (session.events) session.events.abort();
    session.events = null;
    catalogShown = false;
    collected.clear();
    drafts.clear();
    shownQueue = '';
    $('nav').hidden = true;
    $('who').hidden = true;
    show('sign-in');
  }

  // --- live events ----------------------------------------------------------

  // Reads the SSE stream; each event re-renders what is shown (the stream
  // says what changed, the API says what it is now). Reconnects with
  // Last-Event-ID so nothing in between is missed.
  async function startEvents() {
    const controller = new AbortController();
    session.events = controller;
    while (session.events === controller) {
      try {
        const headers = {Authorization: `Bearer ${session.token}`, Accept: 'text/event-stream'};
        if (session.lastEventId) headers['Last-Event-ID'] = session.lastEventId;
        const response = await fetch('/v1/events', {headers, signal: controller.signal});
        if (!response.ok || !response.body) throw new Error(`events: ${response.status}`);
        setLive(true);
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const {value, done} = await reader.read();
          if (done) break;
          buffer += value;
          let end;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            onFrame(buffer.slice(0, end));
            buffer = buffer.slice(end + 2);
          }
        }
      } catch (e) {
        if (controller.signal.aborted) return;
      }
      setLive(false);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }

  function setLive(live) {
    $('live').textContent = live ? 'live' : 'offline';
    $('live').className = live ? 'live on' : 'live';
  }

  let refreshPending = false;
  function onFrame(frame) {
    let event = '';
    for (const line of frame.split('\n')) {
      if (line.startsWith('id:')) session.lastEventId = line.slice(3).trim();
      else if (line.startsWith('event:')) event = line.slice(6).trim();
    }
    if (!event) return;  // a keep-alive comment
    if (refreshPending) return;
    refreshPending = true;
    setTimeout(() => {
      refreshPending = false;
      refresh();
    }, 50);
  }

  // --- views ----------------------------------------------------------------

  const views = ['sign-in', 'catalog', 'requests', 'approvals', 'admin'];

  function show(name) {
    for (const v of views) $(`${v}-view`).hidden = v !== name;
    for (const v of views.slice(1)) {
      const link = $(`nav-${v}`);
      if (link) link.className = v === name ? 'current' : '';
    }
    session.view = name;
  }

  function route() {
    if (!session.me) return show('sign-in');
    const name = (location.hash || '#/catalog').slice(2).split('/')[0];
    show(views.includes(name) && name !== 'sign-in' ? name : 'catalog');
    showError('');
    refresh();
  }

  async function refresh() {
    if (!session.me) return;
    try {
      updateQueueCount();
      if (session.view === 'catalog') await renderCatalog();
      else if (session.view === 'requests') await renderRequests();
      else if (session.view === 'approvals') await renderApprovals();
      else if (session.view === 'admin') await renderAdmin();
    } catch (e) {
      showError(e.message);
    }
  }

  async function updateQueueCount() {
    try {
      const queue = await api('GET', '/v1/requests?awaiting=me');
      const n = queue.requests.length;
      $('queue-count').textContent = n ? String(n) : '';
    } catch (e) {
      $('queue-count').textContent = '';
    }
  }

  // Catalog and ask.
  let catalogShown = false;

  // What the policy would answer the signed-in user for one dataset.
  function forMe(preview) {
    if (!preview) return el('td', {class: 'for-me'});
    if (preview.effect === 'deny') {
      return el('td', {class: 'for-me deny', title: preview.reason || '', text: 'not for you'});
    }
    const parts = [];
    if (preview.effect === 'needs_approval') {
      const groups = ((preview.approval || {}).groups || []).join(', ');
      parts.push(groups ? `needs approval by ${groups}` : 'needs approval');
    } else {
      parts.push('granted at once');
    }
    const scope = preview.obligations || {};
    if ((scope.columns || []).length) parts.push(`only ${scope.columns.join(', ')}`);
    const masks = Object.entries(scope.masks || {}).map(([c, fn]) => `${c} ${fn}`);
    if (masks.length) parts.push(`masked: ${masks.join(', ')}`);
    if ((scope.row_filter || []).length) parts.push('some rows only');
    if (preview.max_window_seconds) parts.push(`up to ${duration(preview.max_window_seconds)}`);
    if (preview.purpose_min_length) parts.push(`say why (${preview.purpose_min_length}+ characters)`);
    return el('td', {class: `for-me ${preview.effect}`, title: preview.reason || '', text: parts.join('; ')});
  }

  // The dataset's columns, each a toggle: none picked asks for them all;
  // columns the policy withholds from this user cannot be picked.
  function columnPicks(d) {
    const allowed = ((d.for_me || {}).obligations || {}).columns || [];
    return el('td', {class: 'columns'}, ...(d.columns || []).map((c) => {
      const name = typeof c === 'string' ? c : c.name;
      const withheld = allowed.length > 0 && !allowed.includes(name);
      return el('label', {class: withheld ? 'col withheld' : 'col', title: withheld ? 'withheld by policy' : ''},
        el('input', {type: 'checkbox', class: 'col-pick', 'data-dataset': d.name, value: name, disabled: withheld}),
        name);
    }));
  }

  async function renderCatalog() {
    if (catalogShown) return;  // keep the user's choices while events arrive
    const catalog = await api('GET', '/v1/catalog?for=me');
    const body = $('catalog').tBodies[0];
    body.replaceChildren();
    // Datasets say their tenant only where tenants are configured.
    const tenanted = (catalog.datasets || []).some((d) => 'tenant' in d);
    document.querySelector('#catalog th.tenant-col').hidden = !tenanted;
    for (const d of catalog.datasets || []) {
      body.append(el('tr', {'data-dataset': d.name},
        el('td', {}, el('input', {type: 'checkbox', class: 'pick', value: d.name, 'aria-label': d.name})),
        el('td', {class: 'name', text: d.name}),
        tenanted ? el('td', {class: 'tenant', text: d.tenant || ''}) : null,
        el('td', {text: d.description || ''}),
        el('td', {}, ...(d.tags || []).map((t) => el('span', {class: 'tag', text: t}))),
        columnPicks(d),
        forMe(d.for_me)));
    }
    catalogShown = true;
  }

  async function ask() {
    const datasets = [...document.querySelectorAll('#catalog .pick:checked')].map((c) => c.value);
    const result = $('ask-result');
    result.className = '';
    if (!datasets.length) {
      result.textContent = 'Choose at least one dataset.';
      result.className = 'error';
      return;
    }
    const columns = {};
    for (const pick of document.querySelectorAll('#catalog .col-pick:checked')) {
      const dataset = pick.getAttribute('data-dataset');
      if (datasets.includes(dataset)) (columns[dataset] = columns[dataset] || []).push(pick.value);
    }
    const body = {datasets, purpose: $('purpose').value, window_seconds: Number($('window').value)};
    if (Object.keys(columns).length) body.columns = columns;
    try {
      const created = await api('POST', '/v1/requests', body);
      if (created.state === 'denied') {
        result.textContent = `Denied: ${created.reason}`;
        result.className = 'error';
      } else {
        result.textContent = `Asked: ${created.id} is ${created.state.replace('_', ' ')}.`;
      }
      $('purpose').value = '';
      for (const c of document.querySelectorAll('#catalog input:checked')) c.checked = false;
    } catch (e) {
      result.textContent = e.message;
      result.className = 'error';
    }
  }

  // One request as a card: what, why, where it stands, and what can be done.
  function requestCard(r, actions) {
    const ask = r.request || {};
    const decision = r.decision || {};
    // The reason of the last step, unless it only repeats the policy's.
    const showsReason = !!r.reason && r.reason !== decision.reason;
    const card = el('article', {class: `card state-${r.state}`, 'data-id': r.id},
      el('header', {},
        el('span', {class: 'state', text: r.state.replace('_', ' ')}),
        el('span', {class: 'datasets', text: (ask.datasets || []).join(', ')}),
        el('code', {class: 'id', text: r.id})),
      el('dl', {},
        el('dt', {text: 'Requester'}), el('dd', {class: 'requester', text: (r.requester || {}).subject || ''}),
        (r.requester || {}).tenant ? el('dt', {text: 'Tenant'}) : null,
        (r.requester || {}).tenant ? el('dd', {class: 'tenant', text: r.requester.tenant}) : null,
        el('dt', {text: 'Purpose'}), el('dd', {class: 'purpose', text: ask.purpose || '—'}),
        el('dt', {text: 'Window'}), el('dd', {text: ask.window_seconds ? duration(ask.window_seconds) : ''}),
        el('dt', {text: 'Policy'}), el('dd', {class: 'policy-reason', text: decision.reason || ''}),
        showsReason ? el('dt', {text: 'Reason'}) : null,
        showsReason ? el('dd', {class: 'reason', text: r.reason}) : null,
        r.state === 'ready' && r.deadline_us ? el('dt', {text: 'Until'}) : null,
        r.state === 'ready' && r.deadline_us ? el('dd', {class: 'until', text: when(r.deadline_us)}) : null));
    const obligations = decision.obligations || {};
    const scoped = Object.entries(obligations).filter(([, o]) => o && Object.keys(o).length);
    if (scoped.length) {
      const list = el('ul', {class: 'obligations'});
      for (const [dataset, o] of scoped) {
        const parts = [];
        if ((o.columns || []).length) parts.push(`only columns ${o.columns.join(', ')}`);
        const masks = Object.entries(o.masks || {});
        if (masks.length) parts.push(`masked ${masks.map(([c, f]) => `${c} (${f})`).join(', ')}`);
        if ((o.row_filter || []).length) {
          parts.push(`rows where ${o.row_filter.map((f) => `${f.column} ${f.op} ${JSON.stringify(f.value)}`).join(' and ')}`);
        }
        if (parts.length) list.append(el('li', {text: `${dataset}: ${parts.join('; ')}`}));
      }
      if (list.childElementCount) {
        card.append(el('div', {class: 'obligations-title', text: 'Obligations'}), list);
      }
    }
    if (ask.extension) {
      card.append(el('p', {class: 'extension',
        text: `Asks for ${duration(ask.extension.added_seconds)} more` +
              (ask.extension.purpose ? `: ${ask.extension.purpose}` : '')}));
    }
    if (actions) card.append(actions);
    return card;
  }

  // What the requester can do with their own request.
  function ownActions(r) {
    const bar = el('div', {class: 'actions'});
    if (r.state === 'ready' && r.tunnel && !r.tunnel.credential_collected && !collected.has(r.id)) {
      bar.append(el('button', {type: 'button', class: 'collect', text: 'Collect credential',
        onclick: () => collect(r, bar)}));
    } else if (r.state === 'ready' && r.tunnel && r.tunnel.url) {
      bar.append(el('a', {class: 'explorer', href: r.tunnel.url, target: '_blank', rel: 'noopener',
        text: 'Open the explorer'}));
    }
    if (r.state === 'ready' && !(r.request || {}).extension) {
      bar.append(el('button', {type: 'button', class: 'extend', text: 'Ask for 1 h more',
        onclick: () => act(r.id, 'extend', {window_seconds: 3600})}));
    }
    const open = ['pending_approval', 'approved', 'provisioning', 'ingesting', 'ready'];
    if (open.includes(r.state)) {
      bar.append(el('button', {type: 'button', class: 'revoke', text: r.state === 'ready' ? 'Close' : 'Cancel',
        onclick: () => act(r.id, 'revoke', {})}));
    }
    return bar;
  }

  // The credential is shown once: kept on the card until the page changes.
  const collected = new Map();
  async function collect(r, bar) {
    try {
      const grant = await api('POST', `/v1/requests/${r.id}/credentials`);
      collected.set(r.id, grant);
      renderRequests();
    } catch (e) {
      showError(e.message);
    }
  }

  function grantBox(grant) {
    const box = el('div', {class: 'grant'});
    const credential = el('input', {class: 'credential', type: 'text', readonly: true, value: grant.credential || '',
      'aria-label': 'credential'});
    const copied = el('span', {class: 'copied'});
    box.append(el('div', {class: 'row'}, credential,
      el('button', {type: 'button', class: 'copy', text: 'Copy',
        onclick: async () => {
          try {
            await navigator.clipboard.writeText(grant.credential || '');
            copied.textContent = 'copied';
          } catch (e) {
            // The clipboard API can refuse (no focus, no permission): the
            // older way, from the selected field, and else the user's keys.
            credential.select();
            copied.textContent = document.execCommand('copy') ? 'copied' : 'selected: press Ctrl+C';
          }
        }}), copied));
    if (grant.transport === 'pgwire' || (grant.url || '').startsWith('postgresql://')) {
      // The password goes through the environment, never the command line.
      const command = `PGPASSWORD='<paste>' psql "${grant.url}"`;
      box.append(el('p', {}, 'Connect with ', el('code', {class: 'psql', text: command})));
    } else if (grant.url) {
      box.append(el('p', {}, el('a', {class: 'explorer', href: grant.url, target: '_blank', rel: 'noopener',
        text: 'Open the explorer'}), ' and paste the credential there.'));
    }
    box.append(el('p', {class: 'hint', text: 'Shown once: it is not stored anywhere.'}));
    return box;
  }

  async function renderRequests() {
    const list = await api('GET', '/v1/requests?mine=true&limit=100');
    const box = $('requests');
    box.replaceChildren();
    if (!list.requests.length) box.append(el('p', {class: 'hint', text: 'No requests yet.'}));
    for (const r of list.requests) {
      const card = requestCard(r, ownActions(r));
      const grant = collected.get(r.id);
      if (grant && r.state === 'ready') card.append(grantBox(grant));
      box.append(card);
    }
  }

  async function act(id, action, body) {
    try {
      await api('POST', `/v1/requests/${id}/${action}`, body);
      await refresh();
    } catch (e) {
      showError(e.message);
    }
  }

  // Approvals: the queue, then what I decided.
  const drafts = new Map();
  async function renderApprovals() {
    const [queue, all] = await Promise.all([
      api('GET', '/v1/requests?awaiting=me'),
      api('GET', '/v1/requests?limit=200').catch(() => ({requests: []})),
    ]);
    // Unchanged requests keep their cards (and the focus and text of a
    // comment being written).
    const signature = queue.requests.map((r) => `${r.id}@${r.version}`).join(',');
    const box = $('queue');
    if (signature !== shownQueue || !box.childElementCount) {
      shownQueue = signature;
      drawQueue(box, queue.requests);
    }
    renderDecided(all);
  }

  let shownQueue = '';
  function drawQueue(box, requests) {
    box.replaceChildren();
    if (!requests.length) box.append(el('p', {class: 'hint', text: 'Nothing waits for you.'}));
    for (const r of requests) {
      // A comment being written survives the queue being drawn again.
      const comment = el('input', {class: 'comment', placeholder: 'Comment (optional)', maxlength: 1024,
        'aria-label': 'comment', value: drafts.get(r.id) || ''});
      comment.addEventListener('input', () => drafts.set(r.id, comment.value));
      const bar = el('div', {class: 'actions'}, comment,
        el('button', {type: 'button', class: 'approve', text: 'Approve',
          onclick: () => act(r.id, 'approve', {comment: comment.value})}),
        el('button', {type: 'button', class: 'deny', text: 'Deny',
          onclick: () => act(r.id, 'deny', {comment: comment.value})}));
      box.append(requestCard(r, bar));
    }
  }

  function renderDecided(all) {
    const me = session.me.subject;
    const decided = all.requests.filter((r) =>
      (r.approvals || []).some((a) => a.subject === me) ||
      (r.state === 'denied' && (r.reason || '').startsWith(`denied by ${me}`)));
    const done = $('decided');
    done.replaceChildren();
    if (!decided.length) done.append(el('p', {class: 'hint', text: 'No decisions yet.'}));
    for (const r of decided) done.append(requestCard(r));
  }

  // Admin: audit search, agents, plugins.
  async function renderAdmin() {
    const plugins = await api('GET', '/v1/plugins');
    const body = document.createDocumentFragment();
    for (const p of plugins.plugins || []) {
      body.append(el('tr', {}, el('td', {text: p.role || p.kind || ''}), el('td', {text: p.name || ''}),
        el('td', {text: p.plugin || ''}), el('td', {text: p.version || ''})));
    }
    $('plugins').tBodies[0].replaceChildren(body);
    // Built aside and swapped in whole: two refreshes at once show one list.
    const agents = document.createDocumentFragment();
    try {
      const status = await api('GET', '/v1/agents');
      const table = el('table', {}, el('thead', {}, el('tr', {},
        el('th', {text: 'Agent'}), el('th', {text: 'Status'}))));
      const rows = el('tbody');
      for (const a of status.agents || []) {
        rows.append(el('tr', {}, el('td', {text: a.name}), el('td', {text: a.status || ''})));
      }
      table.append(rows);
      agents.append(table);
    } catch (e) {
      agents.append(el('p', {class: 'hint', text: e.status === 404 ? 'No agents are configured.' : e.message}));
    }
    $('agents').replaceChildren(agents);
  }

  // Audit search: the filters as the API takes them; "Older records" asks
  // for the next page of the same search.
  const auditSearch = {params: null, nextPage: ''};

  function auditParams() {
    const params = new URLSearchParams();
    const fields = {subject: 'audit-subject', dataset: 'audit-dataset', request: 'audit-request', event: 'audit-event'};
    for (const [name, id] of Object.entries(fields)) {
      const value = $(id).value.trim();
      if (value) params.set(name, value);
    }
    // datetime-local is the viewer's local time; the API takes instants.
    for (const [name, id] of [['since', 'audit-since'], ['until', 'audit-until']]) {
      const value = $(id).value;
      if (value) params.set(name, new Date(value).toISOString());
    }
    // (A request id alone reads that request's whole trail, oldest first.)
    params.set('limit', [...params.keys()].length === 1 && params.has('request') ? '1000' : '50');
    return params;
  }

  function auditRow(rec) {
    const who = (rec.actor || rec.principal || {}).subject || '';
    // What the record says beyond its chain fields and its headline.
    const rest = Object.fromEntries(Object.entries(rec).filter(([k]) =>
      !['seq', 'ts', 'prev', 'hash', 'event', 'request_id', 'actor', 'principal'].includes(k)));
    const details = rec.reason || rec.comment || JSON.stringify(rest).slice(0, 160);
    return el('tr', {},
      el('td', {class: 'time', text: (rec.ts || '').replace('T', ' ').replace(/\.\d+Z$/, 'Z')}),
      el('td', {class: 'event', text: rec.event || ''}),
      el('td', {}, el('code', {class: 'request', text: rec.request_id || ''})),
      el('td', {class: 'who', text: who}),
      el('td', {class: 'details', text: details}));
  }

  async function searchAudit(more) {
    if (!more) {
      auditSearch.params = auditParams();
      auditSearch.nextPage = '';
      $('audit').tBodies[0].replaceChildren();
    }
    const params = new URLSearchParams(auditSearch.params);
    if (more && auditSearch.nextPage) params.set('page_token', auditSearch.nextPage);
    $('audit-status').textContent = 'Searching…';
    try {
      const page = await api('GET', `/v1/audit?${params}`);
      const rows = document.createDocumentFragment();
      for (const rec of page.records || []) rows.append(auditRow(rec));
      $('audit').tBodies[0].append(rows);
      auditSearch.nextPage = page.next_page_token || '';
      $('audit-more').hidden = !auditSearch.nextPage;
      const shown = $('audit').tBodies[0].rows.length;
      const records = `${shown} record${shown === 1 ? '' : 's'}`;
      $('audit-status').textContent = auditSearch.nextPage
        ? `${records} so far; older ones may match.`
        : `${records}; that is all.`;
      showError('');
    } catch (e) {
      $('audit-status').textContent = '';
      showError(e.message);
    }
  }

  // --- wiring ---------------------------------------------------------------

  document.addEventListener('DOMContentLoaded', () => {
    $('sign-in').addEventListener('click', () => signIn($('token').value.trim()));
    $('token').addEventListener('keydown', (e) => {
      if (e.key === 'Enter') signIn($('token').value.trim());
    });
    $('sign-out').addEventListener('click', signOut);
    $('ask').addEventListener('click', ask);
    $('audit-search').addEventListener('click', () => searchAudit(false));
    $('audit-more').addEventListener('click', () => searchAudit(true));
    window.addEventListener('hashchange', route);
    // The sign-in form is shown only once its buttons work: a click before
    // this point would be lost.
    show('sign-in');
    document.body.dataset.ready = 'true';
    startSingleSignOn();
  });

  // With an OpenID provider configured: offers it, and finishes a sign-in
  // that comes back from it.
  async function startSingleSignOn() {
    let config = null;
    try {
      const response = await fetch('/console/config.json');
      config = response.ok ? await response.json() : null;
    } catch (e) {
      config = null;
    }
    const oidc = config && config.oidc;
    if (!oidc || !window.AirlockOidc) return;
    const redirectUri = `${location.origin}/console/`;
    $('sso').hidden = false;
    $('sso-sign-in').addEventListener('click', () => {
      window.AirlockOidc.begin(oidc, redirectUri).catch((e) => {
        $('sign-in-error').textContent = e.message;
      });
    });
    try {
      const token = await window.AirlockOidc.complete(oidc, redirectUri);
      if (token) await signIn(token);
    } catch (e) {
      $('sign-in-error').textContent = e.message;
    }
  }
})();
