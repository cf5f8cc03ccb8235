package tables

import "sync"

// The storage contract lets a caller reuse the slices it passes to a
// backend as soon as the call returns, so the key and value buffers of
// single-row writes come from a pool instead of the heap.
var bufPool = sync.Pool{New: func() any {
	b := make([]byte, 0, 512)
	return &b
}}

// maxPooled is the largest buffer returned to the pool.
const maxPooled = 64 << 10

func getBuf(n int) *[]byte {
	p := bufPool.Get().(*[]byte)
	if cap(*p) < n {
		*p = make([]byte, 0, n)
	}
	*p = (*p)[:0]
	return p
}

func putBuf(p *[]byte) {
	if cap(*p) > maxPooled {
		return
	}
	bufPool.Put(p)
}
