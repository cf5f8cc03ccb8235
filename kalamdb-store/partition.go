package store

import "fmt"

// MaxPartitionNameLen is the longest partition name, in bytes.
const MaxPartitionNameLen = 128

// Partition names an independent key space inside a backend: a key range of
// a shared column family in RocksDB, a bucket in bbolt, a key prefix in
// Pebble and Redis, a key range behind a never-reused revision in etcd, a
// B-tree in the memory backend.
//
// The zero Partition is invalid. Build one with NewPartition (which validates
// the name) or MustPartition (for names fixed at compile time).
type Partition struct {
	name string
}

// NewPartition returns the partition called name, or an error wrapping
// ErrInvalidArgument that says what is wrong with the name.
//
// The naming rules live here and nowhere else: a name is 1 to
// MaxPartitionNameLen bytes of ASCII letters, digits, '_', '-', '.' and ':'.
// These bytes are safe as a RocksDB column-family name, a file name fragment,
// a bbolt bucket name and inside a Redis hash tag, and none of them is 0x00,
// which prefix-mapping backends use as the separator after the name.
func NewPartition(name string) (Partition, error) {
	if err := ValidatePartitionName(name); err != nil {
		return Partition{}, err
	}
	return Partition{name: name}, nil
}

// MustPartition is like NewPartition but panics on an invalid name. Use it
// only for names that are constants of the program.
func MustPartition(name string) Partition {
	p, err := NewPartition(name)
	if err != nil {
		panic(err)
	}
	return p
}

// ValidatePartitionName reports whether name is a valid partition name; the
// error wraps ErrInvalidArgument and names the offending byte.
func ValidatePartitionName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: partition name is empty", ErrInvalidArgument)
	}
	if len(name) > MaxPartitionNameLen {
		return fmt.Errorf("%w: partition name %.20q… is %d bytes, the limit is %d",
			ErrInvalidArgument, name, len(name), MaxPartitionNameLen)
	}
	for i := 0; i < len(name); i++ {
		if !partitionNameByte(name[i]) {
			return fmt.Errorf("%w: partition name %q has byte %q at offset %d; allowed are ASCII letters, digits, '_', '-', '.' and ':'",
				ErrInvalidArgument, name, name[i], i)
		}
	}
	return nil
}

func partitionNameByte(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	case c == '_', c == '-', c == '.', c == ':':
		return true
	}
	return false
}

// Name returns the partition's name ("" for the zero Partition).
func (p Partition) Name() string { return p.name }

// IsZero reports whether p is the zero (invalid) Partition.
func (p Partition) IsZero() bool { return p.name == "" }

// String returns the partition's name.
func (p Partition) String() string { return p.name }
