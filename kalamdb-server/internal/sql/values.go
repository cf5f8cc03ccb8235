package sql

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"math/big"
	"net/http"
	"strings"
	"time"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/api"
)

// jsonValue is a value the engine returned as results show it: numbers,
// booleans, strings, bytes as standard base64, timestamps as RFC 3339, and
// null for NaN and the infinities, which JSON lacks.
func jsonValue(v any) any {
	switch x := v.(type) {
	case nil, bool, string, int8, int16, int32, int64, uint8, uint16, uint32, uint64, int, uint:
		return x
	case float32:
		return jsonValue(float64(x))
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil
		}
		return x
	case []byte:
		return base64.StdEncoding.EncodeToString(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case *big.Int:
		if x.IsInt64() {
			return x.Int64()
		}
		return x.String()
	case duckdb.Decimal:
		f := x.Float64()
		return jsonValue(f)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonValue(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonValue(e)
		}
		return out
	}
	return fmt.Sprint(v)
}

// engineType is the name results give an engine type.
func engineType(name string) string {
	switch {
	case name == "INTEGER":
		return "Int"
	case name == "BIGINT" || name == "HUGEINT":
		return "BigInt"
	case name == "SMALLINT":
		return "SmallInt"
	case name == "TINYINT":
		return "TinyInt"
	case name == "DOUBLE":
		return "Double"
	case name == "FLOAT":
		return "Float"
	case name == "BOOLEAN":
		return "Boolean"
	case name == "VARCHAR":
		return "Text"
	case name == "BLOB":
		return "Bytes"
	case strings.HasPrefix(name, "TIMESTAMP"):
		return "Timestamp"
	case strings.HasPrefix(name, "DECIMAL"):
		return "Decimal"
	case name == "DATE":
		return "Date"
	}
	return name
}

// engineError maps an error of the engine to the client's error: the
// engine's message, which points at the problem, with the status and code
// of its kind. Only the engine's own faults are 500s. offset is the
// position of the statement in the request, or -1 when the statement layer
// built it.
func engineError(err error, offset int) error {
	var de *duckdb.Error
	if !errors.As(err, &de) {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		// The driver's own checks: the arguments of the statement.
		return badRequest(CodeInvalidArgument, "%s", err.Error())
	}
	msg := de.Msg
	if offset > 0 {
		msg = fmt.Sprintf("%s (the statement starts at position %d)", msg, offset)
	}
	e := func(status int, code string) error { return &api.Error{Status: status, Code: code, Message: msg} }
	switch de.Type {
	case duckdb.ErrorTypeParser, duckdb.ErrorTypeSyntax:
		return e(http.StatusBadRequest, CodeInvalidSQL)
	case duckdb.ErrorTypeBinder:
		if strings.Contains(de.Msg, "Referenced column") || strings.Contains(de.Msg, "not found in FROM clause") {
			return e(http.StatusBadRequest, CodeUnknownColumn)
		}
		if strings.Contains(de.Msg, "No function matches") || strings.Contains(de.Msg, "Cannot compare") || strings.Contains(de.Msg, "Cannot mix") {
			return e(http.StatusBadRequest, CodeTypeError)
		}
		return e(http.StatusBadRequest, CodeInvalidSQL)
	case duckdb.ErrorTypeConversion, duckdb.ErrorTypeMismatchType, duckdb.ErrorTypeInvalidType, duckdb.ErrorTypeOutOfRange,
		duckdb.ErrorTypeDecimal, duckdb.ErrorTypeDivideByZero:
		return e(http.StatusBadRequest, CodeTypeError)
	case duckdb.ErrorTypeCatalog:
		if strings.Contains(de.Msg, "Table with name") {
			return e(http.StatusNotFound, api.CodeTableNotFound)
		}
		return e(http.StatusBadRequest, CodeInvalidSQL) // an unknown function or type
	case duckdb.ErrorTypeInvalidInput, duckdb.ErrorTypeParameterNotResolved, duckdb.ErrorTypeParameterNotAllowed,
		duckdb.ErrorTypeNotImplemented, duckdb.ErrorTypeExpression, duckdb.ErrorTypeInvalid, duckdb.ErrorTypeConstraint,
		duckdb.ErrorTypeSequence, duckdb.ErrorTypeDependency, duckdb.ErrorTypeObjectSize:
		return e(http.StatusBadRequest, CodeInvalidArgument)
	case duckdb.ErrorTypePermission, duckdb.ErrorTypeSettings, duckdb.ErrorTypeMissingExtension, duckdb.ErrorTypeAutoLoad:
		return e(http.StatusForbidden, api.CodeForbidden)
	case duckdb.ErrorTypeInterrupt:
		return e(http.StatusRequestTimeout, api.CodeRequestTimeout)
	case duckdb.ErrorTypeOutOfMemory:
		return e(http.StatusRequestEntityTooLarge, CodeResultTooLarge)
	}
	return err
}
