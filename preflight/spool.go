package preflight

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/qrphgate/qrphgate/internal/clock"
)

// SlowFsync is the write-and-fsync time above which a spool directory gets
// a warning: every webhook waits for one before it is acknowledged, and
// the provider gives up after 10 seconds.
const SlowFsync = 100 * time.Millisecond

// probeSize is what the probe writes: a webhook and its record.
const probeSize = 4096

// ProbeDirectory does to dir, which must exist, what a file spool does for
// every webhook: it writes a file (a temporary one, removed after), fsyncs
// it and the directory. It returns the time the write and the fsyncs took
// on clk. It creates no directory.
func ProbeDirectory(dir string, clk clock.Clock) (time.Duration, error) {
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

// nearestDirectory returns dir when it exists, else its nearest ancestor
// that does: where qrphgate will create it (its file stores create their
// directory when they open). A file in the way is an error.
func nearestDirectory(dir string) (string, error) {
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		switch {
		case err == nil && fi.IsDir():
			return d, nil
		case err == nil:
			return "", fmt.Errorf("%s is a file, not a directory", d)
		case !(errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)) || filepath.Dir(d) == d:
			return "", err
		}
	}
}

// SpoolFileVerdict checks a durable file (a spool or a file store) at
// path without creating anything that stays: its directory takes a write
// and an fsync (ProbeDirectory), and the file itself, when it exists, can
// be opened for writing. A directory that does not exist yet (qrphgate
// creates it when it starts) is not created: its nearest existing ancestor
// is probed instead, where it will be created. what names the file in the
// messages ("spool", "store").
func SpoolFileVerdict(what, path string, clk clock.Clock) Verdict {
	dir := filepath.Dir(path)
	fix := fmt.Sprintf("give qrphgate's user a writable directory on a persistent volume for the %s (or change the %s option)", what, what)
	probed, err := nearestDirectory(dir)
	if err != nil {
		return Failure(fmt.Sprintf("%s directory %s cannot be created: %v", what, dir, err), fix)
	}
	elapsed, err := ProbeDirectory(probed, clk)
	if err != nil {
		return Failure(fmt.Sprintf("%s directory %s: %v", what, probed, err), fix)
	}
	if f, err := os.OpenFile(path, os.O_RDWR, 0); err == nil {
		_ = f.Close()
	} else if !errors.Is(err, os.ErrNotExist) {
		return Failure(fmt.Sprintf("%s file %s cannot be opened for writing: %v", what, path, err),
			fmt.Sprintf("make the %s file writable by qrphgate's user", what))
	}
	where := fmt.Sprintf("%s directory %s is writable", what, dir)
	if probed != dir {
		where = fmt.Sprintf("%s directory %s does not exist yet (qrphgate creates it when it starts; preflight creates no directory); %s, where it will be, is writable",
			what, dir, probed)
	}
	v := Pass(fmt.Sprintf("%s; a 4 KiB write and its fsyncs took %s", where, FormatDuration(elapsed)))
	if elapsed > SlowFsync {
		v = Warning(fmt.Sprintf("%s but a 4 KiB write and its fsyncs took %s: every webhook waits for one before it is acknowledged", where, FormatDuration(elapsed)),
			"put the spool on a faster (local SSD) volume")
	}
	return v.Timed(elapsed)
}
