package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
)

// Report is what Verify found.
type Report struct {
	// Lines is how many lines were checked, Files in which order (by
	// their first line's seq).
	Lines int
	Files []string
	// First and Last are the seq of the first and last line; Head is the
	// last line's hash (compare it with the head recorded elsewhere: the
	// chain cannot show that lines were cut off the end).
	First, Last uint64
	Head        string
	// Anchored is true when the first line is the trail's very first
	// (seq 1, prev all zeros); otherwise the files before are needed to
	// check that line's link.
	Anchored bool
}

// BrokenError names the first line where the chain breaks.
type BrokenError struct {
	File   string
	Line   int // 1-based, in File
	Seq    uint64
	Reason string
}

func (e *BrokenError) Error() string {
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Reason)
}

// Verify checks the chain across files (a trail and its rotated files, in
// any order): every line a JSON object whose seq follows the line before
// and whose prev is that line's SHA-256. It returns a *BrokenError for
// the first line that fails, other errors for files it cannot read.
func Verify(files ...string) (Report, error) {
	if len(files) == 0 {
		return Report{}, errors.New("no file to verify")
	}
	type start struct {
		name string
		seq  uint64
	}
	starts := make([]start, 0, len(files))
	for _, name := range files {
		seq, err := firstSeq(name)
		if err != nil {
			return Report{}, err
		}
		starts = append(starts, start{name, seq})
	}
	// By first seq; an empty file (the current one, just rotated) last.
	sort.SliceStable(starts, func(i, j int) bool { return starts[i].seq-1 < starts[j].seq-1 })
	var (
		rep  Report
		prev string // hash of the line before
		seq  uint64
	)
	for _, s := range starts {
		rep.Files = append(rep.Files, s.name)
		f, err := os.Open(s.name)
		if err != nil {
			return rep, err
		}
		r := bufio.NewReaderSize(f, 64<<10)
		for n := 1; ; n++ {
			line, err := r.ReadBytes('\n')
			if len(line) == 0 && errors.Is(err, io.EOF) {
				break
			}
			if err != nil && !errors.Is(err, io.EOF) {
				_ = f.Close()
				return rep, fmt.Errorf("%s: %w", s.name, err)
			}
			broken := func(reason string, a ...any) error {
				_ = f.Close()
				return &BrokenError{File: s.name, Line: n, Seq: seq + 1, Reason: fmt.Sprintf(reason, a...)}
			}
			if !bytes.HasSuffix(line, []byte{'\n'}) {
				return rep, broken("the last line is incomplete (no newline)")
			}
			line = line[:len(line)-1]
			var l struct {
				Seq  uint64 `json:"seq"`
				Prev string `json:"prev"`
			}
			if json.Unmarshal(line, &l) != nil || l.Seq == 0 || len(l.Prev) != len(ZeroHash) {
				return rep, broken("not an audit line")
			}
			switch {
			case rep.Lines == 0:
				rep.First, rep.Anchored = l.Seq, l.Seq == 1 && l.Prev == ZeroHash
				if l.Seq == 1 && l.Prev != ZeroHash {
					return rep, broken("the trail's first line must have a prev of zeros")
				}
			case l.Seq != seq+1:
				return rep, broken("seq %d follows %d: lines are missing or out of order", l.Seq, seq)
			case l.Prev != prev:
				return rep, broken("prev does not match the line before it (seq %d): that line was changed, or lines were removed after it", seq)
			}
			prev, seq = hashLine(line), l.Seq
			rep.Lines++
		}
		_ = f.Close()
	}
	rep.Last, rep.Head = seq, prev
	return rep, nil
}

// firstSeq reads the seq of a file's first line (0 for an empty file).
func firstSeq(name string) (uint64, error) {
	f, err := os.Open(name)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	line, err := bufio.NewReaderSize(f, 64<<10).ReadBytes('\n')
	if len(line) == 0 && errors.Is(err, io.EOF) {
		return 0, nil
	}
	var l struct {
		Seq uint64 `json:"seq"`
	}
	if json.Unmarshal(bytes.TrimSpace(line), &l) != nil || l.Seq == 0 {
		return 0, &BrokenError{File: name, Line: 1, Reason: "not an audit line"}
	}
	return l.Seq, nil
}
