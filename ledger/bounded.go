package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/qrphgate/qrphgate/proxy"
)

// The hot paths (Record, as a QR is answered; Reconcile, as a webhook is
// acknowledged) must never wait on the ledger for long, even for a store
// that ignores its context (a hung disk under a file ledger's fsync, a
// Redis connection stuck below the client's deadlines). bounded runs such a
// call in a goroutine of its own and waits for it at most the call bound:
// the shorter of the caller's deadline and Config.CallTimeout. A call not
// done by then is abandoned: its result is dropped, and it is logged and
// counted as a failure once, now. An abandoned call holds a slot until it
// returns; with maxAbandoned calls abandoned at once the store is hanging,
// and new calls fail at once instead of adding goroutines.

// DefaultCallTimeout is Config.CallTimeout's default: the outbound and
// inbound sides give a ledger call 2 s as well.
const DefaultCallTimeout = 2 * time.Second

// maxAbandoned bounds the calls left running against a hanging store.
const maxAbandoned = 256

// errAbandoned says that a call was given up on.
var errAbandoned = errors.New("ledger: the store did not answer in time; the call was abandoned")

// errHanging says that a call was not started.
var errHanging = errors.New("ledger: the store is not answering (calls abandoned); the call was not made")

// bounded runs f under the call bound (see above). op names the call in
// the failure's log line and count (StoreFailed); fields go with it.
func bounded[T any](l *Ledger, ctx context.Context, op string, fields []zap.Field, f func(context.Context) (T, error)) (T, error) {
	var zero T
	if l.abandoned.Load() >= maxAbandoned {
		l.failed(op, errHanging, fields...)
		return zero, errHanging
	}
	ctx, cancel := context.WithTimeout(ctx, l.callTimeout)
	defer cancel()
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := f(ctx)
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			l.failed(op, r.err, fields...)
		}
		return r.v, r.err
	case <-ctx.Done():
	}
	select {
	case r := <-done: // it ended with the context, as a store should
		if r.err != nil {
			l.failed(op, r.err, fields...)
		}
		return r.v, r.err
	default:
	}
	l.abandoned.Add(1)
	go func() {
		r := <-done
		l.abandoned.Add(-1)
		if r.err != nil {
			l.log.Debug("an abandoned ledger call ended", append(fields, zap.String("op", op), proxy.LogString("error", r.err.Error()))...)
		}
	}()
	err := fmt.Errorf("%w (%w)", errAbandoned, ctx.Err())
	l.failed(op, err, fields...)
	return zero, err
}
