package redistest

import "syscall"

// childAttr makes the kernel kill a test server when the test binary dies,
// so that an interrupted test run leaves no redis-server behind.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
