package outbound

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"

	"github.com/qrphgate/qrphgate/proxy"
)

// merchantAllow applies merchant_rate_limit to one QR creation of
// merchant: a cap inside the account's budget, so that one merchant of a
// platform cannot use up the budget the others share. It runs before a rate
// slot is taken, so a refused call costs the budget nothing. The counter
// fails open: a limiter outage never stops a payment.
func (o *Handler) merchantAllow(ctx context.Context, merchant string) *proxy.Error {
	if o.cfg.MerchantLimiter == nil || o.cfg.MerchantRateLimit.Requests <= 0 {
		return nil
	}
	d := o.cfg.MerchantLimiter.Allow(ctx, "merchant_rate_limit", o.merchantSubject(merchant), o.cfg.MerchantRateLimit)
	if d.FailedOpen {
		o.obs.LimiterFailedOpen()
	}
	if d.Allowed {
		return nil
	}
	return &proxy.Error{Status: http.StatusTooManyRequests, Code: CodeMerchantRateLimited, Field: "activationCode",
		Message:    "this merchant reached its merchant_rate_limit (" + o.cfg.MerchantRateLimit.String() + "); retry later",
		RetryAfter: d.RetryAfter}
}

// merchantSubject names a merchant for its counter: per environment and
// account (replicas with the same credentials share it through Redis), and
// the activation code only as a digest.
func (o *Handler) merchantSubject(merchant string) string {
	sum := sha256.Sum256([]byte(merchant))
	return o.env.Name + ":" + o.account + ":" + hex.EncodeToString(sum[:8])
}
