package segment

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
)

// Directory layout of the cold tier, relative to the Parquet directory:
//
//	<namespace>/<table>/<segment>.parquet          shared tables
//	<namespace>/<table>/<user dir>/<segment>.parquet user tables
//
// Namespace and table names are already safe path elements (lowercase
// letters, digits and '_'). A user id can hold any bytes, so UserDir encodes
// it; see UserDir.

// SegmentExt ends the name of every committed segment file.
const SegmentExt = ".parquet"

// TempExt ends the name of a segment being written. Recovery removes every
// file that ends with it.
const TempExt = ".tmp"

// readableMax is the longest user id written as is (with the "u-" prefix).
const readableMax = 64

// hexChunk is the most hex digits in one directory element of an encoded
// user id; the longest element, "x3-" and a chunk, stays far below the
// 255-byte name limit of common file systems.
const hexChunk = 200

// UserDir returns the relative directory that holds the segments of user:
//
//   - "u-<id>" when id is 1 to 64 bytes of lowercase ASCII letters, digits,
//     '_' and '-': readable in a listing;
//   - otherwise "x-<hex of the bytes>" in lowercase hex; an id whose hex is
//     longer than 200 digits is split into 200-digit elements, the first
//     one saying how many there are: "x2-<200>/<rest>", "x3-<200>/<200>/<rest>".
//
// The mapping is injective and case-insensitive file systems cannot merge
// two ids (every byte outside [a-z0-9_-] is hex-encoded in lowercase, so
// "Alice" and "alice" land in "x-416c696365" and "u-alice"). No result is
// empty, absolute, "." or "..", or contains NUL or a backslash, so no id
// escapes the table's directory; and no user directory lies inside another
// one, since directories with the same first element have the same depth.
// ParseUserDir is the inverse.
func UserDir(user string) (string, error) {
	if err := catalog.ValidateUserID(user); err != nil {
		return "", err
	}
	if readable(user) {
		return "u-" + user, nil
	}
	h := hex.EncodeToString([]byte(user))
	if len(h) <= hexChunk {
		return "x-" + h, nil
	}
	n := (len(h) + hexChunk - 1) / hexChunk
	var b strings.Builder
	b.WriteString("x" + strconv.Itoa(n) + "-")
	for i := 0; i < len(h); i += hexChunk {
		if i > 0 {
			b.WriteByte('/')
		}
		b.WriteString(h[i:min(i+hexChunk, len(h))])
	}
	return b.String(), nil
}

func readable(user string) bool {
	if len(user) > readableMax {
		return false
	}
	for i := 0; i < len(user); i++ {
		c := user[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// ParseUserDir returns the user id whose UserDir is dir. It accepts only
// the exact output of UserDir, so that every id has one directory.
func ParseUserDir(dir string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("%w: %q is not a user directory: %s", core.ErrCorrupt, dir, why)
	}
	if u, ok := strings.CutPrefix(dir, "u-"); ok {
		if u == "" || !readable(u) {
			return bad("bad readable id")
		}
		return u, nil
	}
	els := strings.Split(dir, "/")
	head, ok := strings.CutPrefix(els[0], "x")
	if !ok {
		return bad("unknown prefix")
	}
	count, first, ok := strings.Cut(head, "-")
	if !ok {
		return bad("no '-' after the prefix")
	}
	n := 1
	if count != "" {
		var err error
		if n, err = strconv.Atoi(count); err != nil || n < 2 || strconv.Itoa(n) != count {
			return bad("bad element count")
		}
	}
	if len(els) != n {
		return bad("wrong number of elements")
	}
	els[0] = first
	for i, el := range els {
		if el == "" || len(el) > hexChunk || (n > 1 && i < n-1 && len(el) != hexChunk) {
			return bad("bad hex element length")
		}
		if strings.ToLower(el) != el {
			return bad("hex is not lowercase")
		}
	}
	raw, err := hex.DecodeString(strings.Join(els, ""))
	if err != nil {
		return bad("bad hex")
	}
	user := string(raw)
	if canon, err := UserDir(user); err != nil || canon != dir {
		return bad("not the canonical encoding")
	}
	return user, nil
}

// TableDir returns the directory of a table's segments, "<ns>/<table>".
func TableDir(ns, table string) string { return ns + "/" + table }

// FileName returns the name of segment seg of the table with id tableID:
// "seg-<table id>-<segment id, 20 digits>.parquet". The table id keeps the
// files of a dropped table apart from those of a table re-created with the
// same name.
func FileName(tableID, seg uint64) string {
	return fmt.Sprintf("seg-%d-%020d%s", tableID, seg, SegmentExt)
}

// ParseFileName returns the table and segment ids of a name made by
// FileName.
func ParseFileName(name string) (tableID, seg uint64, ok bool) {
	rest, ok := strings.CutPrefix(name, "seg-")
	if !ok {
		return 0, 0, false
	}
	rest, ok = strings.CutSuffix(rest, SegmentExt)
	if !ok {
		return 0, 0, false
	}
	t, s, ok := strings.Cut(rest, "-")
	if !ok || len(s) != 20 {
		return 0, 0, false
	}
	tableID, err1 := strconv.ParseUint(t, 10, 64)
	seg, err2 := strconv.ParseUint(s, 10, 64)
	if err1 != nil || err2 != nil || FileName(tableID, seg) != name {
		return 0, 0, false
	}
	return tableID, seg, true
}
