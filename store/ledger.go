package store

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Errors of a Ledger.
var (
	// ErrRecordNotFound: no ledger record has the id.
	ErrRecordNotFound = errors.New("ledger: no such record")
	// ErrRecordExists: Insert was given an id that is already stored.
	ErrRecordExists = errors.New("ledger: a record with this id is already stored")
	// ErrConflict: Update was given a record whose version is no longer
	// the stored one (someone changed it since it was read).
	ErrConflict = errors.New("ledger: the record changed since it was read")
	// ErrBadCursor: a LedgerQuery cursor that no List returned.
	ErrBadCursor = errors.New("ledger: invalid cursor")
)

// LedgerRecord is one entry of the payments ledger as a back end keeps it:
// the fields the back end indexes, and the entry itself (Data), which only
// the ledger engine reads.
type LedgerRecord struct {
	// ID is the transaction id: 1 to 256 bytes, unique.
	ID string
	// Merchant and Reference are the activation code and the merchant's
	// reference; the back end finds records by Reference (any merchant).
	// Both are fixed at Insert.
	Merchant  string
	Reference string
	// Status is indexed: counts, filtered listings and due records are by
	// status. 1 to 32 bytes.
	Status string
	// Created orders listings (newest first) and retention; fixed at
	// Insert, and not before 1970.
	Created time.Time
	// Due, when set, lists the record in Due(Status, ...) once it is at
	// or before the time asked for; zero takes it out.
	Due time.Time
	// Version is the back end's: 1 after Insert, one more after each
	// Update. Update succeeds only with the version last read.
	Version int64
	// Data is the entry as the ledger engine encodes it.
	Data []byte
}

// LedgerQuery selects records for List. Zero fields do not filter.
type LedgerQuery struct {
	// Status and Reference must match exactly.
	Status    string
	Reference string
	// Since (inclusive) and Until (exclusive) bound Created.
	Since, Until time.Time
	// Limit is the page size (at least 1).
	Limit int
	// Cursor continues a listing where the page that returned it ended.
	Cursor string
}

// LedgerPage is one page of a listing, newest record first.
type LedgerPage struct {
	Records []LedgerRecord
	// Next is the cursor of the following page; "" on the last page.
	Next string
}

// Ledger stores the payments ledger: one record per QR (or per result
// that matched none), indexed for the lookups the engine makes. Every
// change is atomic (on Redis, one script per change), so that two replicas
// racing to change a record never both succeed: Update is a compare and
// swap on Version. Implementations are safe for concurrent use.
type Ledger interface {
	// Insert stores a new record (its Version is ignored) and returns it
	// as stored, at version 1. An existing id is ErrRecordExists.
	Insert(ctx context.Context, rec LedgerRecord) (LedgerRecord, error)
	// Get returns the record with id, or ErrRecordNotFound.
	Get(ctx context.Context, id string) (LedgerRecord, error)
	// GetMany returns the records of ids that exist, in the order of ids.
	GetMany(ctx context.Context, ids []string) ([]LedgerRecord, error)
	// ByReference returns up to max records with reference ref (of any
	// merchant), newest first.
	ByReference(ctx context.Context, ref string, max int) ([]LedgerRecord, error)
	// Update replaces the Status, Due and Data of the record rec.ID if its
	// stored version is still rec.Version (else ErrConflict; a deleted
	// record is ErrRecordNotFound), and returns it at its new version.
	Update(ctx context.Context, rec LedgerRecord) (LedgerRecord, error)
	// Due returns up to max records of status whose Due is set and at or
	// before before, earliest due first.
	Due(ctx context.Context, status string, before time.Time, max int) ([]LedgerRecord, error)
	// List returns a page of the records q selects, newest Created first
	// (ties in id order, descending).
	List(ctx context.Context, q LedgerQuery) (LedgerPage, error)
	// Counts returns the number of records by status (statuses with none
	// left out).
	Counts(ctx context.Context) (map[string]int, error)
	// Delete removes the record id, with every trace of it in the
	// indexes, if its stored version is still version (else ErrConflict;
	// a missing record is ErrRecordNotFound).
	Delete(ctx context.Context, id string, version int64) error
	// Purge deletes up to max records created before before, oldest
	// first, and returns how many it deleted.
	Purge(ctx context.Context, before time.Time, max int) (int, error)
	// Close releases the back end (not a Redis connection it was given).
	Close() error
}

// Limits of a record's indexed fields.
const (
	maxLedgerID     = 256
	maxLedgerStatus = 32
	maxLedgerRef    = 256
)

// checkLedgerRecord refuses a record a back end cannot index.
func checkLedgerRecord(rec LedgerRecord) error {
	switch {
	case rec.ID == "" || len(rec.ID) > maxLedgerID:
		return fmt.Errorf("ledger: id must be 1 to %d bytes", maxLedgerID)
	case rec.Status == "" || len(rec.Status) > maxLedgerStatus:
		return fmt.Errorf("ledger: status must be 1 to %d bytes", maxLedgerStatus)
	case len(rec.Reference) > maxLedgerRef || len(rec.Merchant) > maxLedgerRef:
		return fmt.Errorf("ledger: reference and merchant must be at most %d bytes", maxLedgerRef)
	case rec.Created.Before(time.Unix(0, 0)):
		return errors.New("ledger: created must be set (and not before 1970)")
	}
	return nil
}

// ledgerMember is a record's position in the listing order: Created as 19
// zero-padded digits of Unix nanoseconds, a colon, the id. Plain byte order
// of members is the order of (Created, ID), so a Redis sorted set of them
// (all scores 0) sorts by creation, and a cursor is just a member.
func ledgerMember(created time.Time, id string) string {
	return ledgerTimeBound(created) + ":" + id
}

// ledgerTimeBound is the member prefix of time t: every member created at
// or after t sorts at or after it, every one created before, before it.
func ledgerTimeBound(t time.Time) string {
	n := max(t.UnixNano(), 0)
	s := strconv.FormatInt(n, 10)
	const width = 19
	if len(s) < width {
		s = "0000000000000000000"[:width-len(s)] + s
	}
	return s
}

// memberID returns the id part of a member.
func memberID(member string) string {
	if len(member) < 20 {
		return ""
	}
	return member[20:]
}

// encodeCursor and decodeCursor make a member opaque for callers.
func encodeCursor(member string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(member))
}

func decodeCursor(c string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) < 21 || b[19] != ':' {
		return "", ErrBadCursor
	}
	for _, d := range b[:19] {
		if d < '0' || d > '9' {
			return "", ErrBadCursor
		}
	}
	return string(b), nil
}

// ledgerBounds turns a query's time range and cursor into member bounds:
// selected members m satisfy lo <= m < hi ("" means unbounded).
func ledgerBounds(q LedgerQuery) (lo, hi string, err error) {
	if !q.Since.IsZero() {
		lo = ledgerTimeBound(q.Since)
	}
	if !q.Until.IsZero() {
		hi = ledgerTimeBound(q.Until)
	}
	if q.Cursor != "" {
		c, err := decodeCursor(q.Cursor)
		if err != nil {
			return "", "", err
		}
		if hi == "" || c < hi {
			hi = c
		}
	}
	return lo, hi, nil
}

// checkLedgerQuery validates a query's limit.
func checkLedgerQuery(q LedgerQuery) error {
	if q.Limit < 1 {
		return errors.New("ledger: a listing needs a limit of at least 1")
	}
	return nil
}
