package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestResultStatistics(t *testing.T) {
	r := result{ops: 4, rows: 8, elapsed: 2 * time.Second}
	for _, d := range []time.Duration{40, 10, 30, 20} {
		r.lat = append(r.lat, d*time.Microsecond)
	}
	assert.Equal(t, 25*time.Microsecond, r.mean())
	assert.Equal(t, 10*time.Microsecond, r.percentile(0))
	assert.Equal(t, 20*time.Microsecond, r.percentile(.5))
	assert.Equal(t, 40*time.Microsecond, r.percentile(1))
	assert.Equal(t, 4.0, r.rowsPerSec())
	assert.Equal(t, 2.0, r.reqPerSec())
	assert.Equal(t, []time.Duration{40, 10, 30, 20}[0]*time.Microsecond, r.lat[0], "percentile does not reorder the samples")
	assert.Equal(t, time.Duration(0), result{}.mean())

	rs := []result{{ops: 1, elapsed: time.Second}, {ops: 3, elapsed: time.Second}, {ops: 2, elapsed: time.Second}}
	assert.Equal(t, 2.0, median(rs, result.reqPerSec))
}

func TestFloorHandler(t *testing.T) {
	h := floorHandler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/echo", strings.NewReader(`{"rows":[{"id":1}],"x":2}`)))
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.JSONEq(t, `{"inserted":2}`, rec.Body.String())

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/echo", strings.NewReader(`{`)))
	assert.Equal(t, http.StatusBadRequest, rec.Code)
}
