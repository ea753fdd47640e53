package redistest

import (
	"os/exec"
	"runtime"
	"sync"
	"syscall"
)

// spawn starts cmd so that the kernel SIGKILLs it when the test process
// dies, whatever kills that (a panic, a timeout, kill -9): a crashed test
// leaves no redis-server or redis-sentinel behind.
//
// The kernel sends the parent-death signal when the thread that started
// the child exits, not only the process. Go ends a thread when a goroutine
// locked to it returns, and any goroutine may have run on the thread that
// started a server; so every process is started from one goroutine locked
// to its own thread for the life of the test process.
func spawn(cmd *exec.Cmd) error {
	spawner.once.Do(func() {
		spawner.reqs = make(chan spawnReq)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread lives as long as the process
			for r := range spawner.reqs {
				r.done <- r.cmd.Start()
			}
		}()
	})
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	done := make(chan error, 1)
	spawner.reqs <- spawnReq{cmd: cmd, done: done}
	return <-done
}

type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

var spawner struct {
	once sync.Once
	reqs chan spawnReq
}
