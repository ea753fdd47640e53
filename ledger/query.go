package ledger

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/qrphgate/qrphgate/store"
)

// Transaction returns the transaction with id, or ErrNotFound.
func (l *Ledger) Transaction(ctx context.Context, id string) (Transaction, error) {
	rec, err := l.store.Get(ctx, id)
	if errors.Is(err, store.ErrRecordNotFound) {
		return Transaction{}, ErrNotFound
	}
	if err != nil {
		l.obs.StoreFailed("lookup")
		return Transaction{}, err
	}
	return transaction(rec)
}

// ByReference returns the newest transaction of merchant with reference,
// or ErrNotFound.
func (l *Ledger) ByReference(ctx context.Context, merchant, reference string) (Transaction, error) {
	recs, err := l.store.ByReference(ctx, reference, 16)
	if err != nil {
		l.obs.StoreFailed("lookup")
		return Transaction{}, err
	}
	for _, rec := range recs {
		if rec.Merchant == merchant {
			return transaction(rec)
		}
	}
	return Transaction{}, ErrNotFound
}

// Lookup returns the transactions of ids that the ledger has, by id.
func (l *Ledger) Lookup(ctx context.Context, ids []string) (map[string]Transaction, error) {
	recs, err := l.store.GetMany(ctx, ids)
	if err != nil {
		l.obs.StoreFailed("lookup")
		return nil, err
	}
	out := make(map[string]Transaction, len(recs))
	for _, rec := range recs {
		if t, err := transaction(rec); err == nil {
			out[rec.ID] = t
		}
	}
	return out, nil
}

// Query selects transactions for List; zero fields do not filter.
type Query struct {
	// Status is one of Statuses.
	Status string
	// Reference is a merchantReferenceNumber.
	Reference string
	// Since (inclusive) and Until (exclusive) bound the creation time.
	Since, Until time.Time
	// Limit is the page size (at least 1).
	Limit int
	// Cursor is the Next of the previous page.
	Cursor string
}

// Page is one page of a listing, newest first.
type Page struct {
	Transactions []Transaction
	// Next is the cursor of the following page; "" on the last.
	Next string
}

// List returns a page of the transactions q selects, newest first. An
// unknown status or cursor is ErrBadQuery.
func (l *Ledger) List(ctx context.Context, q Query) (Page, error) {
	if q.Status != "" && !slices.Contains(Statuses, q.Status) {
		return Page{}, fmt.Errorf("%w: status must be one of %v", ErrBadQuery, Statuses)
	}
	if q.Limit < 1 {
		return Page{}, fmt.Errorf("%w: limit must be at least 1", ErrBadQuery)
	}
	p, err := l.store.List(ctx, store.LedgerQuery{Status: q.Status, Reference: q.Reference, Since: q.Since, Until: q.Until, Limit: q.Limit, Cursor: q.Cursor})
	if errors.Is(err, store.ErrBadCursor) {
		return Page{}, fmt.Errorf("%w: cursor is not one a listing returned", ErrBadQuery)
	}
	if err != nil {
		l.obs.StoreFailed("lookup")
		return Page{}, err
	}
	out := Page{Next: p.Next, Transactions: make([]Transaction, 0, len(p.Records))}
	for _, rec := range p.Records {
		t, err := transaction(rec)
		if err != nil {
			return Page{}, err
		}
		out.Transactions = append(out.Transactions, t)
	}
	return out, nil
}

// Counts returns the number of transactions by status, every status
// present.
func (l *Ledger) Counts(ctx context.Context) (map[string]int, error) {
	c, err := l.store.Counts(ctx)
	if err != nil {
		l.obs.StoreFailed("lookup")
		return nil, err
	}
	out := make(map[string]int, len(Statuses))
	for _, s := range Statuses {
		out[s] = c[s]
	}
	return out, nil
}
