package preflight

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/qrphgate/qrphgate/internal/clock"
)

// SlowFsync is the write-and-fsync time above which a spool directory gets
// a warning: every webhook waits for one before it is acknowledged, and
// the provider gives up after 10 seconds.
const SlowFsync = 100 * time.Millisecond

// probeSize is what the probe writes: a webhook and its record.
const probeSize = 4096

// ProbeDirectory does to dir what a file spool does for every webhook:
// it creates the directory if needed (as the spool does), writes a file,
// fsyncs it and the directory, and removes it. It returns the time the
// write and the fsyncs took on clk.
func ProbeDirectory(dir string, clk clock.Clock) (time.Duration, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, fmt.Errorf("creating the directory: %w", err)
	}
	f, err := os.CreateTemp(dir, ".qrphgate-preflight-*")
	if err != nil {
		return 0, fmt.Errorf("creating a file: %w", err)
	}
	defer os.Remove(f.Name())
	start := clk.Now()
	_, err = f.Write(make([]byte, probeSize))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("writing and fsyncing a file: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return 0, fmt.Errorf("opening the directory: %w", err)
	}
	err = d.Sync()
	_ = d.Close()
	if err != nil {
		return 0, fmt.Errorf("fsyncing the directory: %w", err)
	}
	return clk.Now().Sub(start), nil
}

// SpoolFileVerdict checks a durable file (a spool or a file store) at
// path: its directory takes a write and an fsync (ProbeDirectory), and the
// file itself, when it exists, can be opened for writing. what names it
// in the messages ("spool", "store").
func SpoolFileVerdict(what, path string, clk clock.Clock) Verdict {
	dir := filepath.Dir(path)
	elapsed, err := ProbeDirectory(dir, clk)
	if err != nil {
		return Failure(fmt.Sprintf("%s directory %s: %v", what, dir, err),
			fmt.Sprintf("give qrphgate's user a writable directory on a persistent volume for the %s (or change the %s option)", what, what))
	}
	if f, err := os.OpenFile(path, os.O_RDWR, 0); err == nil {
		_ = f.Close()
	} else if !errors.Is(err, os.ErrNotExist) {
		return Failure(fmt.Sprintf("%s file %s cannot be opened for writing: %v", what, path, err),
			fmt.Sprintf("make the %s file writable by qrphgate's user", what))
	}
	v := Pass(fmt.Sprintf("%s directory %s is writable; a 4 KiB write and its fsyncs took %s", what, dir, round(elapsed)))
	if elapsed > SlowFsync {
		v = Warning(fmt.Sprintf("%s directory %s is writable but a 4 KiB write and its fsyncs took %s: every webhook waits for one before it is acknowledged", what, dir, round(elapsed)),
			"put the spool on a faster (local SSD) volume")
	}
	return v.Timed(elapsed)
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}
