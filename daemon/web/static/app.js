// evidenced dashboard. Plain JavaScript, no framework: it calls the appliance's HTTP API like any
// client (the same endpoints, parameters and {"error": ...} answers) and follows /api/events.
'use strict';
(() => {
  const $ = (sel, el = document) => el.querySelector(sel);
  const $$ = (sel, el = document) => [...el.querySelectorAll(sel)];
  const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));

  const S = {
    token: localStorage.getItem('evidenced.token') || '',
    user: localStorage.getItem('evidenced.user') || '', role: '', um: false, users: [],
    ports: [], all: [], shown: [], details: {}, live: {}, cases: [], presets: [],
    dirty: new Set(), view: 'board', kind: 'image', es: null, refreshing: false, again: false,
  };
  const ACTIVE = new Set(['in-progress', 'paused', 'pending']);
  const DETAIL_LIMIT = 60; // tasks whose check-task details are loaded (newest first)

  class APIError extends Error {
    constructor(status, msg) { super(msg); this.status = status; }
  }

  // api calls an endpoint; a non-2xx answer throws with the API's own {"error": ...} text.
  async function api(path, params, opts = {}) {
    const u = new URL(path, location.origin);
    for (const [k, v] of Object.entries(params || {})) {
      if (v !== undefined && v !== null && (v !== '' || opts.keepEmpty)) u.searchParams.set(k, v);
    }
    const headers = Object.assign({}, opts.headers);
    if (S.token) headers.Authorization = 'Bearer ' + S.token;
    const r = await fetch(u, { method: opts.method || 'GET', headers, body: opts.body, cache: 'no-store' });
    const text = await r.text();
    if (!r.ok) {
      let msg = text;
      try { const j = JSON.parse(text); if (j && typeof j.error === 'string') msg = j.error; } catch (_) { /* not JSON */ }
      if (r.status === 401 && path !== '/login') needLogin();
      throw new APIError(r.status, msg || `${r.status} ${r.statusText}`);
    }
    return (r.headers.get('Content-Type') || '').includes('application/json') ? JSON.parse(text) : text;
  }

  const withToken = (path, params) => {
    const u = new URL(path, location.origin);
    for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
    if (S.token) u.searchParams.set('token', S.token);
    return u.pathname + u.search;
  };

  // ---- formatting

  function fmtBytes(n) {
    if (!(n > 0)) return '0 B';
    const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
    let i = 0;
    while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
    return `${n >= 100 || i === 0 ? Math.round(n) : n.toFixed(1)} ${units[i]}`;
  }
  function fmtETA(s) {
    if (s === undefined || s === null || s < 0) return '–';
    s = Math.round(s);
    const h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60, sec = s % 60;
    const two = (x) => String(x).padStart(2, '0');
    return h > 0 ? `${h}:${two(m)}:${two(sec)}` : `${m}:${two(sec)}`;
  }
  const isShare = (v) => /^(\/\/|\\\\)/.test((v || '').trim());

  // ---- views

  function showView(name) {
    if (S.needLogin && name !== 'login') return;
    S.view = name;
    for (const v of $$('.view')) v.hidden = v.id !== 'view-' + name;
    for (const b of $$('#nav button')) b.classList.toggle('on', b.dataset.view === name);
    if (name !== 'login' && location.hash.slice(1) !== name) history.replaceState(null, '', '#' + name);
    if (name === 'cases' || name === 'tasks') refreshCases();
    if (name === 'presets') refreshPresets();
    if (name === 'users') refreshUsers();
  }

  function setConn(state, text) {
    const el = $('#conn');
    el.className = 'conn ' + state;
    el.textContent = text;
  }

  // ---- login (user management)

  function needLogin() {
    if (S.es) { S.es.close(); S.es = null; }
    S.needLogin = true;
    S.token = '';
    localStorage.removeItem('evidenced.token');
    // What the last session's role drew goes with it: the next user must not see, even for the
    // moment before their own lists load, an admin's delete buttons or the user list.
    S.role = '';
    S.users = [];
    S.presets = [];
    $('#users').innerHTML = '';
    $('#presets').innerHTML = '';
    $('#nav').hidden = true;
    $('#who').hidden = true;
    setConn('down', 'signed out');
    for (const v of $$('.view')) v.hidden = v.id !== 'view-login';
    $('[name=username]', $('#login-form')).focus();
  }

  async function login(ev) {
    ev.preventDefault();
    const f = ev.target;
    $('#login-error').textContent = '';
    try {
      const tok = await api('/login', null, {
        method: 'POST', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ username: f.username.value.trim(), password: f.password.value }),
      });
      S.token = String(tok).trim();
      S.user = f.username.value.trim();
      localStorage.setItem('evidenced.token', S.token);
      localStorage.setItem('evidenced.user', S.user);
      f.password.value = '';
      S.needLogin = false;
      boot();
    } catch (e) {
      $('#login-error').textContent = e.message;
    }
  }

  // logout ends the session on the appliance (POST /logout revokes the token), then forgets it.
  async function logout() {
    if (S.token) {
      try { await api('/logout', null, { method: 'POST' }); } catch (_) { /* an expired session is over anyway */ }
    }
    S.user = '';
    S.role = '';
    localStorage.removeItem('evidenced.user');
    needLogin();
  }

  // ---- roles: the API enforces them; the dashboard only hides what would be refused, and says why.

  const isAdmin = () => S.role === 'admin';

  function applyRole() {
    const admin = isAdmin();
    for (const el of $$('[data-admin]')) el.hidden = !admin;
    for (const el of $$('[data-examiner]')) el.hidden = admin;
    for (const el of $$('[data-admin-only]')) el.disabled = !admin;
    $('[data-view=users]').hidden = !S.um;
    $('#who').hidden = !S.um;
    $('#who').textContent = `${S.user} · ${S.role}`;
    $('#user-name').textContent = S.user;
    $('#user-role').textContent = S.role;
  }

  async function whoami() {
    const w = await api('/api/whoami');
    S.user = w.user || S.user;
    S.role = w.role || 'admin';
    S.um = !!w.userManagement;
    applyRole();
  }

  // ---- users (admins; an examiner only changes their own password)

  async function refreshUsers() {
    if (!isAdmin()) return;
    try {
      S.users = (await api('/api/users')).users || [];
    } catch (e) {
      $('#user-error').textContent = e.message;
      return;
    }
    const opt = (u, r) => `<option${u.role === r ? ' selected' : ''}>${r}</option>`;
    $('#users').innerHTML = S.users.map((u) => `<div class="item user" data-name="${esc(u.name)}">
        <h3>${esc(u.name)} · <span class="role">${esc(u.role)}</span>${u.name === S.user ? ' (you)' : ''}</h3>
        <div class="row"><label>Role <select data-f="role">${opt(u, 'examiner')}${opt(u, 'admin')}</select></label>
          <input type="password" data-f="pw" placeholder="new password" autocomplete="new-password">
          <button type="button" data-act="reset">Reset password</button>
          <button type="button" data-act="remove" class="danger">Remove</button></div>
        <p class="error" role="alert"></p></div>`).join('') || '<p class="empty">No user.</p>';
  }

  // patchUser changes a password and/or role; a new password ends that user's sessions (ours too).
  async function patchUser(name, body) {
    await api('/api/users', { name }, { method: 'PATCH', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    if (name === S.user && body.password !== undefined) {
      needLogin();
      $('#login-error').textContent = 'Password changed: sign in with the new one.';
      return;
    }
    if (name === S.user) await whoami();
    refreshUsers();
  }

  async function usersEvent(ev) {
    const item = ev.target.closest('.item');
    if (!item) return;
    const name = item.dataset.name;
    const err = $('.error', item);
    const act = ev.type === 'change' && ev.target.dataset.f === 'role' ? 'role' : ev.type === 'click' && ev.target.closest('button[data-act]')?.dataset.act;
    if (!act) return;
    err.textContent = '';
    try {
      if (act === 'role') await patchUser(name, { role: ev.target.value });
      else if (act === 'reset') await patchUser(name, { password: $('[data-f=pw]', item).value });
      else if (act === 'remove') {
        if (!confirm(`Remove the user ${name}? Their sessions end now.`)) return;
        await api('/api/users', { name }, { method: 'DELETE' });
        refreshUsers();
      }
    } catch (e) {
      err.textContent = e.message;
      if (act === 'role') ev.target.value = (S.users.find((u) => u.name === name) || {}).role || ev.target.value;
    }
  }

  async function userAdd(ev) {
    ev.preventDefault();
    const f = ev.target;
    $('#user-error').textContent = '';
    try {
      await api('/api/users', null, {
        method: 'POST', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ name: f.elements.namedItem('name').value.trim(), password: f.password.value, role: f.role.value }),
      });
      f.reset();
      refreshUsers();
    } catch (e) {
      $('#user-error').textContent = e.message;
    }
  }

  async function passwordSubmit(ev) {
    ev.preventDefault();
    $('#password-error').textContent = '';
    try {
      await patchUser(S.user, { password: ev.target.password.value });
      ev.target.password.value = '';
    } catch (e) {
      $('#password-error').textContent = e.message;
    }
  }

  // ---- live updates

  function connect() {
    if (S.es) S.es.close();
    const es = new EventSource(withToken('/api/events', {}));
    S.es = es;
    es.onopen = () => { setConn('live', 'live'); scheduleTasks(); };
    es.onerror = () => {
      setConn('down', 'reconnecting…');
      if (es.readyState === EventSource.CLOSED) {
        // The server refused the stream (e.g. the token expired): find out why, then retry.
        setTimeout(() => api('/api/ports').then(() => { if (S.es === es) connect(); }, () => {}), 3000);
      }
    };
    es.addEventListener('ports', (ev) => {
      S.ports = JSON.parse(ev.data).ports || [];
      renderPorts();
      renderCaseDrives();
    });
    es.addEventListener('task', (ev) => {
      S.dirty.add(JSON.parse(ev.data).taskKey);
      scheduleTasks();
    });
    es.addEventListener('progress', (ev) => {
      for (const p of JSON.parse(ev.data)) {
        S.live[p.taskKey] = p;
        updateLive(p.taskKey);
      }
    });
  }

  let taskTimer = 0;
  function scheduleTasks() {
    clearTimeout(taskTimer);
    taskTimer = setTimeout(refreshTasks, 120);
  }

  // ---- board

  function portTask(p) {
    if (!p.busyTask) return null;
    return S.all.find((t) => t.taskKey === p.busyTask) || { taskKey: p.busyTask, task: 'task', state: 'pending', progress: '0' };
  }

  function renderPorts() {
    const html = S.ports.map((p) => {
      const d = p.drive;
      const t = portTask(p);
      const cls = ['port', p.mode === 'target' ? 'tgt' : 'src'];
      if (d && !t) cls.push('has');
      if (t) cls.push('busy');
      let state = { identifying: 'identifying…', 'not-detected': 'no drive', ready: p.bus }[p.state] || p.state;
      let act = '';
      if (t) {
        const det = S.details[t.taskKey] || {};
        const live = S.live[t.taskKey];
        const pct = live && t.state === 'in-progress' ? live.progress : t.progress;
        act = `<div class="act">${esc(t.task)} · ${esc(det.taskStep || t.state)} · <span class="pp">${esc(pct)}</span>%</div>
          <div class="mini"><span style="width:${Number(pct) || 0}%"></span></div>`;
        state = 'busy';
      } else if (d) {
        act = '<div class="act">tap to start</div>';
      } else if (!p.powered) {
        act = '<div class="act">tap to scan</div>';
      }
      return `<div class="${cls.join(' ')}" data-port="${esc(p.name)}" tabindex="0" role="button">
        <div class="top"><span class="power${p.powered ? ' on' : ''}" title="${p.powered ? 'powered' : 'off'}"></span>
          <span class="name">${esc(p.name)}</span></div>
        <div class="top"><button type="button" class="mode" data-act="mode" title="switch source/target">${p.mode === 'target' ? 'TARGET' : 'SOURCE'}</button>
          <span class="pstate">${esc(state)}</span></div>
        ${d ? `<div class="model" title="${esc(d.model)}">${esc(d.model)}</div>
          <div class="serial">S/N ${esc(d.serial)}</div><div class="size">${fmtBytes(d.size)}</div>` : ''}
        ${act}</div>`;
    }).join('');
    $('#ports').innerHTML = html || '<p class="empty">This board has no ports.</p>';
  }

  async function portClick(ev) {
    const card = ev.target.closest('.port');
    if (!card) return;
    const p = S.ports.find((x) => x.name === card.dataset.port);
    if (!p) return;
    if (ev.target.closest('[data-act=mode]')) {
      const mode = p.mode === 'target' ? 'source' : 'target';
      if (!confirm(`Switch ${p.name} to ${mode.toUpperCase()} mode?` + (mode === 'target' ? ' Drives on target ports can be written.' : ''))) return;
      try { await api('/api/set-port-mode', { port: p.name, mode }); } catch (e) { alert(e.message); }
      return;
    }
    if (p.busyTask) { showView('board'); return; }
    if (!p.drive) {
      try { await api('/api/scan-port', { port: p.name }); } catch (e) { alert(e.message); }
      return;
    }
    openStart(p);
  }

  // ---- tasks

  async function refreshTasks() {
    if (S.refreshing) { S.again = true; return; }
    S.refreshing = true;
    const dirty = S.dirty;
    S.dirty = new Set();
    try {
      S.all = (await api('/api/tasks')).tasks || [];
      const state = $('#f-state').value, caseId = $('#f-case').value;
      S.shown = state || caseId ? (await api('/api/tasks', { state, caseId })).tasks || [] : S.all;
      const want = new Map();
      for (const t of S.all.filter((x) => ACTIVE.has(x.state))) want.set(t.taskKey, t);
      for (const t of S.shown.slice(0, DETAIL_LIMIT)) want.set(t.taskKey, t);
      await Promise.all([...want.values()].map((t) => {
        const d = S.details[t.taskKey];
        if (d && !dirty.has(t.taskKey) && d.state === t.state && !ACTIVE.has(t.state)) return null;
        return api('/api/check-task', { taskKey: t.taskKey }).then((x) => { S.details[t.taskKey] = x; }, () => {});
      }));
      renderTasks();
      renderPorts();
    } catch (e) {
      if (e.status !== 401) setConn('down', e.message);
    } finally {
      S.refreshing = false;
      if (S.again) { S.again = false; scheduleTasks(); }
    }
  }

  function pausable(t, d) {
    return t.task === 'image' || (t.task === 'logical' && /\.l01$/i.test(d.target || ''));
  }

  function taskCard(t) {
    const d = S.details[t.taskKey] || {};
    const live = S.live[t.taskKey];
    const running = t.state === 'in-progress';
    const pct = running && live ? live.progress : t.progress;
    const mbps = running ? (live ? live.mbps : d.mbps) : undefined;
    const eta = running ? (live ? live.eta : d.eta) : undefined;
    const bad = d.unreadableSectors || 0;
    const msg = d.details || d.message || '';
    let verified = '';
    if (d.verified === true || (d.verified === undefined && /verified/i.test(d.message || ''))) verified = '<span class="verified">verified ✓</span>';
    else if (d.verified === false && t.state === 'completed') verified = '<span class="bad">not verified</span>';
    const hashes = Object.entries(d.hashes || {}).map(([k, v]) => `<div><span>${esc(k)}</span><b class="h-${esc(k)}">${esc(v)}</b></div>`).join('');
    const buttons = [];
    if (running || t.state === 'pending') {
      buttons.push(pausable(t, d) ? '<button type="button" data-act="pause">Pause</button>' : '<button type="button" data-act="stop" class="danger">Stop</button>');
    }
    if (t.state === 'paused') buttons.push('<button type="button" data-act="resume" class="primary">Resume</button>');
    if (!ACTIVE.has(t.state) || t.state === 'paused') {
      buttons.push(`<a class="report" href="${esc(withToken('/api/report', { taskKey: t.taskKey }))}" download>Report</a>`);
    }
    return `<div class="task st-${esc(t.state)}" data-key="${esc(t.taskKey)}">
      <div class="head"><span class="title">${esc(t.task)} · ${esc(t.port)}</span><span class="src">${esc(t.source)}${t.caseId ? ' · case ' + esc(t.caseId) : ''}</span>
        <span class="state">${esc(t.state)}</span></div>
      <div class="bar"><span style="width:${Number(pct) || 0}%"></span><b class="pct">${esc(pct)}%</b></div>
      <div class="figs">
        <div><span>step</span><b class="step">${esc(d.taskStep || '–')}</b></div>
        <div><span>speed</span><b class="speed">${mbps > 0 ? mbps.toFixed(1) + ' MB/s' : '–'}</b></div>
        <div><span>ETA</span><b class="eta">${fmtETA(eta)}</b></div>
        <div><span>bad sectors</span><b class="badn${bad ? ' bad' : ''}">${bad}</b></div>
        ${d.completionDate ? `<div><span>ended</span><b>${esc(d.completionDate)}</b></div>` : ''}
      </div>
      ${msg || verified ? `<div class="msg">${verified} ${esc(msg)}</div>` : ''}
      ${hashes ? `<div class="hashes">${hashes}</div>` : ''}
      ${d.target ? `<div class="path">${esc(d.target)}</div>` : ''}
      <p class="error"></p>
      <div class="row">${buttons.join('')}</div></div>`;
  }

  function renderTasks() {
    const active = S.all.filter((t) => ACTIVE.has(t.state));
    $('#active').innerHTML = active.length ? active.map(taskCard).join('') : '<p class="empty">No task is running.</p>';
    $('#tasks').innerHTML = S.shown.length ? S.shown.map(taskCard).join('') : '<p class="empty">No task matches.</p>';
    $('#f-count').textContent = `${S.shown.length} task${S.shown.length === 1 ? '' : 's'}`;
  }

  // updateLive moves a running task's bar, speed and ETA in place (no re-render: buttons keep working).
  function updateLive(key) {
    const p = S.live[key];
    for (const card of $$('.task')) {
      if (card.dataset.key !== key || !card.classList.contains('st-in-progress')) continue;
      $('.bar > span', card).style.width = (Number(p.progress) || 0) + '%';
      $('.pct', card).textContent = p.progress + '%';
      $('.speed', card).textContent = p.mbps > 0 ? p.mbps.toFixed(1) + ' MB/s' : '–';
      $('.eta', card).textContent = fmtETA(p.eta);
    }
    for (const port of S.ports) {
      if (port.busyTask !== key) continue;
      const card = $(`.port[data-port="${CSS.escape(port.name)}"]`);
      if (!card || !$('.pp', card)) continue;
      $('.pp', card).textContent = p.progress;
      $('.mini > span', card).style.width = (Number(p.progress) || 0) + '%';
    }
  }

  async function taskClick(ev) {
    const btn = ev.target.closest('button[data-act]');
    if (!btn) return;
    const card = btn.closest('.task');
    const key = card.dataset.key;
    const err = $('.error', card);
    err.textContent = '';
    btn.disabled = true;
    try {
      if (btn.dataset.act === 'resume') {
        const d = S.details[key] || {};
        if (isShare(d.target)) { openResume(key, d.target); return; }
        await api('/api/resume-task', { taskKey: key });
      } else {
        await api('/api/stop-task', { taskKey: key });
      }
      S.dirty.add(key);
      scheduleTasks();
    } catch (e) {
      err.textContent = e.message;
    } finally {
      btn.disabled = false;
    }
  }

  function openResume(key, target) {
    const f = $('#resume-form');
    f.dataset.key = key;
    $('#resume-target').textContent = target;
    $('#resume-error').textContent = '';
    $('#resume').showModal();
  }

  async function resumeSubmit(ev) {
    ev.preventDefault();
    const f = ev.target;
    try {
      await api('/api/resume-task', {
        taskKey: f.dataset.key, targetFolderLogin: f.targetFolderLogin.value.trim(),
        targetFolderPwd: f.targetFolderPwd.value, targetFolderDomain: f.targetFolderDomain.value.trim(),
      });
      f.targetFolderPwd.value = '';
      $('#resume').close();
      S.dirty.add(f.dataset.key);
      scheduleTasks();
    } catch (e) {
      $('#resume-error').textContent = e.message;
    }
  }

  // ---- start dialog

  function openStart(p) {
    const f = $('#start-form');
    f.source.value = `${p.name} ${p.drive.model} ${p.drive.serial}`;
    $('#start-drive').textContent = `${p.name} · ${p.drive.model} · ${p.drive.serial}`;
    $('#start-error').textContent = '';
    const last = localStorage.getItem('evidenced.targetFolder');
    if (last && !f.targetFolder.value) f.targetFolder.value = last;
    refreshPresets();
    setKind(p.mode === 'target' ? 'diagnose' : 'image');
    $('#start').showModal();
  }

  function setKind(kind) {
    S.kind = kind;
    for (const b of $$('#start-kinds button')) b.classList.toggle('on', b.dataset.kind === kind);
    updateFields();
  }

  // updateFields shows the fields of the chosen kind and format; hidden fields are disabled, so the
  // request carries exactly what the examiner sees.
  function updateFields() {
    const labels = $$('#start-form .grid > label');
    const kindOf = (l) => (l.dataset.kind || '').split(' ');
    const typeSel = labels.find((l) => kindOf(l).includes(S.kind) && $('select[name=targetType]', l));
    const type = typeSel ? $('select', typeSel).value : '';
    const f = $('#start-form');
    const shares = { target: isShare(f.targetFolder.value), report: isShare(f.reportFolder.value) };
    const prefix = type === 'aff4' ? 'aff4' : S.kind === 'logical' ? 'l01' : 'e01';
    for (const l of labels) {
      let show = kindOf(l).includes(S.kind);
      if (show && l.dataset.type) show = l.dataset.type.split(' ').includes(type);
      if (show && l.dataset.share) show = shares[l.dataset.share];
      if (show && l.hasAttribute('data-presets')) show = $('select', l).options.length > 1;
      l.hidden = !show;
      for (const el of $$('input, select', l)) {
        el.disabled = !show;
        if (el.dataset.meta) el.name = prefix + el.dataset.meta;
      }
    }
  }

  async function startSubmit(ev) {
    ev.preventDefault();
    const f = ev.target;
    const params = {};
    for (const el of f.elements) {
      if (!el.name || el.disabled || el.tagName === 'BUTTON') continue;
      if (el.type === 'checkbox') {
        // Only what differs from the API's default is sent, as a script would.
        if (el.checked !== (el.dataset.default === 'true')) params[el.name] = String(el.checked);
        continue;
      }
      const v = el.type === 'password' ? el.value : el.value.trim();
      if (v !== '') params[el.name] = v;
    }
    const path = { image: '/api/start-image', logical: '/api/start-logical', diagnose: '/api/diagnose' }[S.kind];
    const go = $('#start-go');
    go.disabled = true;
    $('#start-error').textContent = '';
    try {
      const key = String(await api(path, params)).trim();
      if (params.targetFolder) localStorage.setItem('evidenced.targetFolder', params.targetFolder);
      for (const el of $$('input[type=password]', f)) el.value = '';
      $('#start').close();
      S.dirty.add(key);
      showView('board');
      scheduleTasks();
    } catch (e) {
      $('#start-error').textContent = e.message;
    } finally {
      go.disabled = false;
    }
  }

  // ---- cases

  async function refreshCases() {
    try {
      S.cases = (await api('/api/cases')).cases || [];
    } catch (e) {
      return;
    }
    const sel = $('#f-case');
    const cur = sel.value;
    sel.innerHTML = '<option value="">all</option>' + S.cases.map((c) => `<option>${esc(c.caseId)}</option>`).join('');
    sel.value = S.cases.some((c) => c.caseId === cur) ? cur : '';
    $('#cases').innerHTML = S.cases.length ? S.cases.map((c) => `<div class="item" data-case="${esc(c.caseId)}">
        <h3>${esc(c.caseId)}</h3>
        <p>${esc([c.caseExaminer, c.caseOrganization, c.caseLocation].filter(Boolean).join(' · '))}</p>
        ${c.caseDescription ? `<p>${esc(c.caseDescription)}</p>` : ''}
        ${(c.evidence || []).map((e) => `<p>evidence <b>${esc(e.evidenceId)}</b>: ${esc(e.model)} ${esc(e.serial)}${e.evidenceExaminer ? ' · ' + esc(e.evidenceExaminer) : ''}</p>`).join('')}
        <div class="row"><button type="button" data-act="edit">Edit</button><button type="button" data-act="tasks">Tasks</button></div>
      </div>`).join('') : '<p class="empty">No case yet. Create one for a drive on the board.</p>';
  }

  function renderCaseDrives() {
    const sel = $('#case-drive');
    const cur = sel.value;
    const drives = S.ports.filter((p) => p.drive && !p.busyTask).map((p) => `${p.name} ${p.drive.model} ${p.drive.serial}`);
    sel.innerHTML = drives.map((d) => `<option>${esc(d)}</option>`).join('') || '<option value="">no idle drive on the board</option>';
    if (drives.includes(cur)) sel.value = cur;
  }

  function caseForm(c) {
    const f = $('#case-form');
    f.mode.value = c ? 'edit' : 'create';
    $('#case-title').textContent = c ? 'Edit case ' + c.caseId : 'New case';
    for (const n of ['caseId', 'caseExaminer', 'caseDescription', 'caseLocation', 'caseOrganization']) f[n].value = c ? c[n] || '' : '';
    const ev = c && c.evidence && c.evidence[0];
    f.evidenceId.value = ev ? ev.evidenceId : '';
    f.evidenceExaminer.value = ev ? ev.evidenceExaminer : '';
    f.caseId.readOnly = !!c;
    for (const l of $$('[data-case=create]', f)) l.hidden = !!c;
    $('#case-error').textContent = '';
  }

  async function caseSubmit(ev) {
    ev.preventDefault();
    const f = ev.target;
    const v = (n) => f[n].value.trim();
    const p = { caseId: v('caseId'), caseExaminer: v('caseExaminer'), caseDescription: v('caseDescription'), caseLocation: v('caseLocation'), caseOrganization: v('caseOrganization') };
    try {
      let c;
      if (f.mode.value === 'edit') {
        if (v('evidenceId')) Object.assign(p, { evidenceId: v('evidenceId'), evidenceExaminer: v('evidenceExaminer') });
        c = await api('/api/edit-case', p, { keepEmpty: true });
      } else {
        Object.assign(p, { source: f.source.value, evidenceId: v('evidenceId'), evidenceExaminer: v('evidenceExaminer') });
        c = await api('/api/create-case', p);
      }
      await refreshCases();
      caseForm(c);
    } catch (e) {
      $('#case-error').textContent = e.message;
    }
  }

  function casesClick(ev) {
    const btn = ev.target.closest('button[data-act]');
    if (!btn) return;
    const c = S.cases.find((x) => x.caseId === btn.closest('.item').dataset.case);
    if (!c) return;
    if (btn.dataset.act === 'edit') caseForm(c);
    else {
      $('#f-case').value = c.caseId;
      showView('tasks');
      scheduleTasks();
    }
  }

  // ---- presets

  async function refreshPresets() {
    try {
      const list = await api('/api/settings');
      S.presets = Array.isArray(list) ? list : list.settings || list.presets || [];
    } catch (e) {
      return;
    }
    $('#presets').innerHTML = S.presets.length ? S.presets.map((p) => `<div class="item" data-name="${esc(p.name)}">
        <h3>${esc(p.name)}${p.kind ? ' · ' + esc(p.kind) : ''}</h3><pre>${esc(JSON.stringify(p, null, 1))}</pre>
        ${isAdmin() ? '<div class="row"><button type="button" data-act="edit">Edit</button><button type="button" data-act="delete" class="danger">Delete</button></div>' : ''}
      </div>`).join('') : '<p class="empty">No preset saved.</p>';
    const opts = (kind) => S.presets.filter((p) => (p.kind || 'logical') === kind).map((p) => `<option>${esc(p.name)}</option>`).join('');
    for (const [id, kind, none] of [['#start-presets', 'logical', 'none: every file'], ['#start-image-presets', 'imaging', 'none']]) {
      const sel = $(id);
      if (!sel) continue;
      const cur = sel.value;
      sel.innerHTML = `<option value="">${none}</option>` + opts(kind);
      if ([...sel.options].some((o) => o.value === cur)) sel.value = cur;
    }
    if ($('#start').open) updateFields();
  }

  async function presetsClick(ev) {
    const btn = ev.target.closest('button[data-act]');
    if (!btn) return;
    const name = btn.closest('.item').dataset.name;
    if (btn.dataset.act === 'edit') {
      $('#preset-form').body.value = JSON.stringify(S.presets.find((p) => p.name === name), null, 1);
      return;
    }
    if (!confirm(`Delete the preset ${name}?`)) return;
    try { await api('/api/settings', { name }, { method: 'DELETE' }); } catch (e) { $('#preset-error').textContent = e.message; }
    refreshPresets();
  }

  async function presetSubmit(ev) {
    ev.preventDefault();
    $('#preset-error').textContent = '';
    try {
      await api('/api/settings', null, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: ev.target.body.value });
      refreshPresets();
    } catch (e) {
      $('#preset-error').textContent = e.message;
    }
  }

  // ---- boot

  async function boot() {
    try {
      S.ports = (await api('/api/ports')).ports || [];
    } catch (e) {
      if (e.status !== 401) setConn('down', e.message);
      return;
    }
    try {
      await whoami();
    } catch (e) {
      if (e.status !== 401) setConn('down', e.message);
      return;
    }
    S.needLogin = false;
    $('#nav').hidden = false;
    const users = S.um;
    renderPorts();
    renderCaseDrives();
    const v = location.hash.slice(1);
    showView(['board', 'tasks', 'cases', 'presets', 'users'].includes(v) && (v !== 'users' || users) ? v : 'board');
    connect();
    refreshTasks();
    refreshCases();
    // Power the source ports up and identify their drives, as the appliance's own screen does.
    api('/api/source-drives').catch(() => {});
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('#nav').addEventListener('click', (ev) => { const b = ev.target.closest('button[data-view]'); if (b) showView(b.dataset.view); });
    $('#ports').addEventListener('click', portClick);
    $('#ports').addEventListener('keydown', (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); portClick(ev); } });
    $('#active').addEventListener('click', taskClick);
    $('#tasks').addEventListener('click', taskClick);
    $('#f-state').addEventListener('change', scheduleTasks);
    $('#f-case').addEventListener('change', scheduleTasks);
    $('#login-form').addEventListener('submit', login);
    $('#logout').addEventListener('click', logout);
    $('#start-form').addEventListener('submit', startSubmit);
    $('#start-form').addEventListener('input', (ev) => { if (ev.target.name === 'targetFolder' || ev.target.name === 'reportFolder') updateFields(); });
    $('#start-form').addEventListener('change', updateFields);
    $('#start-kinds').addEventListener('click', (ev) => { const b = ev.target.closest('button[data-kind]'); if (b) setKind(b.dataset.kind); });
    $('#start-cancel').addEventListener('click', () => $('#start').close());
    $('#resume-form').addEventListener('submit', resumeSubmit);
    $('#resume-cancel').addEventListener('click', () => $('#resume').close());
    $('#cases').addEventListener('click', casesClick);
    $('#case-form').addEventListener('submit', caseSubmit);
    $('#case-new').addEventListener('click', () => caseForm(null));
    $('#presets').addEventListener('click', presetsClick);
    $('#preset-form').addEventListener('submit', presetSubmit);
    $('#users').addEventListener('click', usersEvent);
    $('#users').addEventListener('change', usersEvent);
    $('#user-add').addEventListener('submit', userAdd);
    $('#password-form').addEventListener('submit', passwordSubmit);
    boot();
  });
})();
