// qrphgate sandbox page: polls the simulator's state and the demo inbox
// and renders them. Plain DOM, no framework, no build step; every value is
// inserted as text, never as HTML.
'use strict';

const POLL_MS = 1000;
let lastState = '';
let lastInbox = '';

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') node.className = v;
    else if (k.startsWith('data-')) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function showError(msg) {
  const p = document.getElementById('error');
  p.textContent = msg || '';
  p.hidden = !msg;
}

function when(iso) {
  const d = new Date(iso);
  return isNaN(d) ? '' : d.toLocaleTimeString();
}

async function post(url, body) {
  const init = { method: 'POST', headers: {} };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(url, init);
  const text = await resp.text();
  let data = {};
  try { data = JSON.parse(text); } catch (e) { /* not JSON */ }
  if (!resp.ok) throw new Error(data.error || `${resp.status} ${resp.statusText}`);
  return data;
}

function deliveryLine(d) {
  const last = d.attempts.length ? d.attempts[d.attempts.length - 1] : null;
  let text = `${d.callback}: ${d.state}`;
  if (last) text += ` (attempt ${d.attempts.length}: ${last.status ? 'HTTP ' + last.status : last.error})`;
  if (d.nextAttemptAt) text += `, next attempt ${when(d.nextAttemptAt)}`;
  return el('li', { class: 'delivery ' + d.state }, text);
}

// ledgerLine shows what the gateway's payments ledger says about a QR,
// beside the simulator's own status: a QR made on this page never went
// through modulus_api, so the ledger does not have it.
function ledgerLine(q, ledgerState) {
  if (!ledgerState) return null;
  if (ledgerState === 'unavailable') return el('div', { class: 'ledger muted' }, 'gateway ledger: unavailable');
  if (!q.ledger) return el('div', { class: 'ledger muted' }, 'gateway ledger: not recorded (not created through modulus_api)');
  const flags = q.ledger.flags && q.ledger.flags.length ? ` · flagged ${q.ledger.flags.join(', ')}` : '';
  return el('div', { class: 'ledger' }, 'gateway ledger: ',
    el('span', { class: 'status ' + q.ledger.status.toUpperCase(), 'data-ledger-status': q.ledger.status }, q.ledger.status),
    el('span', { class: flags ? 'flags' : '' }, flags));
}

function renderQR(q, ledgerState) {
  const pending = q.status === 'PENDING';
  const pay = el('button', { class: 'pay', type: 'button', disabled: !pending }, 'Pay');
  const decline = el('button', { class: 'decline', type: 'button', disabled: !pending }, 'Decline');
  pay.addEventListener('click', () => act(q.id, 'pay', pay, decline));
  decline.addEventListener('click', () => act(q.id, 'decline', pay, decline));
  const deliveries = el('ul', { class: 'deliveries' });
  for (const ev of q.events) {
    if (ev.deliveries.length === 0) {
      deliveries.append(el('li', {}, `${ev.action}: no webhook registered for this action`));
    }
    for (const d of ev.deliveries) deliveries.append(deliveryLine(d));
  }
  return el('article', { class: 'qr', 'data-id': q.id, 'data-reference': q.reference },
    el('img', { class: 'qr-image', src: q.image, alt: `QR Ph for ${q.reference}`, width: 200, height: 200 }),
    el('div', { class: 'amount' }, `${q.currency} ${q.amount}`),
    el('div', {}, 'Reference ', el('code', { class: 'ref' }, q.reference), ' ',
      el('span', { class: 'status ' + q.status }, q.status)),
    ledgerLine(q, ledgerState),
    el('div', { class: 'muted' }, 'id ', el('code', {}, q.id), ` · created ${when(q.createdAt)} · expires ${when(q.expiresAt)}`),
    el('div', { class: 'buttons' }, pay, decline),
    deliveries,
    el('details', {}, el('summary', {}, 'QR Ph text (for the simulate API)'), el('pre', {}, q.payload)));
}

async function act(id, what, ...buttons) {
  for (const b of buttons) b.disabled = true;
  try {
    await post(`/sandbox/qr/${encodeURIComponent(id)}/${what}`);
    showError('');
  } catch (e) {
    showError(`${what} failed: ${e.message}`);
  }
  refresh();
}

function renderState(s) {
  const set = s.settings;
  document.getElementById('settings').textContent =
    `rate limit ${set.rateLimit} · QR validity ${set.qrValidity} · webhook retries after ${set.retryIntervals.join(', ') || 'none'}` +
    (set.latency !== '0s' ? ` · latency ${set.latency}` : '') +
    (set.errorRate ? ` · error rate ${set.errorRate}` : '') +
    (set.webhookSource ? ` · webhooks sent from ${set.webhookSource}` : '');
  const qrs = document.getElementById('qrs');
  qrs.replaceChildren(...s.qrs.map((q) => renderQR(q, s.ledger)));
  document.getElementById('no-qrs').hidden = s.qrs.length > 0;
  const table = document.getElementById('webhooks');
  table.tBodies[0].replaceChildren(...s.webhooks.map((h) => el('tr', {},
    el('td', {}, h.webhookAction), el('td', {}, h.webhookStatus), el('td', {}, el('code', {}, h.callbackUrl)),
    el('td', {}, h.activationCode || ''), el('td', {}, el('code', {}, h.id)))));
  table.hidden = s.webhooks.length === 0;
  document.getElementById('no-webhooks').hidden = s.webhooks.length > 0;
}

function renderInbox(entries) {
  const list = document.getElementById('inbox');
  list.replaceChildren(...entries.slice().reverse().map((e) => {
    const b = e.body || {};
    const flags = [];
    if (!e.accepted) flags.push(`refused: signature ${e.signature}`);
    else if (e.signature !== 'unchecked') flags.push(`signature ${e.signature}`);
    if (e.duplicate) flags.push('duplicate');
    return el('li', { class: 'entry', 'data-reference': b.referenceNumber || '', 'data-action': b.action || '' },
      el('strong', { class: 'action' }, b.action || '(no action)'), ' ',
      el('code', { class: 'ref' }, b.referenceNumber || ''), ' ',
      typeof b.amount === 'number' ? `${b.currency || ''} ${(b.amount / 100).toFixed(2)}` : '',
      el('div', { class: 'meta' + (e.accepted ? '' : ' refused') },
        `received ${when(e.receivedAt)} · Webhook-Id ${e.webhookId} · attempt ${e.webhookAttempt || '?'}` +
        (e.activationCode ? ` · activation code ${e.activationCode}` : '') +
        (flags.length ? ' · ' + flags.join(' · ') : '')),
      el('pre', {}, JSON.stringify(b, null, 2)));
  }));
  document.getElementById('no-inbox').hidden = entries.length > 0;
}

async function refresh() {
  try {
    const [state, inbox] = await Promise.all([
      fetch('/sandbox/api/state').then((r) => r.text()),
      fetch('/sandbox/inbox').then((r) => r.text()),
    ]);
    // Re-render only on change, so a button does not move under the cursor.
    if (state !== lastState) { lastState = state; renderState(JSON.parse(state)); }
    if (inbox !== lastInbox) { lastInbox = inbox; renderInbox(JSON.parse(inbox).entries); }
  } catch (e) {
    showError(`cannot reach the simulator: ${e.message}`);
  }
}

document.addEventListener('DOMContentLoaded', () => {
  const form = document.getElementById('create-form');
  form.merchantReferenceNumber.value = 'ORDER-' + Math.floor(Date.now() / 1000);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      await post('/sandbox/qr', {
        amount: form.amount.value,
        currency: 'PHP',
        merchantReferenceNumber: form.merchantReferenceNumber.value,
      });
      form.merchantReferenceNumber.value = 'ORDER-' + Math.floor(Date.now() / 1000);
      showError('');
    } catch (e) {
      showError(`create failed: ${e.message}`);
    }
    refresh();
  });
  document.getElementById('clear-inbox').addEventListener('click', async () => {
    await fetch('/sandbox/inbox', { method: 'DELETE' });
    refresh();
  });
  refresh();
  setInterval(refresh, POLL_MS);
});
