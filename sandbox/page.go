package sandbox

import (
	"context"
	"embed"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/qrphgate/qrphgate/store"
)

// web holds the page and its assets: plain HTML, CSS and JavaScript, no
// build step and nothing fetched from elsewhere.
//
//go:embed web
var web embed.FS

// pageCSP allows the page's own script, style, images and API calls, and
// nothing else.
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func (s *Simulator) page(w http.ResponseWriter, r *http.Request) {
	b, err := web.ReadFile("web/index.html")
	if err != nil {
		http.Error(w, "page missing from the build", http.StatusInternalServerError)
		return
	}
	pageHeaders(w, "text/html; charset=utf-8")
	_, _ = w.Write(b)
}

func (s *Simulator) asset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	b, err := fs.ReadFile(web, "web/"+name)
	if err != nil || name == "index.html" {
		http.NotFound(w, r)
		return
	}
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	pageHeaders(w, ct)
	_, _ = w.Write(b)
}

func pageHeaders(w http.ResponseWriter, contentType string) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
}

// qrImage is GET /sandbox/qr/{id}.png: the PNG create-QR returned.
func (s *Simulator) qrImage(w http.ResponseWriter, r *http.Request) {
	id, ok := strings.CutSuffix(r.PathValue("file"), ".png")
	var img []byte
	if ok {
		s.store.mu.Lock()
		if q := s.store.qrs[id]; q != nil {
			img = q.PNG
		}
		s.store.mu.Unlock()
	}
	if img == nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "private, max-age=3600, immutable")
	_, _ = w.Write(img)
}

// QRView is a created QR as the page's state lists it.
type QRView struct {
	ID        string      `json:"id"`
	Reference string      `json:"reference"`
	Amount    string      `json:"amount"`
	Currency  string      `json:"currency"`
	Status    string      `json:"status"`
	CreatedAt time.Time   `json:"createdAt"`
	ExpiresAt time.Time   `json:"expiresAt"`
	Image     string      `json:"image"`
	Payload   string      `json:"payload"`
	Events    []EventView `json:"events"`
	// Ledger is the gateway's payments ledger's view of the QR; absent
	// when the ledger does not have it (created on this page, not through
	// modulus_api) or there is no ledger.
	Ledger *LedgerView `json:"ledger,omitempty"`
}

// EventView is a simulated outcome and its deliveries.
type EventView struct {
	ID         string         `json:"id"`
	Action     string         `json:"action"`
	UseCase    string         `json:"useCase"`
	At         time.Time      `json:"at"`
	Deliveries []DeliveryView `json:"deliveries"`
}

// DeliveryView is one webhook delivery and its attempts.
type DeliveryView struct {
	WebhookID string     `json:"webhookId"`
	Callback  string     `json:"callback"`
	State     string     `json:"state"`
	NextAt    *time.Time `json:"nextAttemptAt,omitempty"`
	Attempts  []Attempt  `json:"attempts"`
}

// Settings are the knobs in force, for the page.
type Settings struct {
	RateLimit      string   `json:"rateLimit"`
	RetryIntervals []string `json:"retryIntervals"`
	Latency        string   `json:"latency"`
	ErrorRate      float64  `json:"errorRate"`
	WebhookSource  string   `json:"webhookSource"`
	InboxSigned    bool     `json:"inboxVerifiesSignatures"`
	QRValidity     string   `json:"qrValidity"`
}

// State is everything the page shows except the inbox.
type State struct {
	QRs      []QRView          `json:"qrs"`
	Webhooks []WebhookListItem `json:"webhooks"`
	Settings Settings          `json:"settings"`
	// Ledger is LedgerOK when the QRs carry the ledger's view,
	// LedgerUnavailable when it could not be read, "" without a ledger.
	Ledger string `json:"ledger"`
}

// state is GET /sandbox/api/state.
func (s *Simulator) state(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.State())
}

// State returns the QRs (newest first), the webhooks and the settings,
// and what the gateway's payments ledger says about the QRs.
func (s *Simulator) State() State {
	out := State{Webhooks: s.store.webhookList(), Settings: s.settings(), QRs: s.qrViews()}
	out.Ledger = s.addLedger(out.QRs)
	return out
}

// qrViews lists the QRs, newest first.
func (s *Simulator) qrViews() []QRView {
	st := s.store
	now := s.clk.Now()
	st.mu.Lock()
	defer st.mu.Unlock()
	qrs := make([]QRView, 0, len(st.qrOrder))
	for i := len(st.qrOrder) - 1; i >= 0; i-- {
		q := st.qrs[st.qrOrder[i]]
		v := QRView{
			ID: q.ID, Reference: q.Reference, Amount: q.Amount.String(), Currency: q.Currency,
			Status: q.status(now), CreatedAt: q.CreatedAt, ExpiresAt: q.ExpiresAt,
			Image: "/sandbox/qr/" + q.ID + ".png", Payload: q.Payload, Events: []EventView{},
		}
		for _, ev := range q.Events {
			ew := EventView{ID: ev.ID, Action: ev.Action, UseCase: ev.UseCase, At: ev.At, Deliveries: []DeliveryView{}}
			for _, d := range ev.Deliveries {
				dv := DeliveryView{WebhookID: d.WebhookID, Callback: redactURL(d.URL), State: d.State, Attempts: append([]Attempt{}, d.Attempts...)}
				if d.State == DeliveryPending && len(d.Attempts) > 0 {
					next := d.NextAt
					dv.NextAt = &next
				}
				ew.Deliveries = append(ew.Deliveries, dv)
			}
			v.Events = append(v.Events, ew)
		}
		qrs = append(qrs, v)
	}
	return qrs
}

func (s *Simulator) settings() Settings {
	set := Settings{
		RateLimit: s.rate.String(), Latency: shortDuration(s.cfg.Latency), ErrorRate: s.cfg.ErrorRate,
		WebhookSource: s.WebhookSource(), InboxSigned: s.inboxSigner != nil, QRValidity: shortDuration(s.validity),
		RetryIntervals: []string{},
	}
	for _, d := range s.retries {
		set.RetryIntervals = append(set.RetryIntervals, shortDuration(d))
	}
	return set
}

// shortDuration writes 15m rather than 15m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// Status is a summary for operators (GET /modulus/status).
type Status struct {
	QRs                int    `json:"qrs"`
	Pending            int    `json:"pending"`
	Paid               int    `json:"paid"`
	Declined           int    `json:"declined"`
	Expired            int    `json:"expired"`
	Webhooks           int    `json:"webhooks"`
	DeliveriesInFlight int    `json:"deliveries_in_flight"`
	InboxEntries       int    `json:"inbox_entries"`
	RateLimit          string `json:"rate_limit"`
	QRAPIUsed          int    `json:"qr_api_used"`
	WebhooksAPIUsed    int    `json:"webhooks_api_used"`
	WebhookSource      string `json:"webhook_source,omitempty"`
}

// Status counts what the simulator holds.
func (s *Simulator) Status() Status {
	st := s.store
	now := s.clk.Now()
	st.mu.Lock()
	defer st.mu.Unlock()
	out := Status{
		QRs: len(st.qrs), Webhooks: len(st.webhooks), DeliveriesInFlight: st.inflight, InboxEntries: len(st.inbox),
		RateLimit: s.rate.String(), WebhookSource: s.WebhookSource(),
		QRAPIUsed:       usage(st.budget, "qr", s.rate.Period),
		WebhooksAPIUsed: usage(st.budget, "webhooks", s.rate.Period),
	}
	for _, q := range st.qrs {
		switch q.status(now) {
		case StatusPending:
			out.Pending++
		case StatusPaid:
			out.Paid++
		case StatusDeclined:
			out.Declined++
		case StatusExpired:
			out.Expired++
		}
	}
	return out
}

// usage is how many calls the window named key admitted in the last period.
func usage(b *store.Memory, key string, period time.Duration) int {
	n, _ := b.Usage(context.Background(), key, period) // the memory store never fails
	return n
}
