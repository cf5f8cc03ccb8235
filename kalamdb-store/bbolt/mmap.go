package bbolt

// The remap guard. bbolt (v1.5.0) remaps its file inside a write
// transaction's Commit, when it allocates a page at or past the end of the
// mapping: DB.allocate computes minsz, the file size the allocation needs,
// and remaps when minsz >= the mapping size. Just before, when DB.MaxSize is
// positive, it fails the allocation with ErrMaxSizeReached if
// nextAlloc(minsz) > MaxSize, and Commit rolls the transaction back.
//
// The mapping size is always a value of mmapSize (below), it never shrinks,
// and it covers every page in use. So with hw the size of the pages in use
// (Tx.Size) and initial the InitialMmapSize of the open, the mapping is at
// least floor = mmapSize(max(hw, initial)). nextAlloc is non-decreasing, so
// with MaxSize = nextAlloc(floor) - 1 every allocation that would remap
// (minsz >= mapping >= floor) fails before it remaps. Once the mapping is
// past DB.AllocSize (16 MiB), nextAlloc(x) = x + AllocSize and the guard
// fails exactly the allocations that remap; below, it may also fail some that
// would not, which costs a second attempt and nothing else.
//
// mmapSize and nextAlloc follow DB.mmapSize and DB.allocate/DB.growSize of
// bbolt v1.5.0; TestRemapGuard checks the guard against the real mapping.

const (
	minMmapSize = 1 << 15 // bbolt maps at least 32 KiB
	maxMmapStep = 1 << 30 // and grows by 1 GiB past 1 GiB
	// maxGuarded bounds the sizes the guard computes with, well inside
	// int on every platform; bbolt cannot map that much anyway.
	maxGuarded = int(^uint(0)>>1) / 4
)

// mmapSize is the mapping size bbolt chooses for a file of size bytes: the
// next power of two from 32 KiB to 1 GiB, then the next multiple of 1 GiB.
func mmapSize(size int) int {
	for i := uint(15); i <= 30; i++ {
		if size <= 1<<i {
			return 1 << i
		}
	}
	if size%maxMmapStep != 0 {
		size += maxMmapStep - size%maxMmapStep
	}
	return size
}

// nextAlloc is the size bbolt compares with MaxSize when an allocation
// needs minsz bytes of file.
func nextAlloc(minsz, allocSize int) int {
	m := mmapSize(minsz)
	if m <= allocSize {
		return m
	}
	return minsz + allocSize
}

// remapGuard returns the MaxSize under which a write transaction that sees
// hw bytes of pages in use cannot make bbolt remap, or 0 (no limit) when the
// sizes are past what bbolt can map.
func remapGuard(hw, initial, allocSize int) int {
	floor := hw
	if initial > floor {
		floor = initial
	}
	if floor > maxGuarded {
		return 0
	}
	return nextAlloc(mmapSize(floor), allocSize) - 1
}
