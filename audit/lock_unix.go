//go:build unix

package audit

import (
	"errors"
	"os"
	"syscall"
)

// lock takes the trail's file for this process alone (an advisory lock,
// as bbolt takes its files): two writers would break the chain.
func lock(f *os.File) error {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return errors.New("it is locked by another process (another qrphgate writing the same trail)")
	}
	return err
}
