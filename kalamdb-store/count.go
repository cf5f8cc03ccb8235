package store

import "context"

// Count counts the keys of partition p that opts selects (a Limit stops
// the count there), reading them with one Scan. It is what callers use to
// size a buffer or check a policy without decoding anything.
func Count(ctx context.Context, b StorageBackend, p Partition, opts ScanOptions) (int64, error) {
	it, err := b.Scan(ctx, p, opts)
	if err != nil {
		return 0, err
	}
	var n int64
	for it.Next() {
		n++
	}
	return n, it.Close()
}
