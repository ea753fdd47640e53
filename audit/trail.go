package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/qrphgate/qrphgate/internal/clock"
)

// A line is one JSON object:
//
//	{"seq":12,"time":"2026-01-15T10:30:00.123456789Z","event":"webhook_accepted",...,"prev":"<64 hex digits>"}
//
// seq counts the lines of the trail from 1, across files; prev is the
// SHA-256 (hex) of the previous line's bytes, without its newline, or 64
// zeros on the trail's first line. The event's own fields sit between
// event and prev.

// ZeroHash is the prev of a trail's first line.
var ZeroHash = hex.EncodeToString(make([]byte, sha256.Size))

// Options tune Open; the zero value is the production setting.
type Options struct {
	// MaxBytes rotates the file once it reaches this size: it is renamed
	// <path>.<UTC time> and a new file continues the chain. 64 MiB when
	// zero; never when negative.
	MaxBytes int64

	// Queue bounds the lines waiting for the writer; 4096 when zero. A
	// line that finds it full is dropped and counted, and the next line
	// written records the gap.
	Queue int

	// Clock stamps the lines; clock.Real() when nil.
	Clock clock.Clock

	// Observer receives what happens to lines (metrics); nil: none.
	Observer Observer
}

// Observer receives the trail's outcomes.
type Observer interface {
	// Written reports lines written and fsynced.
	Written(n int)
	// Dropped reports a line dropped: the queue was full, or its write
	// failed (err set).
	Dropped(err error)
	// Rotated reports a rotation to a new file (err set when it failed:
	// the trail goes on in the current file).
	Rotated(err error)
}

// Trail is an open audit trail. Its methods are safe for concurrent use.
type Trail struct {
	path string
	o    Options

	queue chan queued
	done  chan struct{}

	closeMu sync.RWMutex
	closed  bool

	// full counts the lines Append dropped (queue full) since the writer
	// last looked; an atomic, so Append never waits for the writer.
	full atomic.Int64

	mu      sync.Mutex // guards the writer's state below, for Head
	f       *os.File
	size    int64
	seq     uint64
	last    string // hash of the last line written
	dropped int    // lines lost (failed writes) since the last line written
}

type queued struct {
	at    time.Time
	event string
	body  []byte // the fields' JSON object, braces included
}

// Open opens (creating it, and its directory, if needed) the trail at
// path, readable and writable by its owner only, and continues its chain
// from the last complete line. A line torn by a crash (no newline at the
// end of the file) was never fsynced as a whole: it is cut off.
func Open(path string, o Options) (*Trail, error) {
	if o.MaxBytes == 0 {
		o.MaxBytes = 64 << 20
	}
	if o.Queue <= 0 {
		o.Queue = 4096
	}
	if o.Clock == nil {
		o.Clock = clock.Real()
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("audit_log: creating its directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit_log: %w", err)
	}
	if err := lock(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("audit_log %s: %w", path, err)
	}
	t := &Trail{path: path, o: o, f: f, queue: make(chan queued, o.Queue), done: make(chan struct{}), last: ZeroHash}
	if err := t.resume(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("audit_log %s: %w", path, err)
	}
	go t.loop()
	return t, nil
}

// resume finds the last complete line of the file (its seq and hash) and
// cuts off a torn one after it.
func (t *Trail) resume() error {
	st, err := t.f.Stat()
	if err != nil {
		return err
	}
	size := st.Size()
	if size == 0 {
		return nil
	}
	// Lines are short; the last one is within the file's last 64 KiB.
	from := max(size-64<<10, 0)
	buf := make([]byte, size-from)
	if _, err := t.f.ReadAt(buf, from); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	end := bytes.LastIndexByte(buf, '\n')
	if end < 0 {
		if from > 0 {
			return errors.New("its last line is longer than 64 KiB: not an audit trail")
		}
		end = -1 // no complete line at all
	}
	if keep := from + int64(end) + 1; keep < size {
		if err := t.f.Truncate(keep); err != nil {
			return fmt.Errorf("cutting off a torn last line: %w", err)
		}
		size = keep
	}
	t.size = size
	if end < 0 {
		return nil
	}
	start := bytes.LastIndexByte(buf[:end], '\n') + 1
	line := buf[start:end]
	var head struct {
		Seq uint64 `json:"seq"`
	}
	if err := json.Unmarshal(line, &head); err != nil || head.Seq == 0 {
		return errors.New("its last line is not an audit line")
	}
	t.seq, t.last = head.Seq, hashLine(line)
	_, err = t.f.Seek(0, io.SeekEnd)
	return err
}

func hashLine(line []byte) string {
	sum := sha256.Sum256(line)
	return hex.EncodeToString(sum[:])
}

// Append queues a line for event with fields, a struct or map that
// marshals to a JSON object (nil: none). It never blocks: when the queue
// is full the line is dropped and counted. After Close it does nothing.
func (t *Trail) Append(event string, fields any) {
	body := []byte("{}")
	if fields != nil {
		b, err := json.Marshal(fields)
		if err != nil || len(b) < 2 || b[0] != '{' {
			t.observeDropped(fmt.Errorf("audit: the fields of %s are not a JSON object", event))
			return
		}
		body = b
	}
	q := queued{at: t.o.Clock.Now(), event: event, body: body}
	t.closeMu.RLock()
	defer t.closeMu.RUnlock()
	if t.closed {
		return
	}
	select {
	case t.queue <- q:
	default:
		t.full.Add(1)
		t.observeDropped(nil)
	}
}

func (t *Trail) observeDropped(err error) {
	if t.o.Observer != nil {
		t.o.Observer.Dropped(err)
	}
}

// Head returns the sequence number and hash of the last line written:
// recorded elsewhere (the status page), they show a later deletion of the
// trail's tail, which the chain alone cannot.
func (t *Trail) Head() (seq uint64, hash string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.seq, t.last
}

// Path is the trail's current file.
func (t *Trail) Path() string { return t.path }

// Close writes and fsyncs what is queued and closes the file.
func (t *Trail) Close() error {
	t.closeMu.Lock()
	if t.closed {
		t.closeMu.Unlock()
		return nil
	}
	t.closed = true
	close(t.queue)
	t.closeMu.Unlock()
	<-t.done
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.f.Close()
}

// maxGroup bounds the lines one write (and fsync) carries.
const maxGroup = 512

// loop is the writer: it takes every line queued, writes them as one
// group and fsyncs once (group fsync), so lines reach the disk within one
// fsync of being appended however many come at once.
func (t *Trail) loop() {
	defer close(t.done)
	group := make([]queued, 0, maxGroup)
	for q := range t.queue {
		group = append(group[:0], q)
	gather:
		for len(group) < maxGroup {
			select {
			case q, ok := <-t.queue:
				if !ok {
					break gather
				}
				group = append(group, q)
			default:
				break gather
			}
		}
		t.write(group)
	}
}

// write appends a group of lines and fsyncs them. A failed write is cut
// back to the last line that was whole, and its lines are counted as
// dropped; the chain goes on from the last line written.
func (t *Trail) write(group []queued) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var buf bytes.Buffer
	seq, last := t.seq, t.last
	t.dropped += int(t.full.Swap(0))
	if t.dropped > 0 {
		seq++
		line := t.format(seq, group[0].at, "audit_gap", []byte(`{"lost":`+strconv.Itoa(t.dropped)+`}`), last)
		last = hashLine(line)
		buf.Write(line)
		buf.WriteByte('\n')
	}
	for _, q := range group {
		seq++
		line := t.format(seq, q.at, q.event, q.body, last)
		last = hashLine(line)
		buf.Write(line)
		buf.WriteByte('\n')
	}
	n := seq - t.seq
	_, err := t.f.Write(buf.Bytes())
	if err == nil {
		err = t.f.Sync()
	}
	if err != nil {
		_ = t.f.Truncate(t.size)
		_, _ = t.f.Seek(t.size, io.SeekStart)
		t.dropped += len(group)
		for range group {
			t.observeDropped(err)
		}
		return
	}
	t.seq, t.last, t.dropped = seq, last, 0
	t.size += int64(buf.Len())
	if t.o.Observer != nil {
		t.o.Observer.Written(int(n))
	}
	if t.o.MaxBytes > 0 && t.size >= t.o.MaxBytes {
		err := t.rotate(group[len(group)-1].at)
		if t.o.Observer != nil {
			t.o.Observer.Rotated(err)
		}
	}
}

func (t *Trail) format(seq uint64, at time.Time, event string, body []byte, prev string) []byte {
	b := make([]byte, 0, 160+len(body))
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, `,"time":"`...)
	b = at.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","event":`...)
	b = strconv.AppendQuote(b, event)
	if inner := body[1 : len(body)-1]; len(bytes.TrimSpace(inner)) > 0 {
		b = append(b, ',')
		b = append(b, inner...)
	}
	b = append(b, `,"prev":"`...)
	b = append(b, prev...)
	return append(b, `"}`...)
}

// rotate renames the full file <path>.<UTC time> and continues in a new
// one; the chain carries on (the new file's first line names the old
// file's last). On failure the trail stays in the current file.
func (t *Trail) rotate(at time.Time) error {
	old := t.path + "." + at.UTC().Format("20060102T150405.000000000Z")
	if err := os.Rename(t.path, old); err != nil {
		return fmt.Errorf("audit_log: rotating: %w", err)
	}
	f, err := os.OpenFile(t.path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		if err = lock(f); err != nil {
			_ = f.Close()
		}
	}
	if err != nil {
		// Keep writing to the renamed file rather than lose lines.
		return fmt.Errorf("audit_log: rotating: %w", err)
	}
	if d, err := os.Open(filepath.Dir(t.path)); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	_ = t.f.Close()
	t.f, t.size = f, 0
	return nil
}
