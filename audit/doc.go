// Package audit writes qrphgate's audit trail: an append-only file of JSON
// lines, one per event worth auditing (a QR created, a webhook accepted,
// refused or seen again, a delivery's outcome, a dead letter, a replay, a
// purge), each carrying the SHA-256 of the line before it, so that editing
// or deleting a line breaks the chain at the next one (Verify names it).
//
// Appending never blocks and never fails the caller: lines queue for one
// writer goroutine, which writes what is queued and fsyncs it as one group
// (see Trail). The file rotates by size; the first line of a new file
// carries the hash of the last line of the previous one, so the chain runs
// across files.
//
// It is plain Go: it imports nothing from Caddy and nothing else of ours
// but the clock.
package audit
