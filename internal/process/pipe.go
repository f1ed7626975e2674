package process

import (
	"os"

	"golang.org/x/sys/unix"
)

// pipeSize is the capacity asked for the child's output pipes, instead of
// Linux's 64 KiB: a downloader that floods its output then fills the pipe in
// fewer, larger steps, and the reader wakes far less often.
const pipeSize = 1 << 20

// widenPipe asks the kernel for a pipe of pipeSize bytes. It is best effort: an
// unprivileged process may be held to /proc/sys/fs/pipe-max-size, and the pipe
// then keeps its size.
func widenPipe(f *os.File) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_, _ = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, pipeSize)
	})
}
