//go:build !unix

package cli

// restrictFileModes does nothing where there is no umask.
func restrictFileModes() {}
