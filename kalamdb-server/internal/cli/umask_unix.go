//go:build unix

package cli

import "syscall"

// restrictFileModes makes every file and folder the process creates from
// now on readable by its own user alone (umask 077), the storage engine's
// files included: a data folder created beforehand by someone else, or a
// default umask of 022, does not expose the rows to other users of the
// machine.
func restrictFileModes() { syscall.Umask(0o077) }
