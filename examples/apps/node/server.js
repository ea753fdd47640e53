// qrphgate's example app in Node.js (Express): a checkout page that creates
// an order's QR Ph through the qrphgate sidecar and shows it, and a webhook
// route that verifies the sidecar's Webhook-Signature with the official
// standardwebhooks library and marks the order paid or declined.
// Orders live in memory: they are gone when the app stops.
import crypto from 'node:crypto';
import express from 'express';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';

// The defaults match qrphgate's quickstart (examples/quickstart/Caddyfile).
const SIDECAR = (process.env.QRPHGATE_URL || 'http://127.0.0.1:2090').replace(/\/+$/, '');
const PORT = Number(process.env.PORT || 3000);
// The quickstart's obviously fake signing secret
// (examples/quickstart/fake-secrets/sign_secret). Never a real one.
const SECRET = process.env.QRPHGATE_SIGNING_SECRET || 'TEST-ONLY-fake-signing-secret-do-not-use';

// A whsec_ secret is base64 (the library's default); any other string is
// used as its bytes, as qrphgate's sign_secret does. verify() also refuses
// timestamps more than 5 minutes off.
const webhook = SECRET.startsWith('whsec_')
  ? new Webhook(SECRET)
  : new Webhook(Buffer.from(SECRET, 'utf8'), { format: 'raw' });

// The in-memory store: orders by reference, and every Webhook-Id already
// applied. A real app keeps both in its database and records the id in the
// same transaction as the order's change.
const orders = new Map();
const seenWebhookIds = new Set();

const app = express();

// GET /: the checkout form and the orders.
app.get('/', (req, res) => {
  const rows = [...orders.values()].reverse().map((o) =>
    `<tr><td><a href="/orders/${esc(o.reference)}">${esc(o.reference)}</a></td><td>${esc(o.amount)} ${esc(o.currency)}</td><td>${esc(o.status)}</td></tr>`);
  res.type('html').send(page(`<h1>Checkout</h1>
<form method="post" action="/orders">
<label>Amount (PHP) <input name="amount" value="500.00" pattern="[0-9]+\\.[0-9]{2}" required></label>
<button>Pay with QR Ph</button>
</form>
<h2>Orders</h2>
<table><tr><th>reference</th><th>amount</th><th>status</th></tr>
${rows.join('\n') || '<tr><td colspan="3">none yet</td></tr>'}
</table>`));
});

// POST /orders (the form): ask the sidecar for a QR, then show the order.
app.post('/orders', express.urlencoded({ extended: false }), async (req, res) => {
  const amount = String(req.body?.amount ?? '').trim();
  const reference = 'ORDER-' + crypto.randomBytes(8).toString('hex');
  let answer;
  try {
    answer = await fetch(`${SIDECAR}/v1/pay/qr`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ amount, currency: 'PHP', merchantReferenceNumber: reference }),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (err) {
    console.error(`create ${reference}: the sidecar cannot be reached: ${err.message}`);
    return res.status(502).type('html').send(errorPage(`the sidecar cannot be reached: ${err.message}`));
  }
  const body = await answer.json().catch(() => ({}));
  if (!answer.ok || !body.id || !body.qrBody) {
    const e = body.error || {};
    const message = `the sidecar answered ${answer.status} ${e.code || ''}: ${e.message || 'no id or qrBody'}`;
    console.error(`create ${reference}: ${message}`);
    return res.status(answer.status === 400 ? 400 : 502).type('html').send(errorPage(message));
  }
  orders.set(reference, {
    reference, amount, currency: 'PHP', status: 'PENDING', transactionId: body.id,
    expiresAt: body.expiresAt, createdAt: new Date().toISOString(), webhookIds: [], qrBody: body.qrBody,
  });
  console.log(`order ${reference}: QR ${body.id}`);
  res.redirect(303, `/orders/${reference}`);
});

// GET /orders/:ref (the page with the QR) and /orders/:ref.json (the order).
app.get('/orders/:file', (req, res) => {
  const asJSON = req.params.file.endsWith('.json');
  const o = orders.get(asJSON ? req.params.file.slice(0, -5) : req.params.file);
  if (asJSON) {
    if (!o) return res.status(404).json({ error: 'no such order' });
    const { qrBody, ...rest } = o;
    return res.json(rest);
  }
  if (!o) return res.status(404).type('html').send(errorPage('no such order'));
  const pendingPart = o.status !== 'PENDING' ? '' : `<p>Scan to pay (valid until ${esc(o.expiresAt)}). In the quickstart, pay it on the
simulator's page, <a href="http://127.0.0.1:2091/sandbox/">http://127.0.0.1:2091/sandbox/</a>.</p>
<img alt="QR Ph code" src="data:image/png;base64,${esc(o.qrBody)}">`;
  res.type('html').send(page(`${o.status === 'PENDING' ? '<meta http-equiv="refresh" content="2">' : ''}
<h1>Order ${esc(o.reference)}</h1>
<p>${esc(o.amount)} ${esc(o.currency)}: <strong id="status">${esc(o.status)}</strong></p>
${pendingPart}
<p><a href="/">Back</a></p>`));
});

// POST /payments/modulus, qrphgate's forward_to. express.raw keeps the body
// as the exact bytes that were signed (never verify re-serialized JSON);
// 64kb is qrphgate's own max_body. The signature is checked before anything
// else, and only then is the Webhook-Id recorded, so a forged delivery
// cannot burn a real id.
app.post('/payments/modulus', express.raw({ type: () => true, limit: '64kb' }), (req, res) => {
  const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
  let event;
  try {
    event = webhook.verify(raw, req.headers);
  } catch (err) {
    if (err instanceof WebhookVerificationError) {
      console.error(`webhook refused: ${err.message}`);
      return res.status(401).json({ error: 'invalid signature' });
    }
    return res.status(400).json({ error: 'body is not a JSON object' }); // signed, but not JSON
  }
  if (!event || typeof event !== 'object' || Array.isArray(event)) {
    return res.status(400).json({ error: 'body is not a JSON object' });
  }
  const id = req.get('webhook-id');
  if (seenWebhookIds.has(id)) {
    console.log(`webhook ${id}: already applied`);
    return res.json({ received: true, duplicate: true });
  }
  seenWebhookIds.add(id);
  const reference = event.referenceNumber || event.merchantReferenceNumber;
  const o = orders.get(reference);
  if (!o) {
    // Acknowledge: retrying would not make the order appear.
    console.log(`webhook ${id}: ${event.action} for unknown order ${JSON.stringify(reference)}`);
    return res.json({ received: true, unknownOrder: true });
  }
  o.webhookIds.push(id);
  // A paid order stays paid: deliveries can arrive out of order.
  if (event.action === 'QRPH_SUCCESS') o.status = 'PAID';
  else if (event.action === 'QRPH_DECLINED' && o.status !== 'PAID') o.status = 'DECLINED';
  console.log(`webhook ${id}: ${event.action} for order ${reference}`);
  res.json({ received: true });
});

// express.raw answers 413 above 64kb; keep every other error short.
app.use((err, req, res, next) => {
  res.status(err.status || 500).json({ error: err.status === 413 ? 'body too large' : 'bad request' });
});

function esc(s) {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

function page(body) {
  return `<!doctype html><meta charset="utf-8"><title>Checkout (Node.js)</title>
<style>body{font-family:sans-serif;max-width:40em;margin:2em auto}td,th{padding:.2em .8em;text-align:left}</style>
${body}`;
}

function errorPage(message) {
  return page(`<h1>Something went wrong</h1><p>${esc(message)}</p><p><a href="/">Back</a></p>`);
}

app.listen(PORT, '127.0.0.1', () => {
  console.log(`checkout on http://127.0.0.1:${PORT}/ (sidecar ${SIDECAR}, webhooks on /payments/modulus)`);
});
