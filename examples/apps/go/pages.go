package main

import (
	"errors"
	"html/template"
	"log"
	"net/http"
	"strings"
	"time"
)

// index is GET /: the checkout form and the orders.
func (a *app) index(w http.ResponseWriter, r *http.Request) {
	render(w, http.StatusOK, indexPage, a.orders.list())
}

// createOrder is POST /orders (the form): it asks the sidecar for a QR and
// shows the order.
func (a *app) createOrder(w http.ResponseWriter, r *http.Request) {
	amount := strings.TrimSpace(r.FormValue("amount"))
	ref := newReference()
	q, err := a.sidecar.createQR(amount, "PHP", ref)
	if err != nil {
		log.Printf("create %s: %v", ref, err)
		status := http.StatusBadGateway
		var se *sidecarError
		if errors.As(err, &se) && se.Status == http.StatusBadRequest {
			status = http.StatusBadRequest // the amount was refused
		}
		render(w, status, errorPage, err.Error())
		return
	}
	a.orders.add(&order{
		Reference: ref, Amount: amount, Currency: "PHP", Status: pending,
		TransactionID: q.ID, ExpiresAt: q.ExpiresAt, QRBody: q.QRBody, CreatedAt: time.Now(),
		WebhookIDs: []string{},
	})
	log.Printf("order %s: QR %s", ref, q.ID)
	http.Redirect(w, r, "/orders/"+ref, http.StatusSeeOther)
}

// showOrder is GET /orders/{ref} (the page with the QR) and
// GET /orders/{ref}.json (the order as JSON).
func (a *app) showOrder(w http.ResponseWriter, r *http.Request) {
	ref, asJSON := strings.CutSuffix(r.PathValue("ref"), ".json")
	o, ok := a.orders.get(ref)
	switch {
	case !ok && asJSON:
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "no such order"})
	case !ok:
		render(w, http.StatusNotFound, errorPage, "no such order")
	case asJSON:
		writeJSON(w, http.StatusOK, o)
	default:
		render(w, http.StatusOK, orderPage, o)
	}
}

func render(w http.ResponseWriter, status int, t *template.Template, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := t.Execute(w, data); err != nil {
		log.Printf("render: %v", err)
	}
}

const head = `<!doctype html><meta charset="utf-8"><title>Checkout (Go)</title>
<style>body{font-family:sans-serif;max-width:40em;margin:2em auto}td,th{padding:.2em .8em;text-align:left}</style>`

var indexPage = template.Must(template.New("index").Parse(head + `
<h1>Checkout</h1>
<form method="post" action="/orders">
<label>Amount (PHP) <input name="amount" value="500.00" pattern="[0-9]+\.[0-9]{2}" required></label>
<button>Pay with QR Ph</button>
</form>
<h2>Orders</h2>
<table><tr><th>reference</th><th>amount</th><th>status</th></tr>
{{range .}}<tr><td><a href="/orders/{{.Reference}}">{{.Reference}}</a></td><td>{{.Amount}} {{.Currency}}</td><td>{{.Status}}</td></tr>
{{else}}<tr><td colspan="3">none yet</td></tr>{{end}}
</table>`))

var orderPage = template.Must(template.New("order").Parse(head + `
{{if eq .Status "PENDING"}}<meta http-equiv="refresh" content="2">{{end}}
<h1>Order {{.Reference}}</h1>
<p>{{.Amount}} {{.Currency}}: <strong id="status">{{.Status}}</strong></p>
{{if eq .Status "PENDING"}}<p>Scan to pay (valid until {{.ExpiresAt}}). In the quickstart, pay it on the
simulator's page, <a href="http://127.0.0.1:2091/sandbox/">http://127.0.0.1:2091/sandbox/</a>.</p>
<img alt="QR Ph code" src="data:image/png;base64,{{.QRBody}}">{{end}}
<p><a href="/">Back</a></p>`))

var errorPage = template.Must(template.New("error").Parse(head + `
<h1>Something went wrong</h1><p>{{.}}</p><p><a href="/">Back</a></p>`))
