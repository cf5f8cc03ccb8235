package rocksdb

/*
#cgo LDFLAGS: -lrocksdb
#include <stdlib.h>
#include <string.h>
#include <rocksdb/c.h>

#include <stdint.h>

// A partition's key prefix travels from Go as a uint64 (byte i in bits 8i
// to 8i+7) and a length of 0 to 8 bytes; a stored key is the prefix, then
// the caller's key. kdb_key builds it in stack (of KDB_STACK_KEY bytes) when
// it fits and in a malloc'd buffer, returned through heap, when it does
// not; with an empty prefix it returns key itself. NULL means out of memory.
#define KDB_STACK_KEY 256

static void kdb_put_prefix(char* dst, uint64_t prefix, size_t plen) {
	for (size_t i = 0; i < plen; i++) {
		dst[i] = (char)(prefix >> (8 * i));
	}
}

static const char* kdb_key(char* stack, char** heap, uint64_t prefix, size_t plen,
		const char* key, size_t klen) {
	*heap = NULL;
	if (plen == 0) {
		return key;
	}
	char* buf = stack;
	if (plen + klen > KDB_STACK_KEY) {
		buf = *heap = malloc(plen + klen);
		if (buf == NULL) {
			return NULL;
		}
	}
	kdb_put_prefix(buf, prefix, plen);
	if (klen > 0) {
		memcpy(buf + plen, key, klen);
	}
	return buf;
}

static char* kdb_oom(void) {
	char* err = malloc(sizeof "out of memory");
	if (err != NULL) {
		strcpy(err, "out of memory");
	}
	return err;
}

// kdb_value is the answer of kdb_get: data (malloc'd by RocksDB, NULL when
// the key is missing) or err (malloc'd, NULL on success).
typedef struct {
	char* data;
	size_t len;
	char* err;
} kdb_value;

static kdb_value kdb_get(rocksdb_t* db, const rocksdb_readoptions_t* ro,
		rocksdb_column_family_handle_t* cf, uint64_t prefix, size_t plen,
		const char* key, size_t klen) {
	kdb_value v = {0};
	char stack[KDB_STACK_KEY];
	char* heap;
	const char* k = kdb_key(stack, &heap, prefix, plen, key, klen);
	if (k == NULL && plen > 0) {
		v.err = kdb_oom();
		return v;
	}
	v.data = rocksdb_get_cf(db, ro, cf, k, plen + klen, &v.len, &v.err);
	free(heap);
	return v;
}

// kdb_put and kdb_delete return the error message (malloc'd) or NULL.
static char* kdb_put(rocksdb_t* db, const rocksdb_writeoptions_t* wo,
		rocksdb_column_family_handle_t* cf, uint64_t prefix, size_t plen,
		const char* key, size_t klen, const char* value, size_t vlen) {
	char stack[KDB_STACK_KEY];
	char* heap;
	const char* k = kdb_key(stack, &heap, prefix, plen, key, klen);
	if (k == NULL && plen > 0) {
		return kdb_oom();
	}
	char* err = NULL;
	rocksdb_put_cf(db, wo, cf, k, plen + klen, value, vlen, &err);
	free(heap);
	return err;
}

static char* kdb_delete(rocksdb_t* db, const rocksdb_writeoptions_t* wo,
		rocksdb_column_family_handle_t* cf, uint64_t prefix, size_t plen,
		const char* key, size_t klen) {
	char stack[KDB_STACK_KEY];
	char* heap;
	const char* k = kdb_key(stack, &heap, prefix, plen, key, klen);
	if (k == NULL && plen > 0) {
		return kdb_oom();
	}
	char* err = NULL;
	rocksdb_delete_cf(db, wo, cf, k, plen + klen, &err);
	free(heap);
	return err;
}

// kdb_write_rep writes a batch given as RocksDB's WriteBatch representation
// (see batch.go): one call builds the batch from it, writes and frees it.
static char* kdb_write_rep(rocksdb_t* db, const rocksdb_writeoptions_t* wo,
		const char* rep, size_t len) {
	char* err = NULL;
	rocksdb_writebatch_t* wb = rocksdb_writebatch_create_from(rep, len);
	rocksdb_write(db, wo, wb, &err);
	rocksdb_writebatch_destroy(wb);
	return err;
}

// kdb_iter is a RocksDB iterator with the read options that hold its
// bounds, and the bounds themselves: RocksDB keeps pointers to them, so they
// live in the same C allocation as the iterator rather than in Go memory.
// plen is the length of the partition's key prefix, which every key the
// iterator returns starts with and which kdb_entry_of strips.
typedef struct {
	rocksdb_iterator_t* it;
	rocksdb_readoptions_t* ro;
	size_t plen;
} kdb_iter;

// kdb_iter_create creates an iterator over the keys of a partition (prefix,
// plen) within [lower, upper). A missing bound of a partition with a prefix
// is the end of its key range: the prefix itself below, the prefix with its
// last byte plus one above (the prefix is a uvarint, whose last byte is
// below 0x80). A legacy partition (plen 0) has no bound where none is
// given.
static kdb_iter* kdb_iter_create(rocksdb_t* db, rocksdb_column_family_handle_t* cf,
		uint64_t prefix, size_t plen,
		const char* lower, size_t lower_len, int has_lower,
		const char* upper, size_t upper_len, int has_upper, int bulk) {
	kdb_iter* k = malloc(sizeof(kdb_iter) + 2 * plen + lower_len + upper_len);
	if (k == NULL) {
		return NULL;
	}
	k->plen = plen;
	char* lo = (char*)(k + 1);
	char* hi = lo + plen + lower_len;
	k->ro = rocksdb_readoptions_create();
	if (bulk) {
		// A one-off read of a large range: keep its blocks out of the
		// block cache and read the table files ahead in large chunks.
		rocksdb_readoptions_set_fill_cache(k->ro, 0);
		rocksdb_readoptions_set_readahead_size(k->ro, 2 << 20);
	}
	if (has_lower || plen > 0) {
		kdb_put_prefix(lo, prefix, plen);
		if (has_lower && lower_len > 0) {
			memcpy(lo + plen, lower, lower_len);
		}
		rocksdb_readoptions_set_iterate_lower_bound(k->ro, lo, plen + (has_lower ? lower_len : 0));
	}
	if (has_upper) {
		kdb_put_prefix(hi, prefix, plen);
		if (upper_len > 0) {
			memcpy(hi + plen, upper, upper_len);
		}
		rocksdb_readoptions_set_iterate_upper_bound(k->ro, hi, plen + upper_len);
	} else if (plen > 0) {
		kdb_put_prefix(hi, prefix, plen);
		((unsigned char*)hi)[plen - 1]++;
		rocksdb_readoptions_set_iterate_upper_bound(k->ro, hi, plen);
	}
	k->it = rocksdb_create_iterator_cf(db, k->ro, cf);
	return k;
}

static void kdb_iter_destroy(kdb_iter* k) {
	rocksdb_iter_destroy(k->it);
	rocksdb_readoptions_destroy(k->ro);
	free(k);
}

// kdb_entry is an iterator's position: valid, and then its key (without the
// partition's prefix) and value (RocksDB's memory, valid until the iterator
// moves).
typedef struct {
	const char* key;
	size_t key_len;
	const char* value;
	size_t value_len;
	int valid;
} kdb_entry;

static kdb_entry kdb_entry_of(kdb_iter* k) {
	kdb_entry e = {0};
	if (rocksdb_iter_valid(k->it)) {
		e.valid = 1;
		e.key = rocksdb_iter_key(k->it, &e.key_len);
		e.key += k->plen;
		e.key_len -= k->plen;
		e.value = rocksdb_iter_value(k->it, &e.value_len);
	}
	return e;
}

// The moves of an iterator, each returning the entry it lands on, so that a
// step of a scan is one call from Go.
enum { KDB_NEXT, KDB_PREV, KDB_FIRST, KDB_LAST };

static kdb_entry kdb_iter_move(kdb_iter* k, int move) {
	switch (move) {
	case KDB_NEXT: rocksdb_iter_next(k->it); break;
	case KDB_PREV: rocksdb_iter_prev(k->it); break;
	case KDB_FIRST: rocksdb_iter_seek_to_first(k->it); break;
	default: rocksdb_iter_seek_to_last(k->it); break;
	}
	return kdb_entry_of(k);
}

static char* kdb_iter_error(kdb_iter* k) {
	char* err = NULL;
	rocksdb_iter_get_error(k->it, &err);
	return err;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"reflect"
	"unsafe"

	"github.com/linxGnu/grocksdb"
)

// Get, Put, Delete and Scan call RocksDB's C API directly through the small
// helpers above, for three reasons: grocksdb allocates a Go object and an
// out-parameter for every key and every value an iterator returns, and for
// every Get and write (the allocations are most of a scan's garbage); a
// step of a scan is four cgo calls through grocksdb (Next, Valid, Key,
// Value) and one here; and grocksdb passes the bounds of an iterator as
// pointers into Go memory that RocksDB keeps, which the cgo rules forbid,
// where kdb_iter_create copies them into C memory. Batches, options, column
// families and everything else go through grocksdb.
//
// The helpers need the C objects behind grocksdb's DB, ColumnFamilyHandle
// and WriteOptions, which grocksdb keeps in an unexported first field named
// c. checkBinding verifies that layout when the engine opens, so a grocksdb
// that changed it is refused with an error instead of misread.

// cObject returns the C pointer held in the first field of *p.
func cObject[T any](p *T) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(p)) }

// cDB and cFamily are the C objects of a grocksdb DB and
// ColumnFamilyHandle, for the read paths.
type (
	cDB     struct{ p *C.rocksdb_t }
	cFamily struct {
		p *C.rocksdb_column_family_handle_t
	}
)

func dbC(db *grocksdb.DB) cDB { return cDB{(*C.rocksdb_t)(cObject(db))} }

func familyC(h *grocksdb.ColumnFamilyHandle) cFamily {
	return cFamily{(*C.rocksdb_column_family_handle_t)(cObject(h))}
}

// id returns the column family's RocksDB id.
func (f cFamily) id() uint32 { return uint32(C.rocksdb_column_family_handle_get_id(f.p)) }

// cWrite is the C object of a grocksdb WriteOptions.
type cWrite struct{ p *C.rocksdb_writeoptions_t }

func writeC(wo *grocksdb.WriteOptions) cWrite {
	return cWrite{(*C.rocksdb_writeoptions_t)(cObject(wo))}
}

// putC writes value under pfx+key into the column family.
func putC(db cDB, wo cWrite, cf cFamily, pfx keyPrefix, key, value []byte) error {
	if msg := C.kdb_put(db.p, wo.p, cf.p, C.uint64_t(pfx.b), C.size_t(pfx.n),
		bytesC(key), C.size_t(len(key)), bytesC(value), C.size_t(len(value))); msg != nil {
		return takeError(msg)
	}
	return nil
}

// deleteC removes pfx+key from the column family.
func deleteC(db cDB, wo cWrite, cf cFamily, pfx keyPrefix, key []byte) error {
	if msg := C.kdb_delete(db.p, wo.p, cf.p, C.uint64_t(pfx.b), C.size_t(pfx.n), bytesC(key), C.size_t(len(key))); msg != nil {
		return takeError(msg)
	}
	return nil
}

// checkBinding reports whether grocksdb's DB and ColumnFamilyHandle keep
// their C object in a first field named c, as the read paths assume.
func checkBinding() error {
	return checkFirstFieldC(reflect.TypeFor[grocksdb.DB](), reflect.TypeFor[grocksdb.ColumnFamilyHandle](),
		reflect.TypeFor[grocksdb.WriteOptions]())
}

// checkFirstFieldC reports whether each struct type keeps a pointer in a
// first field named c.
func checkFirstFieldC(types ...reflect.Type) error {
	for _, t := range types {
		if t.Kind() != reflect.Struct {
			return fmt.Errorf("rocksdb: unsupported grocksdb: %v is not a struct", t)
		}
		if t.NumField() == 0 {
			return fmt.Errorf("rocksdb: unsupported grocksdb: %v has no fields", t)
		}
		f := t.Field(0)
		if f.Name != "c" || f.Offset != 0 || f.Type.Kind() != reflect.Pointer {
			return fmt.Errorf("rocksdb: unsupported grocksdb: the first field of %v is %s %v, not the C object c", t, f.Name, f.Type)
		}
	}
	return nil
}

// readOptions are the C read options of Get: RocksDB's defaults.
type readOptions struct{ c *C.rocksdb_readoptions_t }

func newReadOptions() readOptions { return readOptions{C.rocksdb_readoptions_create()} }

func (r readOptions) destroy() { C.rocksdb_readoptions_destroy(r.c) }

// errNotFound is getC's answer for a missing key.
var errNotFound = errors.New("not found")

// getC reads pfx+key from the column family into a new Go slice. It
// returns errNotFound when the key is missing.
func getC(db cDB, ro readOptions, cf cFamily, pfx keyPrefix, key []byte) ([]byte, error) {
	v := C.kdb_get(db.p, ro.c, cf.p, C.uint64_t(pfx.b), C.size_t(pfx.n), bytesC(key), C.size_t(len(key)))
	if v.err != nil {
		return nil, takeError(v.err)
	}
	if v.data == nil {
		return nil, errNotFound
	}
	out := make([]byte, int(v.len))
	copy(out, unsafe.Slice((*byte)(unsafe.Pointer(v.data)), int(v.len)))
	C.rocksdb_free(unsafe.Pointer(v.data))
	return out, nil
}

// takeError turns a RocksDB error message into an error and frees it.
func takeError(msg *C.char) error {
	err := errors.New(C.GoString(msg))
	C.rocksdb_free(unsafe.Pointer(msg))
	return err
}

// bytesC returns a pointer to b's first byte, or nil for an empty b.
func bytesC(b []byte) *C.char {
	if len(b) == 0 {
		return nil
	}
	return (*C.char)(unsafe.Pointer(&b[0]))
}

// writeRepC writes the batch whose WriteBatch representation is rep.
func writeRepC(db cDB, wo cWrite, rep []byte) error {
	if msg := C.kdb_write_rep(db.p, wo.p, bytesC(rep), C.size_t(len(rep))); msg != nil {
		return takeError(msg)
	}
	return nil
}

// cIter is a RocksDB iterator, its read options and its bounds (copied into
// C memory), created and destroyed together.
type cIter struct{ k *C.kdb_iter }

// newCIter creates an iterator over the keys of the column family that
// start with pfx, within [pfx+lower, pfx+upper) (a nil bound is the end of
// pfx's range, or no bound for the empty prefix); the keys it returns lack
// pfx. bulk reads ahead and bypasses the block cache
// (store.ScanOptions.Bulk).
func newCIter(db cDB, cf cFamily, pfx keyPrefix, lower, upper []byte, bulk bool) (cIter, error) {
	k := C.kdb_iter_create(db.p, cf.p, C.uint64_t(pfx.b), C.size_t(pfx.n),
		bytesC(lower), C.size_t(len(lower)), flagC(lower != nil),
		bytesC(upper), C.size_t(len(upper)), flagC(upper != nil), flagC(bulk))
	if k == nil {
		return cIter{}, errors.New("rocksdb: out of memory creating an iterator")
	}
	return cIter{k}, nil
}

func flagC(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// A move of an iterator (cIter.move).
type move C.int

const (
	moveNext  move = C.KDB_NEXT
	movePrev  move = C.KDB_PREV
	moveFirst move = C.KDB_FIRST
	moveLast  move = C.KDB_LAST
)

// entry is an iterator's position: whether it is on an entry, and then the
// entry's key and value, in RocksDB's memory, valid until the iterator
// moves.
type entry struct{ c C.kdb_entry }

func (e *entry) valid() bool { return e.c.valid != 0 }

// key and value return the entry's bytes (never nil).
func (e *entry) key() []byte   { return bytesOf(e.c.key, e.c.key_len) }
func (e *entry) value() []byte { return bytesOf(e.c.value, e.c.value_len) }

// move moves the iterator and returns the entry it lands on.
func (c cIter) move(m move) entry { return entry{C.kdb_iter_move(c.k, C.int(m))} }

// err returns the iterator's error, if any.
func (c cIter) err() error {
	if msg := C.kdb_iter_error(c.k); msg != nil {
		return takeError(msg)
	}
	return nil
}

func (c cIter) destroy() { C.kdb_iter_destroy(c.k) }

func bytesOf(p *C.char, n C.size_t) []byte {
	if p == nil || n == 0 {
		return []byte{}
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(p)), int(n))
}
