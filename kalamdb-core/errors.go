package core

import (
	"errors"
	"fmt"
)

// Sentinel errors of kalamdb-core. Every error a catalog or table-store call
// returns for one of these conditions wraps the sentinel, so callers test it
// with errors.Is, whatever context the message adds.
var (
	// ErrNamespaceNotFound reports a namespace that does not exist.
	ErrNamespaceNotFound = errors.New("namespace not found")
	// ErrNamespaceExists reports the creation of a namespace that exists.
	ErrNamespaceExists = errors.New("namespace already exists")
	// ErrNamespaceNotEmpty reports the drop of a namespace that still has tables.
	ErrNamespaceNotEmpty = errors.New("namespace is not empty")
	// ErrTableNotFound reports a table that does not exist (or was dropped
	// while a handle on it was still in use).
	ErrTableNotFound = errors.New("table not found")
	// ErrTableExists reports the creation of a table that exists.
	ErrTableExists = errors.New("table already exists")
	// ErrWrongTableType reports a table used through the store of another
	// table type, such as a stream table opened as a user table.
	ErrWrongTableType = errors.New("wrong table type")
	// ErrDuplicateKey reports an insert of a primary key that is already
	// present (and not deleted).
	ErrDuplicateKey = errors.New("duplicate primary key")
	// ErrRowNotFound reports a get, update or delete of a primary key that is
	// absent or deleted.
	ErrRowNotFound = errors.New("row not found")
	// ErrInvalidRow reports a row, value, patch or key that does not fit the
	// table: wrong type, null in a non-nullable column, unknown column, …
	// The error is usually a *ColumnError naming the column.
	ErrInvalidRow = errors.New("invalid row")
	// ErrInvalidSchema reports a namespace or table definition that is not
	// valid: bad name, unknown type, duplicate column, missing primary key,
	// … The error is a *ColumnError when a column is to blame.
	ErrInvalidSchema = errors.New("invalid schema")
	// ErrInvalidArgument reports a bad argument that is neither a row nor a
	// schema: an empty user id, a negative limit, …
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrCorrupt reports stored data that cannot be decoded.
	ErrCorrupt = errors.New("corrupt stored data")
)

// ColumnError is an ErrInvalidRow or ErrInvalidSchema error that names the
// column at fault. errors.Is(err, core.ErrInvalidRow) (or ErrInvalidSchema)
// holds for it, and errors.As recovers the column:
//
//	var ce *core.ColumnError
//	if errors.As(err, &ce) {
//		fmt.Println("bad column:", ce.Column)
//	}
type ColumnError struct {
	// Kind is ErrInvalidRow or ErrInvalidSchema.
	Kind error
	// Column is the name of the column at fault.
	Column string
	// Reason says what is wrong, in words.
	Reason string
}

// Error returns "<kind>: column "<name>": <reason>".
func (e *ColumnError) Error() string {
	return fmt.Sprintf("%v: column %q: %s", e.Kind, e.Column, e.Reason)
}

// Unwrap returns Kind, so that errors.Is matches the sentinel.
func (e *ColumnError) Unwrap() error { return e.Kind }

// InvalidRow returns a *ColumnError of kind ErrInvalidRow.
func InvalidRow(column, format string, args ...any) error {
	return &ColumnError{Kind: ErrInvalidRow, Column: column, Reason: fmt.Sprintf(format, args...)}
}

// InvalidSchema returns a *ColumnError of kind ErrInvalidSchema.
func InvalidSchema(column, format string, args ...any) error {
	return &ColumnError{Kind: ErrInvalidSchema, Column: column, Reason: fmt.Sprintf(format, args...)}
}
