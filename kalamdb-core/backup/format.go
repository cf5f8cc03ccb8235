package backup

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"time"
)

// Names and versions of the format (docs/backup.md).
const (
	// IndexName is the backup's index, written last: a backup without it
	// is incomplete.
	IndexName = "kalamdb-backup.json"
	// FormatName is the Format field of every index.
	FormatName = "kalamdb-backup"
	// Version is the version of the format this package writes and the
	// only one it reads.
	Version = 1
	// PartitionDir holds one file of records per partition.
	PartitionDir = "partitions/"
	// SegmentDir holds a copy of every segment the manifests record, under
	// the segment's own path.
	SegmentDir = "segments/"
)

// kvMagic starts every partition file.
var kvMagic = []byte("KDBKV01\n")

// Record tags of a partition file.
const (
	tagRecord = 'R'
	tagEnd    = 'E'
)

// maxRecordPart bounds a key or value length read from a partition file, so
// that a damaged length cannot ask for gigabytes.
const maxRecordPart = 1 << 30

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Index describes a backup: what it holds and the checksums that prove it.
type Index struct {
	// Format is FormatName; Version the format's version.
	Format  string `json:"format"`
	Version int    `json:"version"`
	// Created is when the backup started.
	Created time.Time `json:"created"`
	// Backend names the storage backend the backup was taken from.
	Backend string `json:"backend"`
	// Consistency says how the backup's partitions were read as one state
	// (see docs/backup.md).
	Consistency string `json:"consistency"`
	// Partitions are the backend's partitions, in name order.
	Partitions []PartitionEntry `json:"partitions"`
	// Segments are the segments the manifests record, in manifest order.
	Segments []SegmentEntry `json:"segments"`
	// Tables counts, per table partition, the keys buffered in the backend
	// and the segments and rows flushed.
	Tables []TableCount `json:"tables"`
}

// PartitionEntry is one partition of a backup.
type PartitionEntry struct {
	// Name is the partition's name.
	Name string `json:"name"`
	// File is the file of its records.
	File string `json:"file"`
	// Keys counts its keys; Bytes is the file's length; SHA256 the
	// file's digest, in hex.
	Keys   int64  `json:"keys"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// SegmentEntry is one segment of a backup.
type SegmentEntry struct {
	// Path is the segment's name in the segment store, as its manifest
	// record has it.
	Path string `json:"path"`
	// File is the file of its bytes in the backup.
	File string `json:"file"`
	// TableID is the id of its table; Rows the versions it holds.
	TableID uint64 `json:"table_id"`
	Rows    int64  `json:"rows"`
	// Bytes is its length; SHA256 its digest, in hex.
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// TableCount is what a backup holds of one table.
type TableCount struct {
	// Table is namespace.table; Partition its partition.
	Table     string `json:"table"`
	TableID   uint64 `json:"table_id"`
	Partition string `json:"partition"`
	// Buffered counts the keys of its partition (row versions, tombstones
	// and stream events not flushed).
	Buffered int64 `json:"buffered"`
	// Segments and SegmentRows count its flushed segments and their rows.
	Segments    int   `json:"segments"`
	SegmentRows int64 `json:"segment_rows"`
}

// CorruptError reports a backup file whose bytes are not what the format or
// the index says: it names the file and the byte offset where the problem
// shows.
type CorruptError struct {
	// File is the file's name in the backup.
	File string
	// Offset is the byte offset in File.
	Offset int64
	// Msg says what is wrong.
	Msg string
}

// ErrCorrupt is wrapped by every *CorruptError.
var ErrCorrupt = errors.New("backup is damaged")

// Error implements error.
func (e *CorruptError) Error() string {
	return fmt.Sprintf("backup file %s, offset %d: %s", e.File, e.Offset, e.Msg)
}

// Unwrap returns ErrCorrupt.
func (e *CorruptError) Unwrap() error { return ErrCorrupt }

// digestWriter counts and hashes what passes through it.
type digestWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func newDigestWriter(w io.Writer) *digestWriter { return &digestWriter{w: w, h: sha256.New()} }

func (d *digestWriter) Write(p []byte) (int, error) {
	n, err := d.w.Write(p)
	d.h.Write(p[:n])
	d.n += int64(n)
	return n, err
}

func (d *digestWriter) sum() string { return hex.EncodeToString(d.h.Sum(nil)) }

// kvWriter writes a partition file.
type kvWriter struct {
	d    *digestWriter
	bw   *bufio.Writer
	keys int64
	buf  []byte
}

func newKVWriter(w io.Writer) (*kvWriter, error) {
	d := newDigestWriter(w)
	kw := &kvWriter{d: d, bw: bufio.NewWriterSize(d, 256<<10)}
	_, err := kw.bw.Write(kvMagic)
	return kw, err
}

// put appends one key and value.
func (w *kvWriter) put(key, value []byte) error {
	b := append(w.buf[:0], tagRecord)
	b = binary.AppendUvarint(b, uint64(len(key)))
	b = append(b, key...)
	b = binary.AppendUvarint(b, uint64(len(value)))
	b = append(b, value...)
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	w.buf = b
	w.keys++
	_, err := w.bw.Write(b)
	return err
}

// finish writes the end record and flushes.
func (w *kvWriter) finish() error {
	b := append(w.buf[:0], tagEnd)
	b = binary.AppendUvarint(b, uint64(w.keys))
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	if _, err := w.bw.Write(b); err != nil {
		return err
	}
	return w.bw.Flush()
}

// kvReader reads a partition file, checking every record's checksum.
type kvReader struct {
	file string
	d    *digestReader
	br   *bufio.Reader
	off  int64 // offset of the next byte br returns
	keys int64
	done bool
	rec  []byte
	key  []byte
	val  []byte
}

// digestReader hashes what is read through it.
type digestReader struct {
	r io.Reader
	h hash.Hash
	n int64
}

func (d *digestReader) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	d.h.Write(p[:n])
	d.n += int64(n)
	return n, err
}

func newKVReader(file string, r io.Reader) (*kvReader, error) {
	d := &digestReader{r: r, h: sha256.New()}
	kr := &kvReader{file: file, d: d, br: bufio.NewReaderSize(d, 256<<10)}
	magic := make([]byte, len(kvMagic))
	if _, err := io.ReadFull(kr.br, magic); err != nil {
		return nil, kr.corrupt(0, "too short for the header of a partition file (%v)", err)
	}
	if string(magic) != string(kvMagic) {
		return nil, kr.corrupt(0, "not a partition file of this format (header %q, want %q)", magic, kvMagic)
	}
	kr.off = int64(len(kvMagic))
	return kr, nil
}

func (r *kvReader) corrupt(off int64, format string, args ...any) error {
	return &CorruptError{File: r.file, Offset: off, Msg: fmt.Sprintf(format, args...)}
}

func (r *kvReader) readByte() (byte, error) {
	c, err := r.br.ReadByte()
	if err == nil {
		r.rec = append(r.rec, c)
		r.off++
	}
	return c, err
}

func (r *kvReader) uvarint(start int64, what string) (uint64, error) {
	var x uint64
	var s uint
	for i := 0; i < binary.MaxVarintLen64; i++ {
		c, err := r.readByte()
		if err != nil {
			return 0, r.corrupt(r.off, "the file ends inside the %s of the record at offset %d", what, start)
		}
		if c < 0x80 {
			return x | uint64(c)<<s, nil
		}
		x |= uint64(c&0x7f) << s
		s += 7
	}
	return 0, r.corrupt(start, "the %s of the record is not a valid length", what)
}

func (r *kvReader) bytes(start int64, n uint64, what string) error {
	if n > maxRecordPart {
		return r.corrupt(start, "the record's %s length %d is over the limit of %d", what, n, maxRecordPart)
	}
	at := len(r.rec)
	r.rec = append(r.rec, make([]byte, n)...)
	m, err := io.ReadFull(r.br, r.rec[at:])
	r.off += int64(m)
	if err != nil {
		return r.corrupt(r.off, "the file ends inside the %s of the record at offset %d", what, start)
	}
	return nil
}

// next reads the next record: ok is false after the end record, which it
// checks against the records read.
func (r *kvReader) next() (ok bool, err error) {
	if r.done {
		return false, nil
	}
	start := r.off
	r.rec = r.rec[:0]
	tag, err := r.readByte()
	if err != nil {
		return false, r.corrupt(start, "the file ends without its end record (truncated after %d records)", r.keys)
	}
	switch tag {
	case tagRecord:
		klen, err := r.uvarint(start, "key length")
		if err != nil {
			return false, err
		}
		if err := r.bytes(start, klen, "key"); err != nil {
			return false, err
		}
		kend := len(r.rec)
		vlen, err := r.uvarint(start, "value length")
		if err != nil {
			return false, err
		}
		vstart := len(r.rec)
		if err := r.bytes(start, vlen, "value"); err != nil {
			return false, err
		}
		if err := r.checkCRC(start); err != nil {
			return false, err
		}
		r.key = r.rec[kend-int(klen) : kend]
		r.val = r.rec[vstart : vstart+int(vlen)]
		r.keys++
		return true, nil
	case tagEnd:
		n, err := r.uvarint(start, "record count")
		if err != nil {
			return false, err
		}
		if err := r.checkCRC(start); err != nil {
			return false, err
		}
		if int64(n) != r.keys {
			return false, r.corrupt(start, "the end record counts %d records, the file holds %d", n, r.keys)
		}
		if _, err := r.br.ReadByte(); err != io.EOF {
			return false, r.corrupt(r.off, "bytes follow the end record")
		}
		r.done = true
		return false, nil
	default:
		return false, r.corrupt(start, "unknown record tag 0x%02x", tag)
	}
}

func (r *kvReader) checkCRC(start int64) error {
	var sum [4]byte
	n, err := io.ReadFull(r.br, sum[:])
	r.off += int64(n)
	if err != nil {
		return r.corrupt(r.off, "the file ends inside the checksum of the record at offset %d", start)
	}
	if got, want := crc32.Checksum(r.rec, castagnoli), binary.BigEndian.Uint32(sum[:]); got != want {
		return r.corrupt(start, "the record's checksum does not match (stored %08x, computed %08x)", want, got)
	}
	return nil
}

// each calls fn with every remaining record's key and value (valid until
// fn returns), through the end record.
func (r *kvReader) each(fn func(key, value []byte) error) error {
	for {
		ok, err := r.next()
		if err != nil || !ok {
			return err
		}
		if err := fn(r.key, r.val); err != nil {
			return err
		}
	}
}

// sum returns the digest and length of what was read.
func (r *kvReader) sum() (string, int64) { return hex.EncodeToString(r.d.h.Sum(nil)), r.d.n }
