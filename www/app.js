/*
 * www/app.js - the Bulwark dashboard: one page, hash routes (#/overview, #/log, ...), the
 * admin API under /api/v1/ (docs/api.md). No framework and no build step.
 *
 * Security: the page runs under Content-Security-Policy "default-src 'self'": no inline
 * script or style, no eval. Every string from the API (query names are chosen by whoever
 * sends a query) reaches the page as text (textContent), never as HTML.
 * Session: POST /api/v1/login sets an HttpOnly cookie; its result's "csrf" is sent as the
 * X-Bulwark-CSRF header with every request that changes something.
 * Roles: a viewer sees no action buttons (they are not built at all, not merely hidden).
 */
'use strict';

(function () {
	const POLL_MS = 30000;
	const LOG_PAGE = 50;
	const PAGES = ['overview', 'log', 'alerts', 'feeds', 'explain', 'decisions'];

	const state = {
		me: null,       /* {name, role, csrf} */
		timer: null,    /* the current page's polling */
		chart: null,
		feeds: null,    /* the feed names, for the log filter */
		flashTimer: null,
	};

	const $ = (id) => document.getElementById(id);

	/* h('a', {href: '#/x', class: 'y'}, 'text', child...): a DOM element; children that
	 * are strings become text nodes. on* attributes take functions. */
	function h(tag, attrs, ...kids) {
		const el = document.createElement(tag);
		for (const [k, v] of Object.entries(attrs || {})) {
			if (v === null || v === undefined || v === false)
				continue;
			if (k.startsWith('on') && typeof v === 'function')
				el.addEventListener(k.slice(2), v);
			else if (k === 'class')
				el.className = v;
			else
				el.setAttribute(k, v === true ? '' : String(v));
		}
		for (const kid of kids.flat()) {
			if (kid === null || kid === undefined || kid === false)
				continue;
			el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
		}
		return el;
	}

	function clear(el) {
		while (el.firstChild)
			el.removeChild(el.firstChild);
		return el;
	}

	const isAdmin = () => state.me && state.me.role === 'admin';

	/* ---- the API ---- */
	class ApiError extends Error {
		constructor(message, status) {
			super(message);
			this.status = status;
		}
	}

	async function api(method, path, body) {
		const opts = { method, headers: { Accept: 'application/json' },
			       credentials: 'same-origin', cache: 'no-store' };
		if (body !== undefined) {
			opts.headers['Content-Type'] = 'application/json';
			opts.body = JSON.stringify(body);
		}
		if (method !== 'GET' && state.me && state.me.csrf)
			opts.headers['X-Bulwark-CSRF'] = state.me.csrf;
		let resp;
		try {
			resp = await fetch(path, opts);
		} catch (e) {
			throw new ApiError('Bulwark cannot be reached. Is it running?', 0);
		}
		let j = null;
		try {
			j = await resp.json();
		} catch (e) {
			j = null;
		}
		if (resp.status === 401 && path !== '/api/v1/login') {
			sessionEnded();
			throw new ApiError('Please sign in again.', 401);
		}
		if (!j || !j.ok)
			throw new ApiError((j && j.error) || 'HTTP ' + resp.status, resp.status);
		return j.result;
	}

	function query(params) {
		const q = new URLSearchParams();
		for (const [k, v] of Object.entries(params))
			if (v !== '' && v !== null && v !== undefined)
				q.set(k, v);
		const s = q.toString();
		return s ? '?' + s : '';
	}

	/* ---- words and numbers ---- */
	function num(n) {
		return typeof n === 'number' ? n.toLocaleString('en-US') : '–';
	}

	function plural(n, one, many) {
		return num(n) + ' ' + (n === 1 ? one : many);
	}

	/* unix seconds, or an ISO 8601 string */
	function toDate(v) {
		if (v === null || v === undefined || v === '' || v === 0)
			return null;
		const d = typeof v === 'number' ? new Date(v * 1000) : new Date(v);
		return isNaN(d.getTime()) ? null : d;
	}

	const pad = (n) => String(n).padStart(2, '0');
	const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct',
			'Nov', 'Dec'];

	function clock(d) {
		return pad(d.getHours()) + ':' + pad(d.getMinutes());
	}

	/* "14:30" today, "3 May 14:30" otherwise */
	function when(v) {
		const d = toDate(v);
		if (!d)
			return 'never';
		const now = new Date();
		if (d.toDateString() === now.toDateString())
			return clock(d);
		return d.getDate() + ' ' + MONTHS[d.getMonth()] + ' ' + clock(d);
	}

	function whenFull(v) {
		const d = toDate(v);
		return d ? d.toString() : '';
	}

	function verdictWords(v) {
		switch (v) {
		case 'blocked': return 'Blocked';
		case 'allowed': return 'Allowed';
		case 'local': return 'Local answer';
		case 'log-only': return 'Allowed (noted)';
		default: return v ? v.charAt(0).toUpperCase() + v.slice(1) : '';
		}
	}

	/* a feed's state in words, and whether it is healthy (states: feeds/manager.c) */
	function feedHealth(f) {
		const s = String(f.state || '').toLowerCase();
		const why = f.error ? ' (' + f.error + ')' : '';
		if (f.held_back || s === 'held back')
			return { ok: false, words: 'A new version looks wrong and is held back; the last good one is in use' };
		switch (s) {
		case 'ok': return { ok: true, words: 'Up to date' };
		case 'file': return { ok: true, words: 'Loaded from its file' };
		case 'changing': return { ok: true, words: 'Loading a new version' };
		case 'no copy yet': return { ok: false, words: 'Not loaded yet' + why };
		case 'failing': return { ok: false, words: 'Cannot update' + why + '; the last good copy is in use' };
		case 'failed': return { ok: false, words: 'The last update was refused' + why + '; the last good copy is in use' };
		case 'expired, keeps blocking': return { ok: false, words: 'Out of date; still blocking with its last copy' + why };
		case 'expired, stopped': return { ok: false, words: 'Out of date and no longer used' + why };
		default: return { ok: !f.error, words: (s ? s.charAt(0).toUpperCase() + s.slice(1) : 'Unknown') + why };
		}
	}

	/* when a feed last changed: its last successful fetch, or a file's modification time */
	function feedUpdated(f) {
		if (toDate(f.updated))
			return f.updated;
		const m = /^modified (\S+)/.exec(f.version || '');
		return m ? m[1] : null;
	}

	function clientWords(c) {
		return c.client_name ? c.client_name + ' (' + c.client + ')' : c.client;
	}

	/* ---- messages ---- */
	function flash(text, kind, action) {
		const el = $('flash');
		clear(el);
		el.className = 'flash ' + (kind || 'ok');
		el.append(h('span', null, text));
		if (action)
			el.append(' ', h('button', { type: 'button', onclick: action.fn }, action.label));
		el.append(' ', h('button', { type: 'button', class: 'link close', 'aria-label': 'Dismiss',
					     onclick: () => { el.hidden = true; } }, '×'));
		el.hidden = false;
		clearTimeout(state.flashTimer);
		state.flashTimer = setTimeout(() => { el.hidden = true; }, action ? 20000 : 8000);
	}

	function failed(e) {
		if (e && e.status === 401)
			return;
		flash(e && e.message ? e.message : String(e), 'error');
	}

	/* runs an action button: disabled while it runs, errors shown */
	async function act(button, fn) {
		if (button)
			button.disabled = true;
		try {
			await fn();
		} catch (e) {
			failed(e);
		} finally {
			if (button && button.isConnected)
				button.disabled = false;
		}
	}

	/* ---- actions shared by several pages ---- */
	async function allowName(name, button) {
		await act(button, async () => {
			await api('POST', '/api/v1/allow', { name });
			flash(name + ' is allowed now: the next lookup resolves.', 'ok',
			      { label: 'Undo', fn: () => undoDecision(name, 'allow') });
			if (button) {
				const done = h('span', { class: 'done' }, 'Unblocked');
				button.replaceWith(done);
			}
		});
	}

	async function undoDecision(name, action, button) {
		await act(button, async () => {
			await api('DELETE', '/api/v1/' + action + '/' + encodeURIComponent(name));
			flash('Undone: ' + name + ' is back to what the block lists say.', 'ok');
			route();
		});
	}

	/* ---- routing ---- */
	function parseHash() {
		const raw = location.hash.replace(/^#\/?/, '');
		const qpos = raw.indexOf('?');
		const page = (qpos < 0 ? raw : raw.slice(0, qpos)) || 'overview';
		const params = new URLSearchParams(qpos < 0 ? '' : raw.slice(qpos + 1));
		return { page, params };
	}

	function go(page, params) {
		const s = params ? new URLSearchParams(params).toString() : '';
		const hash = '#/' + page + (s ? '?' + s : '');
		if (location.hash === hash)
			route();
		else
			location.hash = hash;
	}

	function show(id) {
		for (const sec of document.querySelectorAll('.page'))
			sec.hidden = sec.id !== 'page-' + id;
		for (const a of document.querySelectorAll('#nav a')) {
			if (a.dataset.page === id)
				a.setAttribute('aria-current', 'page');
			else
				a.removeAttribute('aria-current');
		}
		document.title = (id === 'login' ? 'Sign in' : navTitle(id)) + ' – Bulwark';
	}

	function navTitle(id) {
		const a = document.querySelector('#nav a[data-page="' + id + '"]');
		return a ? a.textContent : 'Bulwark';
	}

	function stopPolling() {
		if (state.timer) {
			clearInterval(state.timer);
			state.timer = null;
		}
	}

	function poll(fn) {
		stopPolling();
		state.timer = setInterval(() => {
			if (document.visibilityState === 'visible')
				fn().catch(failed);
		}, POLL_MS);
	}

	let lastPage = null;

	async function route() {
		if (!state.me) {
			showLogin();
			return;
		}
		const { page, params } = parseHash();
		const id = PAGES.includes(page) ? page : 'overview';
		stopPolling();
		document.body.removeAttribute('data-ready');
		show(id);
		if (id !== lastPage) {
			if (lastPage !== null)
				$('flash').hidden = true; /* a message belongs to the page it came from */
			$('main').focus({ preventScroll: true });
			lastPage = id;
		}
		try {
			await PAGE_LOADERS[id](params);
		} catch (e) {
			failed(e);
		}
		/* for the browser tests: this page has its data */
		if (parseHash().page === page)
			document.body.setAttribute('data-ready', id);
	}

	/* ---- login ---- */
	function setMe(me) {
		state.me = me;
		$('nav').hidden = !me;
		$('who').hidden = !me;
		document.body.classList.toggle('viewer', !!me && me.role !== 'admin');
		if (me)
			$('who-name').textContent = me.name + (me.role === 'admin' ? '' : ' (view only)');
	}

	function showLogin(message) {
		stopPolling();
		lastPage = 'login';
		show('login');
		document.body.setAttribute('data-ready', 'login');
		const err = $('login-error');
		err.hidden = !message;
		err.textContent = message || '';
		$('login-token').focus();
	}

	function sessionEnded() {
		if (state.me) {
			setMe(null);
			showLogin('Your session has ended. Please sign in again.');
		}
	}

	async function login(ev) {
		ev.preventDefault();
		const input = $('login-token');
		const button = ev.submitter || document.querySelector('#login-form button');
		button.disabled = true;
		try {
			const me = await api('POST', '/api/v1/login', { token: input.value.trim() });
			input.value = '';
			setMe(me);
			if (!parseHash().page || location.hash === '' || location.hash === '#/login')
				location.hash = '#/overview';
			route();
		} catch (e) {
			const msg = e.status === 429 ? 'Too many attempts. Wait a minute and try again.'
				: e.status === 401 || e.status === 403 ? 'That token is not valid.'
				: e.message;
			showLogin(msg);
		} finally {
			button.disabled = false;
		}
	}

	async function logout() {
		try {
			await api('POST', '/api/v1/logout', {});
		} catch (e) {
			/* the session is gone either way */
		}
		setMe(null);
		showLogin();
	}

	/* ---- overview ---- */
	function protectionSentence(st) {
		const paused = Array.isArray(st.paused) ? st.paused : [];
		if (st.protection === 'no-feeds')
			return { cls: 'warn', text: 'No block list is loaded yet',
				 detail: 'Bulwark answers every question but blocks nothing until a block list has loaded.' };
		if (paused.length) {
			const parts = paused.map((p) => {
				const d = toDate(p.until);
				return 'for ' + p.profile + (d ? ' until ' + clock(d) : '');
			});
			return { cls: 'warn', text: 'Protection is paused ' + parts.join(' and '),
				 detail: 'It turns back on by itself' +
					 (paused[0].by ? ' (paused by ' + paused[0].by + ').' : '.') };
		}
		const lists = st.feeds_total !== undefined && st.feeds_loaded !== st.feeds_total
			? num(st.feeds_loaded) + ' of ' + num(st.feeds_total) + ' block lists loaded'
			: plural(st.feeds_loaded, 'block list', 'block lists');
		return { cls: 'good', text: 'Protection is on',
			 detail: plural(st.blocked_names, 'dangerous name', 'dangerous names') +
				 ' blocked, from ' + lists + '.' };
	}

	function renderStatus(st, profiles) {
		const s = protectionSentence(st);
		$('protection').className = 'banner ' + s.cls;
		$('protection-sentence').textContent = s.text;
		$('protection-detail').textContent = s.detail;
		$('count-queries').textContent = num(st.queries);
		$('count-blocked').textContent = num(st.blocked);
		$('count-names').textContent = num(st.blocked_names);
		const ratio = st.cache && typeof st.cache.hit_ratio === 'number' ? st.cache.hit_ratio : null;
		$('count-cache').textContent = ratio === null ? '–' : Math.round(ratio * 100) + '%';

		const box = $('pause-box');
		box.hidden = !isAdmin();
		if (!isAdmin())
			return;
		const paused = Array.isArray(st.paused) ? st.paused : [];
		const sel = $('pause-profile');
		const names = new Set(profiles);
		paused.forEach((p) => names.add(p.profile));
		if (!names.size)
			names.add('default');
		const keep = sel.value;
		clear(sel);
		for (const n of names)
			sel.append(h('option', { value: n }, n));
		if (names.has(keep))
			sel.value = keep;
		const rb = clear($('resume-buttons'));
		for (const p of paused)
			rb.append(h('button', { type: 'button', class: 'primary',
						onclick: (ev) => resume(p.profile, ev.currentTarget) },
				    'Turn protection back on for ' + p.profile));
	}

	async function pause(ev) {
		ev.preventDefault();
		const profile = $('pause-profile').value;
		const minutes = Number($('pause-minutes').value);
		await act($('pause-button'), async () => {
			await api('POST', '/api/v1/pause', { profile, minutes });
			flash('Protection is paused for ' + profile + '. It turns back on by itself.', 'warn');
			await loadOverview();
		});
	}

	async function resume(profile, button) {
		await act(button, async () => {
			await api('POST', '/api/v1/resume', { profile });
			flash('Protection is back on for ' + profile + '.', 'ok');
			await loadOverview();
		});
	}

	function renderSeries(se) {
		const note = $('series-note');
		const n = Array.isArray(se.queries) ? se.queries.length : 0;
		const step = (se.resolution || 60) * 1000;
		const start = (se.start || 0) * 1000;
		const labels = [];
		for (let i = 0; i < n; i++)
			labels.push(clock(new Date(start + i * step)));
		const sum = (a) => (a || []).reduce((x, y) => x + y, 0);
		note.textContent = 'In this time: ' + plural(sum(se.queries), 'question', 'questions') +
			', ' + num(sum(se.blocked)) + ' blocked (one point a minute).';
		if (typeof window.Chart !== 'function') {
			note.textContent += ' The chart cannot be drawn: /vendor/chart.js did not load.';
			return;
		}
		const data = {
			labels,
			datasets: [
				{ label: 'Questions', data: se.queries || [], borderColor: '#1d4e89',
				  backgroundColor: 'rgba(29,78,137,0.12)', fill: true, borderWidth: 2 },
				{ label: 'Blocked', data: se.blocked || [], borderColor: '#b3261e',
				  backgroundColor: 'rgba(179,38,30,0.15)', fill: true, borderWidth: 2 },
			],
		};
		if (state.chart && state.chart.canvas && state.chart.canvas.isConnected) {
			state.chart.data = data;
			state.chart.update('none');
			return;
		}
		state.chart = new window.Chart($('series-chart'), {
			type: 'line',
			data,
			options: {
				animation: false,
				responsive: true,
				maintainAspectRatio: false,
				interaction: { mode: 'index', intersect: false },
				elements: { point: { radius: 0, hitRadius: 6 }, line: { tension: 0.2 } },
				scales: {
					x: { ticks: { maxTicksLimit: 7, maxRotation: 0 }, grid: { display: false } },
					y: { beginAtZero: true, ticks: { precision: 0 } },
				},
				plugins: { legend: { position: 'bottom' } },
			},
		});
	}

	/* a ranked list: each item a link (to explain a name, to the log of a client) and its count */
	function topList(ol, items, key, page, empty) {
		clear(ol);
		for (const t of items || [])
			ol.append(h('li', null,
				    h('a', { href: '#/' + page + '?' + new URLSearchParams({ [key]: t[key] }) }, t[key]),
				    h('span', { class: 'count' }, num(t.count))));
		if (!ol.firstChild)
			ol.append(h('li', { class: 'muted empty' }, empty));
	}

	function renderTop(top) {
		topList($('top-names'), top.names, 'name', 'explain', 'Nothing blocked yet.');
		topList($('top-clients'), top.clients, 'client', 'log', 'No devices seen yet.');
	}

	function renderFeedsHealth(feeds) {
		const list = feeds.feeds || [];
		const bad = list.filter((f) => !feedHealth(f).ok);
		let text;
		if (!list.length)
			text = 'No block lists are configured.';
		else if (!bad.length)
			text = list.length === 1 ? 'The block list is working.'
				: 'All ' + list.length + ' block lists are working.';
		else
			text = bad.length + ' of ' + list.length + ' block lists ' +
				(bad.length === 1 ? 'has' : 'have') + ' a problem:';
		const p = $('feeds-health');
		p.textContent = text;
		p.className = bad.length ? 'bad' : 'good';
		const ul = clear($('feeds-failing'));
		for (const f of bad)
			ul.append(h('li', null, h('strong', null, f.name), ' – ', feedHealth(f).words));
	}

	function alertSentence(a) {
		const names = a.names || [];
		const feeds = a.feeds || [];
		return clientWords(a) + ' tried to reach ' +
			(names.length === 1 ? names[0] : plural(names.length, 'listed name', 'listed names')) +
			' ' + plural(a.hits, 'time', 'times') +
			(feeds.length ? ' (listed by ' + feeds.join(', ') + ')' : '') +
			', last at ' + when(a.last) + '.';
	}

	const alertOpen = (a) => !a.acknowledged && a.state !== 'cleared';

	function renderAlertsSummary(al) {
		const open = (al.alerts || []).filter(alertOpen);
		const p = $('alerts-summary');
		p.textContent = open.length ? plural(open.length, 'alert needs', 'alerts need') + ' a look.'
			: 'No open alerts.';
		p.className = open.length ? 'bad' : 'good';
		const ul = clear($('alerts-list'));
		for (const a of open.slice(0, 5))
			ul.append(h('li', null, alertSentence(a)));
	}

	async function loadOverview() {
		const minutes = $('series-minutes').value;
		/* each part on its own: one that fails (telemetry off, say) leaves the rest */
		const parts = await Promise.allSettled([
			api('GET', '/api/v1/status'),
			api('GET', '/api/v1/series' + query({ minutes })),
			api('GET', '/api/v1/top?n=10'),
			api('GET', '/api/v1/feeds'),
			api('GET', '/api/v1/alerts'),
		]);
		if (parseHash().page !== 'overview')
			return;
		const [st, se, top, feeds, alerts] = parts.map((p) => (p.status === 'fulfilled' ? p.value : null));
		if (st)
			renderStatus(st, se ? Object.keys(se.by_profile || {}) : []);
		if (se)
			renderSeries(se);
		if (top)
			renderTop(top);
		if (feeds)
			renderFeedsHealth(feeds);
		if (alerts)
			renderAlertsSummary(alerts);
		$('overview-updated').textContent = 'Updated at ' + clock(new Date()) +
			'; refreshes every 30 seconds.' + (st && st.version ? ' Bulwark ' + st.version + '.' : '');
		const bad = parts.find((p) => p.status === 'rejected');
		if (bad)
			throw bad.reason;
	}

	/* ---- query log ---- */
	function localToUnix(v) {
		if (!v)
			return '';
		const d = new Date(v);
		return isNaN(d.getTime()) ? '' : String(Math.floor(d.getTime() / 1000));
	}

	async function fillFeedSelect() {
		if (!state.feeds) {
			const r = await api('GET', '/api/v1/feeds');
			state.feeds = (r.feeds || []).map((f) => f.name);
		}
		const sel = $('f-feed');
		const keep = sel.value;
		clear(sel).append(h('option', { value: '' }, 'Any'));
		for (const n of state.feeds)
			sel.append(h('option', { value: n }, n));
		sel.value = keep;
	}

	const LOG_FIELDS = ['client', 'name', 'verdict', 'feed', 'since', 'until'];

	async function loadLog(params) {
		await fillFeedSelect().catch(failed);
		let filtered = false;
		for (const k of LOG_FIELDS) {
			$('f-' + k).value = params.get(k) || (k === 'verdict' ? 'all' : '');
			filtered = filtered || !!params.get(k);
		}
		/* on a phone the filters fold away unless some are set */
		$('log-filters').open = filtered || window.matchMedia('(min-width: 701px)').matches;
		const offset = Math.max(0, parseInt(params.get('offset') || '0', 10) || 0);
		const r = await api('GET', '/api/v1/querylog' + query({
			client: params.get('client'), name: params.get('name'),
			verdict: params.get('verdict') || 'all', feed: params.get('feed'),
			since: localToUnix(params.get('since')), until: localToUnix(params.get('until')),
			limit: LOG_PAGE, offset }));
		$('log-privacy').textContent = privacyWords(r.privacy);
		const tb = clear($('log-rows'));
		for (const row of r.rows || [])
			tb.append(logRow(row));
		const rows = (r.rows || []).length;
		$('log-empty').hidden = rows > 0;
		$('log-prev').disabled = offset === 0;
		$('log-next').disabled = !r.more;
		$('log-page').textContent = rows ? 'Rows ' + (offset + 1) + '–' + (offset + rows) : '';
		$('log-prev').onclick = () => go('log', withParam(params, 'offset', Math.max(0, offset - LOG_PAGE)));
		$('log-next').onclick = () => go('log', withParam(params, 'offset', offset + LOG_PAGE));
	}

	function withParam(params, k, v) {
		const p = new URLSearchParams(params);
		if (v)
			p.set(k, v);
		else
			p.delete(k);
		return p;
	}

	function privacyWords(mode) {
		switch (mode) {
		case 'blocked-only': return 'Privacy mode "blocked-only": only blocked questions are kept, and device addresses are shortened to their network.';
		case 'anonymized': return 'Privacy mode "anonymized": device addresses are shortened to their network.';
		case 'full': return 'Privacy mode "full": every question is kept with the full device address.';
		case 'none': return 'Privacy mode "none": no questions are kept, only counts.';
		default: return mode ? 'Privacy mode "' + mode + '".' : '';
		}
	}

	function logRow(row) {
		const blocked = row.verdict === 'blocked';
		const explain = { name: row.name };
		if (row.client)
			explain.client = row.client.replace(/\/\d+$/, '');
		const acts = h('td', { class: 'actions' },
			       h('a', { href: '#/explain?' + new URLSearchParams(explain), class: 'why' }, 'Why?'));
		/* a name blocked by a local decision is unblocked by undoing that decision */
		const local = row.feed === 'local';
		if (blocked && isAdmin())
			acts.append(h('button', { type: 'button', class: 'unblock',
						  onclick: (ev) => (local ? undoDecision(row.name, 'block', ev.currentTarget)
								    : allowName(row.name, ev.currentTarget)) },
				      'Unblock'));
		return h('tr', { class: blocked ? 'blocked' : '' },
			 h('td', { 'data-label': 'Time', title: whenFull(row.time) }, when(row.time)),
			 h('td', { 'data-label': 'Device' }, clientWords(row) || ''),
			 h('td', { 'data-label': 'Name', class: 'name' }, row.name),
			 h('td', { 'data-label': 'Type' }, row.type || ''),
			 h('td', { 'data-label': 'Result' },
			   h('span', { class: 'pill ' + (blocked ? 'bad' : 'good') }, verdictWords(row.verdict))),
			 h('td', { 'data-label': 'Block list' },
			   local ? 'Your own decision'
			   : row.feed ? row.feed + (row.category ? ' (' + row.category + ')' : '') : ''),
			 acts);
	}

	function searchLog(ev) {
		ev.preventDefault();
		const p = new URLSearchParams();
		for (const k of LOG_FIELDS) {
			const v = $('f-' + k).value.trim();
			if (v && !(k === 'verdict' && v === 'all'))
				p.set(k, v);
		}
		go('log', p);
	}

	/* ---- alerts ---- */
	async function loadAlerts() {
		const r = await api('GET', '/api/v1/alerts');
		const list = r.alerts || [];
		const cards = clear($('alerts-cards'));
		$('alerts-empty').hidden = list.length > 0;
		const bar = clear($('alerts-actions'));
		if (isAdmin() && list.length)
			bar.append(h('button', { type: 'button', onclick: (ev) => alertAction('clear', { all: 'yes' }, ev.currentTarget) },
				     'Clear all alerts'));
		for (const a of list) {
			const open = alertOpen(a);
			const card = h('article', { class: 'card alert ' + (open ? 'open' : 'seen') },
				       h('h2', null, clientWords(a),
					 h('span', { class: 'pill ' + (open ? 'bad' : 'muted') },
					   a.acknowledged ? 'Acknowledged' : open ? 'Needs a look' : verdictWords(a.state))),
				       h('p', null, alertSentence(a)),
				       h('p', { class: 'muted small' }, 'First seen ' + when(a.first) + ', last seen ' + when(a.last) + '.'),
				       h('h3', null, 'What it tried to reach'),
				       h('ul', { class: 'names' }, (a.names || []).map((n) =>
					       h('li', null, h('a', { href: '#/explain?' + new URLSearchParams({ name: n }) }, n)))),
				       h('p', null, h('strong', null, 'Listed by: '), (a.feeds || []).join(', ') || 'unknown'));
			if (isAdmin()) {
				const t = h('div', { class: 'toolbar' });
				if (!a.acknowledged)
					t.append(h('button', { type: 'button', class: 'primary',
							       onclick: (ev) => alertAction('ack', { id: a.id }, ev.currentTarget) }, 'Acknowledge'));
				t.append(h('button', { type: 'button', onclick: (ev) => alertAction('clear', { id: a.id }, ev.currentTarget) }, 'Clear'));
				card.append(t);
			}
			cards.append(card);
		}
	}

	async function alertAction(what, body, button) {
		await act(button, async () => {
			await api('POST', '/api/v1/alerts/' + what, body);
			flash(what === 'ack' ? 'Alert acknowledged.' : body.all ? 'All alerts cleared.' : 'Alert cleared.', 'ok');
			await loadAlerts();
		});
	}

	/* ---- feeds ---- */
	async function loadFeeds() {
		const r = await api('GET', '/api/v1/feeds');
		state.feeds = (r.feeds || []).map((f) => f.name);
		const tb = clear($('feeds-rows'));
		for (const f of r.feeds || []) {
			const health = feedHealth(f);
			const acts = h('td', { class: 'actions' });
			if (isAdmin()) {
				acts.append(h('button', { type: 'button', onclick: (ev) => feedAction('refresh', f.name, ev.currentTarget) }, 'Refresh now'));
				if (f.held_back)
					acts.append(h('button', { type: 'button', class: 'primary',
								  onclick: (ev) => feedAction('accept', f.name, ev.currentTarget) }, 'Accept new version'));
			}
			tb.append(h('tr', { class: health.ok ? '' : 'blocked' },
				    h('td', { 'data-label': 'Name' }, h('span', { class: 'name' }, f.name),
				      f.category ? h('div', { class: 'muted small' }, f.category) : null),
				    h('td', { 'data-label': 'State' },
				      h('span', { class: 'pill ' + (health.ok ? 'good' : 'bad') }, health.ok ? health.words : 'Problem'),
				      health.ok ? null : h('div', { class: 'small' }, health.words)),
				    h('td', { 'data-label': 'Names' }, num(f.entries)),
				    h('td', { 'data-label': 'Last update', title: whenFull(feedUpdated(f)) }, when(feedUpdated(f))),
				    acts));
		}
		if (!tb.firstChild)
			tb.append(h('tr', null, h('td', { colspan: 5, class: 'muted' }, 'No block lists are configured.')));
	}

	async function feedAction(what, name, button) {
		await act(button, async () => {
			await api('POST', '/api/v1/feeds/' + what, { name });
			flash(what === 'refresh' ? name + ' is being refreshed.' : 'The held-back version of ' + name + ' is in use now.', 'ok');
			await loadFeeds();
		});
	}

	/* ---- explain ---- */
	async function loadExplain(params) {
		const name = params.get('name') || '';
		const client = params.get('client') || '';
		$('x-name').value = name;
		$('x-client').value = client;
		const box = $('explain-box');
		if (!name) {
			box.hidden = true;
			return;
		}
		const r = await api('GET', '/api/v1/explain' + query({ name, client }));
		box.hidden = false;
		box.className = 'card explain ' + (r.verdict === 'blocked' ? 'is-blocked' : 'is-allowed');
		$('explain-reason').textContent = r.reason || verdictWords(r.verdict);
		const facts = clear($('explain-facts'));
		const fact = (k, v) => { if (v) facts.append(h('dt', null, k), h('dd', null, v)); };
		fact('Name', r.name || name);
		fact('Result', verdictWords(r.verdict));
		fact('Block list', r.feed);
		fact('Category', r.category);
		fact('Profile', r.profile);
		$('explain-lines').textContent = (r.lines || []).join('\n');
		const bar = clear($('explain-actions'));
		if (isAdmin()) {
			const n = r.name || name;
			if (r.verdict === 'blocked')
				bar.append(h('button', { type: 'button', class: 'primary',
							 onclick: (ev) => allowName(n, ev.currentTarget).then(route) }, 'Unblock ' + n));
			else
				bar.append(h('button', { type: 'button', class: 'danger',
							 onclick: (ev) => decide(n, 'block', ev.currentTarget).then(route) }, 'Always block ' + n));
		}
	}

	function explainSubmit(ev) {
		ev.preventDefault();
		const p = { name: $('x-name').value.trim() };
		const c = $('x-client').value.trim();
		if (c)
			p.client = c;
		go('explain', p);
	}

	/* ---- allow / block ---- */
	async function decide(name, action, button) {
		await act(button, async () => {
			await api('POST', '/api/v1/' + action, { name });
			flash(action === 'allow' ? name + ' is always allowed now.' : name + ' is blocked now.', 'ok',
			      { label: 'Undo', fn: () => undoDecision(name, action) });
		});
	}

	async function loadDecisions() {
		$('decide-form').hidden = !isAdmin();
		const r = await api('GET', '/api/v1/decisions');
		const tb = clear($('decisions-rows'));
		const list = r.decisions || [];
		$('decisions-empty').hidden = list.length > 0;
		for (const d of list) {
			const acts = h('td', { class: 'actions' },
				       h('a', { href: '#/explain?' + new URLSearchParams({ name: d.name }), class: 'why' }, 'Check'));
			if (isAdmin())
				acts.append(h('button', { type: 'button', class: 'undo',
							  onclick: (ev) => undoDecision(d.name, d.action, ev.currentTarget) }, 'Undo'));
			tb.append(h('tr', null,
				    h('td', { 'data-label': 'Name', class: 'name' }, d.name),
				    h('td', { 'data-label': 'Decision' },
				      h('span', { class: 'pill ' + (d.action === 'block' ? 'bad' : 'good') },
					d.action === 'block' ? 'Always blocked' : 'Always allowed')),
				    h('td', { 'data-label': 'By' }, d.by || ''),
				    h('td', { 'data-label': 'When', title: whenFull(d.at) }, when(d.at)),
				    acts));
		}
	}

	async function decideSubmit(ev) {
		ev.preventDefault();
		const action = ev.submitter && ev.submitter.value === 'block' ? 'block' : 'allow';
		const input = $('d-name');
		const name = input.value.trim().replace(/\.$/, '');
		if (!name)
			return;
		await decide(name, action, ev.submitter);
		input.value = '';
		await loadDecisions().catch(failed);
	}

	const PAGE_LOADERS = {
		overview: async () => {
			poll(loadOverview);
			await loadOverview();
		},
		log: loadLog,
		alerts: async () => {
			poll(loadAlerts);
			await loadAlerts();
		},
		feeds: loadFeeds,
		explain: loadExplain,
		decisions: loadDecisions,
	};

	/* ---- start ---- */
	async function start() {
		$('login-form').addEventListener('submit', login);
		$('logout').addEventListener('click', logout);
		$('pause-form').addEventListener('submit', pause);
		$('series-minutes').addEventListener('change', () => loadOverview().catch(failed));
		$('log-form').addEventListener('submit', searchLog);
		$('log-reset').addEventListener('click', () => go('log'));
		$('explain-form').addEventListener('submit', explainSubmit);
		$('decide-form').addEventListener('submit', decideSubmit);
		window.addEventListener('hashchange', route);
		try {
			setMe(await api('GET', '/api/v1/whoami'));
		} catch (e) {
			setMe(null);
			showLogin(e.status === 401 ? '' : e.message);
			return;
		}
		route();
	}

	if (document.readyState === 'loading')
		document.addEventListener('DOMContentLoaded', start);
	else
		start();
}());
