/* kefu desk: the page's script (vanilla JS, no build step). Signs the agent in against /desk/api/session,
   keeps the tokens in memory and sessionStorage (refreshing once on a 401), polls the inbox and the open
   conversation every 1.5 s while the tab is visible, sends the status heartbeat every 20 s, and renders
   lists, the conversation, the reply box (disabled with its reason), quick replies, tags and statistics.
   All labels are in STRINGS (en, zh). Message content is never written to the console.

   data-testid (stable hooks for tests/browser; * = repeated):
     app (#app, data-screen = signin|list|conv|stats), lang-toggle, toast
     signin, signin-form, signin-username, signin-password, signin-submit, signin-error,
     newpw-form, newpw-password, newpw-submit
     me-name, presence (data-presence), status-select, auto-accept, nav-stats, sign-out
     lists, waiting-count, app-counts, app-count*, waiting-list, waiting-item* (data-key, data-open-id,
       data-app), waiting-empty, mine-count, mine-list, mine-item* (same data-*), unread-badge*,
       mine-empty, inbox-error
     conversation (data-key, data-status, data-assignee, data-mine), conv-placeholder, conv-back,
       conv-title, conv-app, conv-status, accept-button, release-button, close-button, older-note,
       messages, message* (data-position, data-direction, data-msg-type, data-status), conv-error
       (data-error = the API's label), remaining, countdown, refusal (data-reason), reply-form,
       reply-input, reply-send, image-input, qr-suggest, qr-suggest-item* (data-shortcut)
     side, tags-form, tags-input, tags-save, quick-replies, quick-reply* (data-shortcut), qr-delete*,
       qr-empty, qr-form, qr-shortcut, qr-text, qr-save, qr-error
     stats, stats-back, stats-app, stats-days, stats-error (data-error), stats-table, stats-row*
       (data-date), stats-agent-row*
*/
'use strict';
(() => {
  const STRINGS = {
    en: {
      title: 'kefu desk', sign_in: 'Sign in', username: 'Username', password: 'Password',
      new_password: 'New password', new_password_hint: 'Choose a new password to finish signing in.',
      save: 'Save', sign_out: 'Sign out', online: 'Online', away: 'Away', offline: 'Offline',
      auto_accept: 'Auto-accept', stats: 'Statistics', waiting: 'Waiting', mine: 'My conversations',
      none_waiting: 'Nobody is waiting.', none_mine: 'No conversations.', pick_one: 'Pick a conversation.',
      back: 'Back', accept: 'Accept', release: 'Release', close: 'Close',
      older: 'Show older messages', remaining: 'Sends left', left: '{0} left',
      window_closed: 'window closed', image: 'Image', send: 'Send', tags: 'Tags',
      tags_hint: 'vip, refund', quick_replies: 'Quick replies', no_quick_replies: 'None yet.',
      add_quick_reply: 'Save quick reply', shortcut_hint: 'shortcut', text_hint: 'text',
      reply_hint: 'Reply… (/shortcut inserts a quick reply; Enter sends, Shift+Enter new line)',
      delete: 'Delete', st_waiting: 'waiting', st_active: 'with {0}', st_closed: 'closed', you: 'you',
      r_window_expired: 'The send window has closed: the user must write first.',
      r_quota_exhausted: 'No sends left in this window until the user writes again.',
      r_app_unauthorized: 'This app is not authorized to send.',
      r_accept_first: 'Accept the conversation first.', r_closed: 'The conversation is closed.',
      e_at_capacity: 'You hold as many conversations as your capacity allows.',
      e_taken: 'Another agent has taken it.', e_not_yours: 'You do not hold this conversation.',
      e_already_closed: 'Already closed.', e_changed: 'It changed meanwhile; try again.',
      e_not_found: 'Not found.', e_sign_in_refused: 'Wrong username or password.',
      e_unauthenticated: 'Please sign in again.', e_not_an_agent: 'This account is not an agent.',
      e_admin_only: 'Only an admin may do this.', e_shared_agent: 'This agent also serves other apps.',
      e_body_invalid: 'The request was refused as invalid.', e_network: 'Network error.',
      e_unavailable: 'The service is unavailable; try again.', e_image_too_large: 'The image is too large (4 MB at most).',
      e_stats: 'Statistics are not available.', sent_status: 'Sent: {0}',
      m_image: '[image]', m_card: '[mini program]', m_link: '[link]', m_enter: 'The user entered the session',
      m_event: 'Event: {0}', m_other: '[{0}]', d_accepted: '{0} accepted', d_released: '{0} released',
      d_idle_released: 'Released after being idle', d_closed: '{0} closed',
      s_failed: 'not delivered', s_partial: 'partly delivered', s_unknown: 'delivery unknown',
      c_date: 'Date', c_agent: 'Agent', c_conversations: 'Conversations', c_in: 'In', c_out: 'Out',
      c_p50: 'First reply p50 (s)', c_p90: 'First reply p90 (s)', c_unanswered: 'Unanswered',
      c_refused: 'Refused (quota)', days: '{0} days', lang_other: '中文'
    },
    zh: {
      title: '客服工作台', sign_in: '登录', username: '用户名', password: '密码',
      new_password: '新密码', new_password_hint: '请设置新密码以完成登录。',
      save: '保存', sign_out: '退出', online: '在线', away: '离开', offline: '离线',
      auto_accept: '自动接入', stats: '统计', waiting: '排队中', mine: '我的会话',
      none_waiting: '暂无排队用户。', none_mine: '暂无会话。', pick_one: '请选择一个会话。',
      back: '返回', accept: '接入', release: '释放', close: '结束',
      older: '查看更早的消息', remaining: '剩余可发', left: '剩余 {0}',
      window_closed: '窗口已关闭', image: '图片', send: '发送', tags: '标签',
      tags_hint: 'vip, 退款', quick_replies: '快捷回复', no_quick_replies: '暂无。',
      add_quick_reply: '保存快捷回复', shortcut_hint: '快捷码', text_hint: '内容',
      reply_hint: '回复…（输入 /快捷码 插入快捷回复；Enter 发送，Shift+Enter 换行）',
      delete: '删除', st_waiting: '排队中', st_active: '由{0}接待', st_closed: '已结束', you: '你',
      r_window_expired: '会话窗口已关闭：需等待用户再次发消息。',
      r_quota_exhausted: '本窗口可发条数已用完，需等待用户再次发消息。',
      r_app_unauthorized: '该小程序未授权发送消息。',
      r_accept_first: '请先接入该会话。', r_closed: '会话已结束。',
      e_at_capacity: '接待数已达上限。', e_taken: '已被其他客服接入。', e_not_yours: '该会话不由你接待。',
      e_already_closed: '会话已结束。', e_changed: '会话状态已变化，请重试。', e_not_found: '未找到。',
      e_sign_in_refused: '用户名或密码错误。', e_unauthenticated: '请重新登录。',
      e_not_an_agent: '该账号不是客服。', e_admin_only: '仅管理员可操作。', e_shared_agent: '该客服还服务其他小程序。',
      e_body_invalid: '请求无效。', e_network: '网络错误。', e_unavailable: '服务暂不可用，请重试。',
      e_image_too_large: '图片过大（最大 4 MB）。', e_stats: '统计不可用。', sent_status: '已发送：{0}',
      m_image: '[图片]', m_card: '[小程序卡片]', m_link: '[链接]', m_enter: '用户进入会话',
      m_event: '事件：{0}', m_other: '[{0}]', d_accepted: '{0} 接入了会话', d_released: '{0} 释放了会话',
      d_idle_released: '因空闲自动释放', d_closed: '{0} 结束了会话',
      s_failed: '发送失败', s_partial: '部分送达', s_unknown: '送达未知',
      c_date: '日期', c_agent: '客服', c_conversations: '会话数', c_in: '收到', c_out: '发出',
      c_p50: '首次响应 p50（秒）', c_p90: '首次响应 p90（秒）', c_unanswered: '未回复',
      c_refused: '因额度拒发', days: '{0} 天', lang_other: 'EN'
    }
  };
  const REFUSALS = ['window_expired', 'quota_exhausted', 'app_unauthorized'];
  const POLL_MS = 1500, HEARTBEAT_MS = 20000, MAX_IMAGE = 4 * 1024 * 1024;
  const TOKENS = 'kefu.desk.tokens', LANG = 'kefu.desk.lang';

  const $ = (id, root) => (root || document).querySelector(`[data-testid="${id}"]`);
  const app = $('app');
  const S = {
    lang: pickLang(), access: null, refresh: null, me: null, inbox: null, skew: 0, gen: 0,
    open: null, seq: 0, qr: {}, names: {}, pending: null, listSig: '', suggest: [], pick: 0
  };

  function pickLang() {
    let l = null;
    try { l = localStorage.getItem(LANG); } catch (_) { /* storage may be off */ }
    if (l === 'zh' || l === 'en') return l;
    return /^zh/i.test(navigator.language || '') ? 'zh' : 'en';
  }
  function t(key, ...args) {
    const s = STRINGS[S.lang][key] ?? STRINGS.en[key] ?? key;
    return s.replace(/\{(\d)\}/g, (_, i) => String(args[+i] ?? ''));
  }
  /** A translated error: the known label's text, followed by the label itself. */
  function errText(label) {
    const k = REFUSALS.includes(label) ? 'r_' + label : 'e_' + label;
    const known = STRINGS.en[k] !== undefined;
    return known ? `${t(k)} (${label})` : label;
  }
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v; else if (k === 'text') e.textContent = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
    }
    for (const c of kids) if (c !== null && c !== undefined) e.append(c);
    return e;
  }
  const now = () => Date.now() / 1000 + S.skew;
  const enc = encodeURIComponent;
  const appKey = (k) => `${k.platform}/${k.app_id}`;
  const convKey = (k) => `${k.platform}/${k.app_id}/${k.open_id}`;
  const convPath = (k) => `conversations/${enc(k.platform)}/${enc(k.app_id)}/${enc(k.open_id)}`;
  const appPath = (k) => `apps/${enc(k.platform)}/${enc(k.app_id)}`;
  const two = (n) => String(n).padStart(2, '0');
  function clock(secs) {
    if (!secs) return '';
    const d = new Date(secs * 1000);
    const day = d.toDateString() === new Date().toDateString() ? '' : `${d.getMonth() + 1}-${d.getDate()} `;
    return `${day}${two(d.getHours())}:${two(d.getMinutes())}`;
  }
  function duration(s) {
    s = Math.max(0, Math.floor(s));
    return `${Math.floor(s / 3600)}:${two(Math.floor(s / 60) % 60)}:${two(s % 60)}`;
  }
  /** A fresh id (a reply's client_msg_id, a quick reply's id): 32 hex digits. */
  const uuid = () => [...crypto.getRandomValues(new Uint8Array(16))].map((x) => x.toString(16).padStart(2, '0')).join('');
  function roleIn(k) {
    const a = S.me && S.me.apps.find((x) => x.app === `${k.platform}#${k.app_id}`);
    return a ? a.role : null;
  }
  function agentName(id) {
    if (!id) return '';
    if (S.me && id === S.me.id) return t('you');
    return S.names[id] || id.slice(0, 8);
  }
  let toastTimer = 0;
  function toast(text) {
    const p = $('toast');
    p.textContent = text; p.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { p.hidden = true; }, 3000);
  }
  function setError(id, label) {
    const p = $(id);
    p.textContent = label ? errText(label) : '';
    if (label) p.dataset.error = label; else delete p.dataset.error;
  }

  // ---- the API -----------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, label, data) { super(label); this.status = status; this.label = label; this.data = data; }
  }
  let refreshing = null;
  async function call(method, path, body, opts = {}) {
    const auth = opts.auth !== false;
    const headers = {};
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (auth && S.access) headers.Authorization = `Bearer ${S.access}`;
    const sent = S.access;
    let res;
    try {
      res = await fetch(`/desk/api/${path}`, {
        method, headers, cache: 'no-store', body: body === undefined ? undefined : JSON.stringify(body)
      });
    } catch (_) { throw new ApiError(0, 'network'); }
    if (res.status === 401 && auth) {
      if (opts.retry !== false && S.refresh && (S.access !== sent || await refreshTokens())) {
        return call(method, path, body, { ...opts, retry: false });
      }
      signedOut('unauthenticated');
      throw new ApiError(401, 'unauthenticated');
    }
    let data = null;
    const text = res.status === 204 ? '' : await res.text();
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
    if (!res.ok) throw new ApiError(res.status, (data && data.error) || `http_${res.status}`, data);
    return data;
  }
  function refreshTokens() {
    if (!refreshing) {
      refreshing = (async () => {
        try {
          const d = await call('POST', 'session/refresh', { refresh_token: S.refresh }, { auth: false });
          if (d && d.access_token) {
            S.access = d.access_token;
            if (d.refresh_token) S.refresh = d.refresh_token;
            saveTokens();
            return true;
          }
        } catch (_) { /* falls through to sign-in */ }
        return false;
      })().finally(() => { refreshing = null; });
    }
    return refreshing;
  }
  function saveTokens() {
    try {
      if (S.access) sessionStorage.setItem(TOKENS, JSON.stringify({ access: S.access, refresh: S.refresh }));
      else sessionStorage.removeItem(TOKENS);
    } catch (_) { /* memory only */ }
  }

  // ---- screens, sign-in ---------------------------------------------------------------------
  function setScreen(name) {
    app.dataset.screen = name;
    const inside = name !== 'signin';
    document.querySelectorAll('[data-when="signed-in"]').forEach((e) => { e.hidden = !inside; });
    $('stats').hidden = name !== 'stats';
  }
  function signedOut(label) {
    S.gen++;
    stopLoops();
    S.access = S.refresh = S.me = S.inbox = S.open = null;
    S.listSig = '';
    saveTokens();
    // Nothing of the last agent's lists or conversation stays in the page.
    ['waiting-list', 'mine-list', 'app-counts', 'messages', 'quick-replies'].forEach((id) => $(id).replaceChildren());
    $('waiting-count').textContent = $('mine-count').textContent = '0';
    $('conv-placeholder').hidden = false;
    $('conv-body').hidden = true;
    $('signin-form').hidden = false;
    $('newpw-form').hidden = true;
    $('signin-password').value = '';
    setError('signin-error', label || null);
    setScreen('signin');
  }
  async function afterSession(username, d) {
    if (d && d.outcome === 'new_password_required') {
      S.pending = { username, session: d.session };
      $('signin-form').hidden = true;
      $('newpw-form').hidden = false;
      $('newpw-password').focus();
      return;
    }
    if (!d || !d.access_token) throw new ApiError(0, 'unavailable');
    S.access = d.access_token;
    S.refresh = d.refresh_token || null;
    S.pending = null;
    saveTokens();
    try { await start(); } catch (err) { if (S.access) signedOut(err.label); }
  }
  $('signin-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    setError('signin-error', null);
    const username = $('signin-username').value.trim();
    const btn = $('signin-submit');
    btn.disabled = true;
    try {
      const d = await call('POST', 'session', { username, password: $('signin-password').value }, { auth: false });
      await afterSession(username, d);
    } catch (err) { setError('signin-error', err.label); } finally { btn.disabled = false; }
  });
  $('newpw-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    setError('signin-error', null);
    const p = S.pending;
    if (!p) return;
    try {
      const d = await call('POST', 'session/password',
        { username: p.username, session: p.session, new_password: $('newpw-password').value }, { auth: false });
      $('newpw-password').value = '';
      await afterSession(p.username, d);
    } catch (err) { setError('signin-error', err.label); }
  });
  $('sign-out').addEventListener('click', () => signedOut(null));

  async function start() {
    const gen = ++S.gen;
    S.me = await call('GET', 'me');
    if (gen !== S.gen) return;
    $('signin-password').value = '';
    setError('signin-error', null);
    renderMe();
    setScreen(S.open ? 'conv' : 'list');
    loop('inbox', async () => {
      if (gen !== S.gen) return false;
      try { await loadInbox(); } catch (err) { if (gen === S.gen) setError('inbox-error', err.label); }
      return gen === S.gen;
    });
    heartbeatLoop(gen);
  }

  /* Polling: one chain per name, every POLL_MS while the tab is visible (resumed when it shows
     again); fn answers whether to go on. A new fn for a name replaces the old one. */
  const loops = {};
  function loop(name, fn) {
    const L = loops[name] || (loops[name] = { timer: 0, busy: false, fn: null });
    L.fn = fn;
    clearTimeout(L.timer);
    if (!L.busy) step(L);
  }
  async function step(L) {
    const fn = L.fn;
    if (!fn || document.hidden) return;
    L.busy = true;
    let more = false;
    try { more = await fn(); } catch (_) { more = true; }
    L.busy = false;
    if (L.fn && (more || L.fn !== fn)) {
      clearTimeout(L.timer);
      L.timer = setTimeout(() => step(L), POLL_MS);
    }
  }
  function stopLoops() {
    for (const L of Object.values(loops)) { L.fn = null; clearTimeout(L.timer); }
  }

  // ---- me: status, auto-accept, heartbeat ----------------------------------------------------
  function renderMe() {
    const me = S.me;
    if (!me) return;
    $('me-name').textContent = me.name || me.id;
    $('presence').dataset.presence = me.presence || 'offline';
    $('presence').title = t(me.presence || 'offline');
    $('status-select').value = me.status;
    $('auto-accept').checked = !!me.auto_accept;
    $('nav-stats').hidden = !me.apps.some((a) => a.role === 'admin');
  }
  async function putStatus(body) {
    try {
      const me = await call('POST', 'me/status', body);
      if (me && me.id) { S.me = me; renderMe(); }
    } catch (err) { if (err.status !== 401) toast(errText(err.label)); renderMe(); }
  }
  $('status-select').addEventListener('change', (e) => putStatus({ status: e.target.value }));
  $('auto-accept').addEventListener('change', (e) => putStatus({ status: S.me.status, auto_accept: e.target.checked }));
  function heartbeatLoop(gen) {
    setTimeout(async () => {
      if (gen !== S.gen || !S.me) return;
      await putStatus({ status: S.me.status });
      heartbeatLoop(gen);
    }, HEARTBEAT_MS);
  }

  // ---- inbox: waiting list, my conversations -------------------------------------------------
  async function loadInbox() {
    const d = await call('GET', 'inbox');
    if (!d) return;
    S.inbox = d;
    if (d.now) S.skew = d.now - Date.now() / 1000;
    setError('inbox-error', null);
    renderLists();
  }
  function renderLists() {
    const d = S.inbox;
    if (!d) return;
    const openKey = S.open ? convKey(S.open.key) : '';
    const sig = JSON.stringify([S.lang, openKey, d.apps, d.waiting, d.mine]);
    if (sig === S.listSig) return;
    S.listSig = sig;
    const apps = d.apps || [];
    const total = apps.length ? apps.reduce((n, a) => n + (a.waiting_count || 0), 0) : (d.waiting || []).length;
    $('waiting-count').textContent = String(total);
    $('app-counts').replaceChildren(...apps.map((a) => el('span', {
      'data-testid': 'app-count', 'data-app': `${a.platform}/${a.app_id}`,
      text: `${a.platform}/${a.app_id} · ${a.waiting_count || 0}`
    })));
    fillList('waiting', d.waiting || [], openKey);
    fillList('mine', d.mine || [], openKey);
    $('mine-count').textContent = String((d.mine || []).length);
  }
  function fillList(which, items, openKey) {
    $(`${which}-list`).replaceChildren(...items.filter((c) => c.key).map((c) => {
      const k = convKey(c.key);
      const badge = which === 'mine' && c.unread > 0
        ? el('span', { class: 'badge', 'data-testid': 'unread-badge', text: String(c.unread) }) : null;
      return el('li', {
        'data-testid': `${which}-item`, 'data-key': k, 'data-open-id': c.key.open_id, 'data-app': appKey(c.key),
        class: k === openKey ? 'open' : null, onclick: () => openConversation(c.key)
      },
      el('div', { class: 'line' }, el('b', { text: c.key.open_id }), badge),
      el('div', { class: 'preview', text: c.last_in_preview || '' }),
      el('div', { class: 'meta' }, `${appKey(c.key)} · ${clock(c.last_in_at)} `,
        ...(c.tags || []).map((tag) => el('span', { class: 'tag', text: tag }))));
    }));
    $(`${which}-empty`).hidden = items.length > 0;
  }

  // ---- the open conversation ---------------------------------------------------------------
  async function openConversation(key) {
    const seq = ++S.seq;
    S.open = { key, seq, data: null, messages: [], seen: new Set(), cursor: null, tagsDirty: false };
    S.listSig = '';
    renderLists();
    setScreen('conv');
    const conv = $('conversation');
    conv.dataset.key = convKey(key);
    conv.dataset.status = conv.dataset.assignee = conv.dataset.mine = '';
    $('conv-title').textContent = key.open_id;
    $('conv-app').textContent = appKey(key);
    $('conv-status').textContent = '';
    $('conv-placeholder').hidden = true;
    $('conv-body').hidden = false;
    $('messages').replaceChildren();
    $('reply-input').value = '';
    setError('conv-error', null);
    hideSuggest();
    loadQuickReplies(key);
    loadNames(key);
    loop('conv', async () => {
      if (!S.open || S.open.seq !== seq) return false;
      await pollConversation();
      return !!S.open && S.open.seq === seq;
    });
  }
  function closeConversation() {
    S.open = null;
    if (loops.conv) { loops.conv.fn = null; clearTimeout(loops.conv.timer); }
    S.listSig = '';
    $('conv-placeholder').hidden = false;
    $('conv-body').hidden = true;
    renderLists();
    setScreen('list');
  }
  $('conv-back').addEventListener('click', closeConversation);
  async function pollConversation() {
    const o = S.open;
    if (!o) return;
    const q = o.cursor ? `?after=${enc(o.cursor)}` : '';
    try {
      let d = await call('GET', convPath(o.key) + q);
      let full = !o.cursor;
      // More new messages than one poll carries: reload the newest rather than leave a hole.
      if (d && d.gap && S.open === o) {
        d = await call('GET', convPath(o.key));
        full = true;
      }
      if (S.open === o) merge(d, full);
    } catch (err) {
      if (S.open === o && err.status !== 401) setError('conv-error', err.label);
    }
  }
  /** Takes a conversation answer: its summary replaces ours, its messages join ours by position (a
      poll overlaps the last ones; an older page goes before). */
  function merge(d, full) {
    const o = S.open;
    if (!d) return;
    const { messages, cursor, more, before, ...summary } = d;
    o.data = { ...(o.data || {}), ...summary };
    if (full) { o.more = !!more; o.before = before || null; }
    if (cursor) o.cursor = cursor;
    const fresh = (messages || []).filter((m) => !o.seen.has(m.position));
    fresh.forEach((m) => o.seen.add(m.position));
    const box = $('messages');
    const atEnd = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
    // A message seen before whose image has been kept since (a signed URL now): shown again.
    (messages || []).forEach((m) => {
      if (!m.media_url || fresh.includes(m)) return;
      const i = o.messages.findIndex((x) => x.position === m.position);
      if (i < 0 || o.messages[i].media_url) return;
      o.messages[i] = m;
      const li = box.querySelector(`[data-position="${CSS.escape(m.position)}"]`);
      if (li) li.replaceWith(renderMessage(m));
    });
    if (fresh.length) {
      const last = o.messages.length ? o.messages[o.messages.length - 1].position : '';
      o.messages.push(...fresh);
      if (fresh.every((m) => m.position > last)) {
        box.append(...fresh.map(renderMessage));
      } else {
        const top = box.scrollHeight - box.scrollTop;
        o.messages.sort((a, b) => (a.position < b.position ? -1 : a.position > b.position ? 1 : 0));
        box.replaceChildren(...o.messages.map(renderMessage));
        if (!atEnd) box.scrollTop = box.scrollHeight - top;
      }
      if (fresh.some((m) => m.direction === 'out' && m.position > last)) box.scrollTop = box.scrollHeight;
    }
    renderConversation();
    if (atEnd) box.scrollTop = box.scrollHeight;
  }
  async function loadOlder() {
    const o = S.open;
    if (!o || !o.before) return;
    try {
      const d = await call('GET', `${convPath(o.key)}?before=${enc(o.before)}`);
      if (S.open !== o || !d) return;
      o.more = !!d.more;
      o.before = d.before || null;
      delete d.cursor;
      merge(d, false);
    } catch (err) { if (S.open === o) setError('conv-error', err.label); }
  }
  $('older-note').addEventListener('click', loadOlder);
  /** The inbound message's fields: kefu's stored shape ({body: {type, title, page_path, …}}) or the
      platform's own (Event, Title, PagePath, …), whichever `raw` holds. */
  function rawOf(m) {
    let r = {};
    try { r = JSON.parse(m.raw || '{}') || {}; } catch (_) { r = {}; }
    const b = r.body && typeof r.body === 'object' ? r.body : {};
    return {
      event: b.type || r.Event, from: b.session_from || r.SessionFrom, pic: b.pic_url || r.PicUrl,
      title: b.title || r.Title, path: b.page_path || r.PagePath, url: b.url || r.Url
    };
  }
  function showable(url) {
    return typeof url === 'string' && (/^https:\/\//i.test(url) ||
      (/^http:\/\//i.test(url) && /[?&](X-Amz-Signature|Signature)=/i.test(url)));
  }
  function renderMessage(m) {
    const li = el('li', {
      'data-testid': 'message', 'data-position': m.position, 'data-direction': m.direction,
      'data-msg-type': m.msg_type, 'data-status': m.status || null, class: 'msg'
    });
    const raw = rawOf(m);
    if (m.direction === 'desk') {
      const key = { accepted: 'd_accepted', released: 'd_released', idle_released: 'd_idle_released', closed: 'd_closed' }[m.msg_type];
      li.textContent = key ? t(key, agentName(m.agent) || '') : t('m_other', m.msg_type);
    } else if (m.msg_type === 'text') {
      li.textContent = m.content || '';
    } else if (m.msg_type === 'image') {
      // The kept copy (a signed URL of the stack's bucket) first, else what the platform gave.
      const url = showable(m.media_url) ? m.media_url : showable(m.media) ? m.media : showable(raw.pic) ? raw.pic : null;
      li.append(url ? el('img', { src: url, alt: t('m_image'), loading: 'lazy', referrerpolicy: 'no-referrer' }) : t('m_image'));
    } else if (m.msg_type === 'miniprogrampage') {
      li.append(el('div', { class: 'card' }, `${t('m_card')} ${raw.title || m.content || ''}`,
        el('small', { text: raw.path || '' })));
    } else if (m.msg_type === 'link') {
      li.append(el('div', { class: 'card' }, `${t('m_link')} ${raw.title || m.content || ''}`, el('small', { text: raw.url || '' })));
    } else if (m.msg_type === 'event') {
      li.classList.add('event');
      li.textContent = /^user_enter_temp_?session$/.test(raw.event || '')
        ? t('m_enter') + (raw.from ? ` (${raw.from})` : '') : t('m_event', raw.event || '');
    } else {
      li.textContent = m.content || t('m_other', m.msg_type);
    }
    const by = m.direction === 'out' && m.agent && S.me && m.agent !== S.me.id ? ` · ${agentName(m.agent)}` : '';
    const meta = el('span', { class: 'time', text: clock(m.create_time) + by });
    if (m.direction === 'out' && m.status && m.status !== 'sent') {
      meta.append(el('span', { class: 'status', text: t(`s_${m.status}`) + (m.errcode ? ` (${m.errcode})` : '') }));
    }
    if (m.direction !== 'desk') li.append(meta);
    return li;
  }
  function blockReason(c) {
    if (!c) return 'accept_first';
    if (c.refusal) return c.refusal;
    if (c.expires_at && c.expires_at <= now()) return 'window_expired';
    if (c.status === 'closed') return 'closed';
    if (c.status !== 'active' || !S.me || c.assignee !== S.me.id) return 'accept_first';
    return null;
  }
  function renderConversation() {
    const o = S.open;
    if (!o || !o.data) return;
    const c = o.data;
    const k = o.key;
    const conv = $('conversation');
    const mine = c.status === 'active' && S.me && c.assignee === S.me.id;
    const admin = roleIn(k) === 'admin';
    conv.dataset.key = convKey(k);
    conv.dataset.status = c.status || '';
    conv.dataset.assignee = c.assignee || '';
    conv.dataset.mine = mine ? 'true' : 'false';
    $('conv-title').textContent = k.open_id;
    $('conv-app').textContent = appKey(k);
    $('conv-status').textContent = c.status === 'active' ? t('st_active', agentName(c.assignee)) : t(`st_${c.status}`);
    $('accept-button').hidden = c.status !== 'waiting';
    $('release-button').hidden = !(c.status === 'active' && (mine || admin));
    $('close-button').hidden = !(c.status === 'waiting' || (c.status === 'active' && (mine || admin)));
    $('older-note').hidden = !o.more;
    $('older-note').disabled = !o.before;
    $('remaining').textContent = String(c.remaining ?? '');
    const reason = blockReason(c);
    const r = $('refusal');
    r.hidden = !reason;
    r.textContent = reason ? t(`r_${reason}`) : '';
    if (reason) r.dataset.reason = reason; else delete r.dataset.reason;
    const input = $('reply-input');
    input.disabled = !!reason;
    input.placeholder = reason ? '' : t('reply_hint');
    $('reply-send').disabled = !!reason || !!o.sending;
    $('image-input').disabled = !!reason || !!o.sending;
    if (reason) hideSuggest();
    const tags = $('tags-input');
    if (!o.tagsDirty && document.activeElement !== tags) tags.value = (c.tags || []).join(', ');
    tick();
  }
  function tick() {
    const o = S.open;
    if (!o || !o.data) return;
    const c = o.data;
    const left = (c.expires_at || 0) - now();
    // Closed once under a second is left, or when the server already says so (clocks differ).
    const open = left >= 1 && c.refusal !== 'window_expired';
    $('countdown').textContent = open ? t('left', duration(left)) : t('window_closed');
    if (left <= 0 && c.expires_at && !$('reply-input').disabled) renderConversation();
  }
  setInterval(tick, 1000);

  async function act(action) {
    const o = S.open;
    if (!o) return;
    setError('conv-error', null);
    try {
      const d = await call('POST', `${convPath(o.key)}/${action}`);
      if (S.open === o) merge(d, false);
      pollConversation();
      loadInbox().catch(() => {});
    } catch (err) {
      if (S.open === o) setError('conv-error', err.label);
    }
  }
  $('accept-button').addEventListener('click', () => act('accept'));
  $('release-button').addEventListener('click', () => act('release'));
  $('close-button').addEventListener('click', () => act('close'));

  async function send(body) {
    const o = S.open;
    if (!o || o.sending) return false;
    setError('conv-error', null);
    o.sending = true;
    renderConversation();
    try {
      // One id per draft: a resend of the same draft after a lost answer (network, 5xx) is the
      // same send, which the server answers once; a new draft gets a new id.
      const draft = JSON.stringify(body);
      if (!o.draft || o.draft.body !== draft) o.draft = { body: draft, id: uuid() };
      const d = await call('POST', `${convPath(o.key)}/messages`, { ...body, client_msg_id: o.draft.id });
      o.draft = null;
      if (d && S.open === o) {
        if (d.remaining !== undefined) o.data.remaining = d.remaining;
        if (d.expires_at !== undefined) o.data.expires_at = d.expires_at;
        if (d.status && d.status !== 'sent') toast(t('sent_status', t(`s_${d.status}`)));
      }
      return true;
    } catch (err) {
      // A definite answer ends the draft's id; a lost one (no status, 5xx) keeps it for the resend.
      if (err.status && err.status < 500 && err.label !== 'in_progress') o.draft = null;
      if (S.open === o) {
        setError('conv-error', err.label);
        const e = err.data || {};
        if (e.remaining !== undefined) o.data.remaining = e.remaining;
        if (e.expires_at !== undefined) o.data.expires_at = e.expires_at;
        if (REFUSALS.includes(err.label)) o.data.refusal = err.label;
      }
      return false;
    } finally {
      o.sending = false;
      if (S.open === o) { renderConversation(); pollConversation(); }
    }
  }
  $('reply-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const input = $('reply-input');
    const text = input.value;
    if (!text.trim() || input.disabled) return;
    if (await send({ msg_type: 'text', content: text }) && input.value === text) input.value = '';
  });
  $('image-input').addEventListener('change', (e) => {
    const file = e.target.files && e.target.files[0];
    e.target.value = '';
    if (!file) return;
    if (file.size > MAX_IMAGE) { setError('conv-error', 'image_too_large'); return; }
    const reader = new FileReader();
    reader.onload = () => {
      const data = String(reader.result).split(',')[1] || '';
      send({ msg_type: 'image', data });
    };
    reader.readAsDataURL(file);
  });

  // ---- quick replies: the side list, /shortcut in the reply box, the admin's editor -----------
  async function loadQuickReplies(key) {
    const ak = appKey(key);
    setError('qr-error', null);
    try {
      const d = await call('GET', `${appPath(key)}/quick-replies`);
      S.qr[ak] = (d && d.quick_replies) || [];
    } catch (err) {
      S.qr[ak] = S.qr[ak] || [];
      if (err.status !== 401) setError('qr-error', err.label);
    }
    renderQuickReplies();
  }
  const openReplies = () => (S.open ? S.qr[appKey(S.open.key)] || [] : []);
  function renderQuickReplies() {
    if (!S.open) return;
    const admin = roleIn(S.open.key) === 'admin';
    const list = openReplies();
    $('quick-replies').replaceChildren(...list.map((q) => el('li', {
      'data-testid': 'quick-reply', 'data-shortcut': q.shortcut, title: q.text,
      onclick: () => insertText(q.text)
    }, el('code', { text: `/${q.shortcut}` }), el('span', { text: q.text }),
    admin ? el('button', {
      type: 'button', 'data-testid': 'qr-delete', text: t('delete'),
      onclick: (ev) => { ev.stopPropagation(); deleteQuickReply(q); }
    }) : null)));
    $('qr-empty').hidden = list.length > 0;
    $('qr-form').hidden = !admin;
  }
  function insertText(text) {
    const input = $('reply-input');
    if (input.disabled) return;
    const a = input.selectionStart ?? input.value.length, b = input.selectionEnd ?? a;
    input.value = input.value.slice(0, a) + text + input.value.slice(b);
    input.focus();
    input.selectionStart = input.selectionEnd = a + text.length;
    hideSuggest();
  }
  /** The `/word` just before the caret, if any: [start index, word]. */
  function slashWord() {
    const input = $('reply-input');
    const before = input.value.slice(0, input.selectionStart ?? input.value.length);
    const m = /(^|\s)\/([^\s/]*)$/.exec(before);
    return m ? [before.length - m[2].length - 1, m[2]] : null;
  }
  function expand(q, start) {
    const input = $('reply-input');
    const end = input.selectionStart ?? input.value.length;
    let rest = input.value.slice(end);
    if (rest.startsWith(' ')) rest = rest.slice(1);
    input.value = input.value.slice(0, start) + q.text + rest;
    input.selectionStart = input.selectionEnd = start + q.text.length;
    hideSuggest();
  }
  function hideSuggest() { S.suggest = []; $('qr-suggest').hidden = true; }
  function showSuggest(items) {
    S.suggest = items;
    S.pick = 0;
    const box = $('qr-suggest');
    box.replaceChildren(...items.map((q, i) => el('li', {
      'data-testid': 'qr-suggest-item', 'data-shortcut': q.shortcut, class: i === 0 ? 'on' : null,
      onmousedown: (ev) => { ev.preventDefault(); const w = slashWord(); if (w) expand(q, w[0]); }
    }, el('code', { text: `/${q.shortcut} ` }), q.text)));
    box.hidden = items.length === 0;
  }
  $('reply-input').addEventListener('input', (e) => {
    const input = e.target;
    const caret = input.selectionStart ?? input.value.length;
    const before = input.value.slice(0, caret);
    const done = /(^|\s)\/([^\s/]+)\s$/.exec(before);
    if (done) {
      const q = openReplies().find((x) => x.shortcut === done[2]);
      if (q) {
        input.selectionStart = input.selectionEnd = caret - 1;
        expand(q, caret - 1 - done[2].length - 1);
        return;
      }
    }
    const w = slashWord();
    if (!w) { hideSuggest(); return; }
    showSuggest(openReplies().filter((q) => q.shortcut.startsWith(w[1])).slice(0, 8));
  });
  $('reply-input').addEventListener('keydown', (e) => {
    if (e.isComposing || e.keyCode === 229) return;
    if (S.suggest.length) {
      if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        e.preventDefault();
        S.pick = (S.pick + (e.key === 'ArrowDown' ? 1 : S.suggest.length - 1)) % S.suggest.length;
        [...$('qr-suggest').children].forEach((li, i) => li.classList.toggle('on', i === S.pick));
        return;
      }
      if (e.key === 'Enter' || e.key === 'Tab') {
        e.preventDefault();
        const w = slashWord();
        if (w) expand(S.suggest[S.pick], w[0]);
        return;
      }
      if (e.key === 'Escape') { hideSuggest(); return; }
    }
    if (e.key === 'Enter' && !e.shiftKey) {
      e.preventDefault();
      $('reply-form').requestSubmit();
    }
  });
  $('reply-input').addEventListener('blur', () => setTimeout(hideSuggest, 150));
  $('qr-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const o = S.open;
    if (!o) return;
    const shortcut = $('qr-shortcut').value.trim().replace(/^\//, '').toLowerCase();
    const text = $('qr-text').value.trim();
    if (!shortcut || !text) return;
    const existing = openReplies().find((q) => q.shortcut === shortcut);
    const id = existing ? existing.id : uuid().slice(0, 16);
    setError('qr-error', null);
    try {
      await call('PUT', `${appPath(o.key)}/quick-replies/${enc(id)}`, { shortcut, text });
      $('qr-shortcut').value = '';
      $('qr-text').value = '';
      await loadQuickReplies(o.key);
    } catch (err) { setError('qr-error', err.label); }
  });
  async function deleteQuickReply(q) {
    const o = S.open;
    if (!o) return;
    try {
      await call('DELETE', `${appPath(o.key)}/quick-replies/${enc(q.id)}`);
      await loadQuickReplies(o.key);
    } catch (err) { setError('qr-error', err.label); }
  }

  // ---- tags, agents' names ------------------------------------------------------------------
  $('tags-input').addEventListener('input', () => { if (S.open) S.open.tagsDirty = true; });
  $('tags-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const o = S.open;
    if (!o) return;
    const tags = [...new Set($('tags-input').value.split(/[,，]/).map((x) => x.trim()).filter(Boolean))];
    try {
      const d = await call('PUT', `${convPath(o.key)}/tags`, { tags });
      if (S.open === o) { o.tagsDirty = false; merge(d, false); $('tags-input').value = (o.data.tags || []).join(', '); }
      loadInbox().catch(() => {});
    } catch (err) { if (S.open === o) setError('conv-error', err.label); }
  });
  async function loadNames(key) {
    try {
      const d = await call('GET', `${appPath(key)}/agents`);
      for (const a of (d && d.agents) || []) S.names[a.id] = a.name || a.id.slice(0, 8);
      if (S.open) renderConversation();
    } catch (_) { /* names are a nicety */ }
  }

  // ---- statistics (admins) ------------------------------------------------------------------
  $('nav-stats').addEventListener('click', () => {
    const sel = $('stats-app');
    const admin = S.me.apps.filter((a) => a.role === 'admin');
    sel.replaceChildren(...admin.map((a) => el('option', { value: a.app, text: a.app.replace('#', '/') })));
    setScreen('stats');
    loadStats();
  });
  $('stats-back').addEventListener('click', () => setScreen(S.open ? 'conv' : 'list'));
  $('stats-app').addEventListener('change', loadStats);
  $('stats-days').addEventListener('change', loadStats);
  async function loadStats() {
    const [platform, app_id] = ($('stats-app').value || '').split('#');
    const head = $('stats-table').tHead, body = $('stats-table').tBodies[0];
    setError('stats-error', null);
    body.replaceChildren();
    if (!app_id) return;
    const cols = ['c_date', 'c_conversations', 'c_in', 'c_out', 'c_p50', 'c_p90', 'c_unanswered', 'c_refused'];
    head.replaceChildren(el('tr', {}, ...cols.map((c) => el('th', { text: t(c) }))));
    try {
      const d = await call('GET', `${appPath({ platform, app_id })}/stats?days=${enc($('stats-days').value)}`);
      const cell = (v) => el('td', { text: v === null || v === undefined ? '–' : String(v) });
      for (const day of (d && d.days) || []) {
        body.append(el('tr', { 'data-testid': 'stats-row', 'data-date': day.date },
          ...[day.date, day.conversations, day.messages_in, day.messages_out, day.first_response_p50_secs,
            day.first_response_p90_secs, day.unanswered, day.refused_quota].map(cell)));
        for (const a of day.agents || []) {
          body.append(el('tr', { 'data-testid': 'stats-agent-row', class: 'agent' },
            ...[agentName(a.agent), a.conversations, null, a.messages_out, a.first_response_p50_secs,
              a.first_response_p90_secs, null, null].map(cell)));
        }
      }
    } catch (err) {
      $('stats-error').textContent = `${t('e_stats')} (${err.label})`;
      $('stats-error').dataset.error = err.label;
    }
  }

  // ---- language, visibility, boot -----------------------------------------------------------
  function applyLang() {
    document.documentElement.lang = S.lang === 'zh' ? 'zh-CN' : 'en';
    document.title = t('title');
    document.querySelectorAll('[data-i18n]').forEach((e) => { e.textContent = t(e.dataset.i18n); });
    $('lang-toggle').textContent = t('lang_other');
    $('tags-input').placeholder = t('tags_hint');
    $('qr-shortcut').placeholder = t('shortcut_hint');
    $('qr-text').placeholder = t('text_hint');
    [...$('stats-days').options].forEach((o) => { o.textContent = t('days', o.value); });
    S.listSig = '';
    renderLists();
    renderMe();
    if (S.open && S.open.data) {
      $('messages').replaceChildren(...S.open.messages.map(renderMessage));
      renderConversation();
      renderQuickReplies();
    }
  }
  $('lang-toggle').addEventListener('click', () => {
    S.lang = S.lang === 'zh' ? 'en' : 'zh';
    try { localStorage.setItem(LANG, S.lang); } catch (_) { /* not kept */ }
    applyLang();
  });
  document.addEventListener('visibilitychange', () => {
    if (document.hidden) return;
    for (const L of Object.values(loops)) if (L.fn && !L.busy) { clearTimeout(L.timer); step(L); }
  });

  applyLang();
  try {
    const saved = JSON.parse(sessionStorage.getItem(TOKENS) || 'null');
    if (saved && saved.access) { S.access = saved.access; S.refresh = saved.refresh || null; }
  } catch (_) { /* nothing saved */ }
  if (S.access) start().catch((err) => signedOut(err.status === 401 ? 'unauthenticated' : err.label));
  else setScreen('signin');
})();
