package outbound

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/qrphgate/qrphgate/policy"
	"github.com/qrphgate/qrphgate/proxy"
)

// Ledger is the payments ledger as modulus_api sees it; caddymodule wires
// the ledger package to it. It records every QR created and answers the
// status calls without an upstream call. Its methods log and count their
// own failures: the gateway goes on without it.
type Ledger interface {
	// RecordQR adds a created QR as pending.
	RecordQR(ctx context.Context, qr CreatedQR) error
	// QRStatus returns the status document (JSON) of the QR q names, or
	// ErrQRNotFound.
	QRStatus(ctx context.Context, q StatusQuery) ([]byte, error)
}

// CreatedQR is a QR the provider created, as the app got it.
type CreatedQR struct {
	ID             string
	ActivationCode string
	Reference      string
	Amount         policy.Centavos
	Currency       string
	CreatedAt      time.Time
	ExpiresAt      time.Time
}

// StatusQuery names a QR: by ID, or else the newest of ActivationCode's
// QRs with Reference.
type StatusQuery struct {
	ID                        string
	ActivationCode, Reference string
}

// ErrQRNotFound is QRStatus's answer for a QR the ledger does not have.
var ErrQRNotFound = errors.New("outbound: no such QR in the ledger")

// CodeLedgerUnavailable is the status calls' answer when the ledger's
// store cannot be reached.
const CodeLedgerUnavailable = "ledger_unavailable"

// maxStatusID bounds an id the status call looks up: the provider's ids
// are checked to 128 characters (createUpstream), and so are a result's.
const maxStatusID = 128

// ledgerTimeout bounds one ledger call on the create path, so a slow store
// delays a QR by little; the QR is answered whatever the ledger says.
const ledgerTimeout = 2 * time.Second

// recordQR adds a created QR to the ledger before it is answered, so the
// app's first status call finds it.
func (o *Handler) recordQR(ctx context.Context, id, expiresAt string, req policy.CreateQR, amount policy.Centavos) {
	if o.cfg.Ledger == nil {
		return
	}
	exp, _ := time.Parse(time.RFC3339, expiresAt) // ours, from createUpstream
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ledgerTimeout)
	defer cancel()
	_ = o.cfg.Ledger.RecordQR(ctx, CreatedQR{
		ID: id, ActivationCode: req.ActivationCode, Reference: req.MerchantReferenceNumber,
		Amount: amount, Currency: req.Currency, CreatedAt: o.clock.Now(), ExpiresAt: exp,
	})
}

// statusPrefix is the path of GET /v1/pay/qr/{id}.
const statusPrefix = "/v1/pay/qr/"

// serveQRStatus is GET /v1/pay/qr/{id} (id non-empty) and GET
// /v1/pay/qr?merchantReferenceNumber=R[&activationCode=C]: a QR's status
// from the ledger, with no upstream call.
func (o *Handler) serveQRStatus(w http.ResponseWriter, r *http.Request, id string) {
	const endpoint = "qr_status"
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		allow := "GET"
		if id == "" {
			allow = "GET, POST"
		}
		w.Header().Set("Allow", allow)
		o.fail(w, r, endpoint, newErr(http.StatusMethodNotAllowed, proxy.CodeMethodNotAllowed, "", "use GET"))
		return
	}
	q := StatusQuery{ID: id}
	if id == "" {
		v := r.URL.Query()
		q.Reference = v.Get("merchantReferenceNumber")
		switch {
		case q.Reference == "":
			o.fail(w, r, endpoint, newErr(http.StatusBadRequest, policy.CodeMissingField, "merchantReferenceNumber",
				"is required: GET /v1/pay/qr/{id}, or /v1/pay/qr?merchantReferenceNumber=R[&activationCode=C]"))
			return
		case !isWord(q.Reference, "-_.", 128):
			o.fail(w, r, endpoint, newErr(http.StatusBadRequest, policy.CodeInvalidReference, "merchantReferenceNumber", "is not a reference"))
			return
		}
		var e *proxy.Error
		if q.ActivationCode, e = o.merchant(v.Get("activationCode")); e != nil {
			o.fail(w, r, endpoint, e)
			return
		}
	} else if !isWord(id, "-_.", maxStatusID) {
		o.fail(w, r, endpoint, newErr(http.StatusNotFound, CodeNotFound, "", "no QR with this id"))
		return
	}
	if o.cfg.Ledger == nil { // an engine built without one (a Caddy config always has one)
		o.fail(w, r, endpoint, newErr(http.StatusNotFound, CodeNotFound, "", "this gateway keeps no payments ledger"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), ledgerTimeout)
	defer cancel()
	doc, err := o.cfg.Ledger.QRStatus(ctx, q)
	switch {
	case errors.Is(err, ErrQRNotFound):
		o.fail(w, r, endpoint, newErr(http.StatusNotFound, CodeNotFound, "", "no QR with this id or reference in the ledger"),
			zap.String("reference", q.Reference))
		return
	case err != nil:
		o.fail(w, r, endpoint, &proxy.Error{Status: http.StatusServiceUnavailable, Code: CodeLedgerUnavailable,
			Message: "the payments ledger cannot be reached; retry later", RetryAfter: time.Second, Err: err})
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(doc)+1))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(doc)
		_, _ = w.Write([]byte{'\n'})
	}
	o.obs.Response(endpoint, http.StatusOK, "")
	if ce := o.log.Check(zap.DebugLevel, "QR status answered"); ce != nil {
		ce.Write(zap.String("endpoint", endpoint), zap.String("transaction_id", id), zap.String("reference", q.Reference))
	}
}

// statusID returns the {id} of GET /v1/pay/qr/{id}, or "" for another path.
func statusID(path string) (string, bool) {
	id, ok := strings.CutPrefix(path, statusPrefix)
	return id, ok && id != ""
}
