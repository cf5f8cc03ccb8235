package etcdtest

import "syscall"

// childAttr makes the kernel kill a test etcd member when the test binary dies,
// so that an interrupted test run leaves no etcd process behind.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
