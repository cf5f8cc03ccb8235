package flush

// SetLockAllAbove changes, for a test, the number of keys above which a
// commit locks the whole table (and may skip re-reading the buffer), and
// returns the function that restores it.
func SetLockAllAbove(n int) (restore func()) {
	old := lockAllAbove
	lockAllAbove = n
	return func() { lockAllAbove = old }
}
