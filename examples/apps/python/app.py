"""qrphgate's example app in Python (Flask).

A checkout page that creates an order's QR Ph through the qrphgate sidecar
and shows it, and a webhook route that verifies the sidecar's
Webhook-Signature with the standard library (HMAC-SHA256 over
"id.timestamp.body", Standard Webhooks) and marks the order paid or declined.
Orders live in memory: they are gone when the app stops.
"""

import base64
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone

from flask import Flask, abort, jsonify, redirect, render_template_string, request

# The defaults match qrphgate's quickstart (examples/quickstart/Caddyfile).
SIDECAR = os.environ.get("QRPHGATE_URL") or "http://127.0.0.1:2090"
SIDECAR = SIDECAR.rstrip("/")
PORT = int(os.environ.get("PORT") or 3000)
# The quickstart's obviously fake signing secret
# (examples/quickstart/fake-secrets/sign_secret). Never a real one.
SECRET = os.environ.get("QRPHGATE_SIGNING_SECRET") or "TEST-ONLY-fake-signing-secret-do-not-use"

TOLERANCE = 5 * 60  # seconds a Webhook-Timestamp may be off
MAX_BODY = 64 * 1024  # qrphgate's own max_body

app = Flask(__name__)
app.config["MAX_CONTENT_LENGTH"] = MAX_BODY

# The in-memory store: orders by reference, and every Webhook-Id already
# applied. A real app keeps both in its database and records the id in the
# same transaction as the order's change.
orders = {}
seen_webhook_ids = set()
lock = threading.Lock()  # the development server answers in threads


def signing_key(secret):
    """A whsec_ secret is base64; any other string is used as its bytes, as
    qrphgate's sign_secret does."""
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret[len("whsec_"):], validate=True)
        except ValueError:
            raise SystemExit("QRPHGATE_SIGNING_SECRET: the part after whsec_ is not valid base64")
    return secret.encode()


KEY = signing_key(SECRET)


def verify(headers, raw_body):
    """Standard Webhooks: HMAC-SHA256 of "id.timestamp.body" over the RAW
    body bytes, base64, compared in constant time with every space-separated
    "v1," signature; timestamps more than 5 minutes off are refused."""
    msg_id = headers.get("webhook-id", "")
    ts = headers.get("webhook-timestamp", "")
    sig_header = headers.get("webhook-signature", "")
    if not msg_id or not (ts.isascii() and ts.isdigit()) or not sig_header:
        return False
    if abs(time.time() - int(ts)) > TOLERANCE:
        return False
    mac = hmac.new(KEY, f"{msg_id}.{ts}.".encode() + raw_body, hashlib.sha256)
    want = base64.b64encode(mac.digest()).decode()
    return any(
        hmac.compare_digest(s[3:].encode(), want.encode())
        for s in sig_header.split(" ")
        if s.startswith("v1,")
    )


def create_qr(amount, reference):
    """POST /v1/pay/qr on the sidecar: plain JSON, no credentials."""
    body = json.dumps(
        {"amount": amount, "currency": "PHP", "merchantReferenceNumber": reference}
    ).encode()
    req = urllib.request.Request(
        SIDECAR + "/v1/pay/qr", data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return 200, json.load(resp)
    except urllib.error.HTTPError as e:
        try:
            return e.code, json.load(e)
        except ValueError:
            return e.code, {}


HEAD = """<!doctype html><meta charset="utf-8"><title>Checkout (Python)</title>
<style>body{font-family:sans-serif;max-width:40em;margin:2em auto}td,th{padding:.2em .8em;text-align:left}</style>"""

INDEX = HEAD + """
<h1>Checkout</h1>
<form method="post" action="/orders">
<label>Amount (PHP) <input name="amount" value="500.00" pattern="[0-9]+\\.[0-9]{2}" required></label>
<button>Pay with QR Ph</button>
</form>
<h2>Orders</h2>
<table><tr><th>reference</th><th>amount</th><th>status</th></tr>
{% for o in orders %}<tr><td><a href="/orders/{{ o.reference }}">{{ o.reference }}</a></td><td>{{ o.amount }} {{ o.currency }}</td><td>{{ o.status }}</td></tr>
{% else %}<tr><td colspan="3">none yet</td></tr>{% endfor %}
</table>"""

ORDER = HEAD + """
{% if o.status == "PENDING" %}<meta http-equiv="refresh" content="2">{% endif %}
<h1>Order {{ o.reference }}</h1>
<p>{{ o.amount }} {{ o.currency }}: <strong id="status">{{ o.status }}</strong></p>
{% if o.status == "PENDING" %}<p>Scan to pay (valid until {{ o.expiresAt }}). In the quickstart, pay it on the
simulator's page, <a href="http://127.0.0.1:2091/sandbox/">http://127.0.0.1:2091/sandbox/</a>.</p>
<img alt="QR Ph code" src="data:image/png;base64,{{ qr_body }}">{% endif %}
<p><a href="/">Back</a></p>"""

ERROR = HEAD + """
<h1>Something went wrong</h1><p>{{ message }}</p><p><a href="/">Back</a></p>"""


@app.get("/")
def index():
    """The checkout form and the orders."""
    with lock:
        rows = [dict(o) for o in reversed(list(orders.values()))]
    return render_template_string(INDEX, orders=rows)


@app.post("/orders")
def create_order():
    """The form: ask the sidecar for a QR, then show the order."""
    amount = request.form.get("amount", "").strip()
    reference = "ORDER-" + secrets.token_hex(8)
    try:
        status, answer = create_qr(amount, reference)
    except OSError as e:
        app.logger.error("create %s: the sidecar cannot be reached: %s", reference, e)
        return render_template_string(ERROR, message=f"the sidecar cannot be reached: {e}"), 502
    if status != 200 or not answer.get("id") or not answer.get("qrBody"):
        err = answer.get("error") or {}
        message = f"the sidecar answered {status} {err.get('code', '')}: {err.get('message', 'no id or qrBody')}"
        app.logger.error("create %s: %s", reference, message)
        return render_template_string(ERROR, message=message), 400 if status == 400 else 502
    with lock:
        orders[reference] = {
            "reference": reference,
            "amount": amount,
            "currency": "PHP",
            "status": "PENDING",
            "transactionId": answer["id"],
            "expiresAt": answer.get("expiresAt", ""),
            "createdAt": datetime.now(timezone.utc).isoformat(),
            "webhookIds": [],
            "qrBody": answer["qrBody"],
        }
    app.logger.info("order %s: QR %s", reference, answer["id"])
    return redirect("/orders/" + reference, code=303)


@app.get("/orders/<ref>")
def show_order(ref):
    """The page with the QR, or the order as JSON for /orders/<ref>.json."""
    as_json = ref.endswith(".json")
    if as_json:
        ref = ref[: -len(".json")]
    with lock:
        o = orders.get(ref)
        o = dict(o, webhookIds=list(o["webhookIds"])) if o else None
    if o is None:
        if as_json:
            return jsonify(error="no such order"), 404
        return render_template_string(ERROR, message="no such order"), 404
    qr_body = o.pop("qrBody")
    if as_json:
        return jsonify(o)
    return render_template_string(ORDER, o=o, qr_body=qr_body)


@app.post("/payments/modulus")
def webhook():
    """qrphgate's forward_to. The signature is checked on the raw body bytes
    before anything parses them, and only then is the Webhook-Id recorded, so
    a forged delivery cannot burn a real id."""
    raw = request.get_data(cache=False)  # the exact bytes that were signed
    if not verify(request.headers, raw):
        app.logger.warning("webhook refused: bad or missing signature, or stale timestamp")
        return jsonify(error="invalid signature"), 401
    try:
        event = json.loads(raw)
    except ValueError:
        event = None
    if not isinstance(event, dict):
        return jsonify(error="body is not a JSON object"), 400
    msg_id = request.headers["webhook-id"]
    reference = event.get("referenceNumber") or event.get("merchantReferenceNumber")
    action = event.get("action")
    with lock:
        if msg_id in seen_webhook_ids:
            app.logger.info("webhook %s: already applied", msg_id)
            return jsonify(received=True, duplicate=True)
        seen_webhook_ids.add(msg_id)
        o = orders.get(reference) if isinstance(reference, str) else None
        if o is None:
            # Acknowledge: retrying would not make the order appear.
            app.logger.info("webhook %s: %s for unknown order %r", msg_id, action, reference)
            return jsonify(received=True, unknownOrder=True)
        o["webhookIds"].append(msg_id)
        # A paid order stays paid: deliveries can arrive out of order.
        if action == "QRPH_SUCCESS":
            o["status"] = "PAID"
        elif action == "QRPH_DECLINED" and o["status"] != "PAID":
            o["status"] = "DECLINED"
    app.logger.info("webhook %s: %s for order %s", msg_id, action, reference)
    return jsonify(received=True)


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.INFO)
    print(f"checkout on http://127.0.0.1:{PORT}/ (sidecar {SIDECAR}, webhooks on /payments/modulus)", flush=True)
    app.run(host="127.0.0.1", port=PORT, threaded=True)
