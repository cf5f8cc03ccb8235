package sql

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync"

	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/api"
)

// A successful response is written straight to JSON, as the REST API
// writes rows (api.AppendJSONString, api.AppendJSONFloat): the values of
// a result are the few kinds jsonValue returns, so no reflection is needed
// but for nested lists and maps, which go through encoding/json.

var respPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// writeSuccess answers with {"status":"success","results":[…],"took":…}.
func writeSuccess(w http.ResponseWriter, results []Result, took float64) {
	bp := respPool.Get().(*[]byte)
	buf, err := appendSuccess((*bp)[:0], results, took)
	if err != nil {
		// Only a value encoding/json cannot encode gets here: answer as
		// api.WriteJSON does.
		api.WriteJSON(w, http.StatusOK, Response{Status: "success", Results: results, Took: took})
	} else {
		api.WriteJSONBody(w, http.StatusOK, buf)
	}
	if cap(buf) <= 1<<20 { // do not keep huge buffers
		*bp = buf[:0]
		respPool.Put(bp)
	}
}

// appendSuccess appends the body of a successful response and a newline,
// as json.Marshal writes a Response but for '<', '>' and '&', which are
// not escaped.
func appendSuccess(dst []byte, results []Result, took float64) ([]byte, error) {
	dst = append(dst, `{"status":"success","results":[`...)
	var err error
	for i := range results {
		if i > 0 {
			dst = append(dst, ',')
		}
		if dst, err = appendResult(dst, &results[i]); err != nil {
			return dst, err
		}
	}
	dst = append(dst, `],"took":`...)
	dst = api.AppendJSONFloat(dst, took)
	return append(dst, '}', '\n'), nil
}

func appendResult(dst []byte, r *Result) ([]byte, error) {
	dst = append(dst, `{"schema":`...)
	if r.Schema == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '[')
		for i, f := range r.Schema {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"name":`...)
			dst = api.AppendJSONString(dst, f.Name)
			dst = append(dst, `,"data_type":`...)
			dst = api.AppendJSONString(dst, f.DataType)
			dst = append(dst, `,"index":`...)
			dst = strconv.AppendInt(dst, int64(f.Index), 10)
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	dst = append(dst, `,"rows":`...)
	if r.Rows == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '[')
		for i, row := range r.Rows {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = appendAny(dst, row); err != nil {
				return dst, err
			}
		}
		dst = append(dst, ']')
	}
	dst = append(dst, `,"row_count":`...)
	dst = strconv.AppendInt(dst, int64(r.RowCount), 10)
	if r.Message != "" {
		dst = append(dst, `,"message":`...)
		dst = api.AppendJSONString(dst, r.Message)
	}
	return append(dst, '}'), nil
}

// appendAny appends v, a value of a result, as JSON.
func appendAny(dst []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case bool:
		return strconv.AppendBool(dst, x), nil
	case string:
		return api.AppendJSONString(dst, x), nil
	case int64:
		return strconv.AppendInt(dst, x, 10), nil
	case int32:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case int16:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case int8:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case int:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case uint64:
		return strconv.AppendUint(dst, x, 10), nil
	case uint32:
		return strconv.AppendUint(dst, uint64(x), 10), nil
	case uint16:
		return strconv.AppendUint(dst, uint64(x), 10), nil
	case uint8:
		return strconv.AppendUint(dst, uint64(x), 10), nil
	case uint:
		return strconv.AppendUint(dst, uint64(x), 10), nil
	case float64:
		return api.AppendJSONFloat(dst, x), nil
	case []any:
		if x == nil {
			return append(dst, "null"...), nil
		}
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = appendAny(dst, e); err != nil {
				return dst, err
			}
		}
		return append(dst, ']'), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}
