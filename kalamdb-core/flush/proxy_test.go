package flush_test

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment/objstore/s3test"
)

// proxyFaults are the faults injected between the store and moto: once at
// one request, or at every request from one on (an outage).
var proxyFaults = []struct {
	name   string
	fault  s3test.Fault
	outage bool
}{
	{"error", s3test.Fail, false},
	{"outage", s3test.Fail, true},
	{"lost-reply", s3test.LostReply, false},
	{"truncated", s3test.Truncate, false},
	{"timeout", s3test.Hang, false},
	{"slow", s3test.Slow, false},
}

func proxyRule(at int, fault s3test.Fault, outage bool) proxyRuleFunc {
	return func(n int, _ *http.Request) s3test.Fault {
		if n == at || (outage && n > at) {
			return fault
		}
		return s3test.Pass
	}
}

// withProxy runs the environments created until the returned function is
// called on S3 through a fault-injecting proxy.
func withProxy(t *testing.T) (*s3test.Proxy, func()) {
	restore := withS3(t)
	p := s3test.NewProxy(s3test.Shared(t).Endpoint)
	viaProxy = p
	return p, func() { viaProxy = nil; p.Close(); restore() }
}

// requireUnavailableOrNil checks that a faulted operation either
// succeeded (the client's retries hid the fault) or failed with an error
// that says the store is unavailable.
func requireUnavailableOrNil(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		require.True(t, errors.Is(err, store.ErrUnavailable), "%s: a store fault is store.ErrUnavailable, got %v", what, err)
	}
}

// TestS3FaultsAtEveryRequestOfAFlush injects each fault at every HTTP
// request of a flush: the flush succeeds or fails with a clear error, no
// row is lost, and a retry once the store is back leaves every version in
// the cold tier exactly once and no object that the manifest does not
// record.
func TestS3FaultsAtEveryRequestOfAFlush(t *testing.T) {
	p, restore := withProxy(t)
	defer restore()
	e, _, _, _ := crashScenario(t, catalog.UserTable)
	atEveryRequest(t, p, "the flush", func() error { return flushItems(e) }, func(t *testing.T, what string, rule proxyRuleFunc) {
		e, md, gone, us := crashScenario(t, catalog.UserTable)
		wantCold := int64(len(us) * (12 + 7))
		p.SetRule(rule)
		err := flushItems(e)
		p.SetRule(nil)
		requireUnavailableOrNil(t, err, what)
		e.check("items", md, us, gone)
		require.NoError(t, flushItems(e), what)
		require.Zero(t, e.bufferLen("items"), what)
		require.Equal(t, wantCold, coldRows(t, e), "%s: every version exactly once", what)
		e.reopen()
		e.check("items", md, us, gone)
		assertFilesMatchManifest(t, e)
	})
}

// TestS3FaultsAtEveryRequestOfARead injects each fault at every request of
// the reads of a restarted server with an empty disk cache: a read
// succeeds with the right rows or fails with store.ErrUnavailable, never
// with other rows, and reads work again once the store is back.
func TestS3FaultsAtEveryRequestOfARead(t *testing.T) {
	p, restore := withProxy(t)
	defer restore()
	e, md, gone, us := crashScenario(t, catalog.UserTable)
	require.NoError(t, flushItems(e))
	s := e.store("items")
	read := func() error {
		for _, u := range us {
			for id := range md[u] {
				r, err := s.get(e.ctx, u, id)
				if err != nil {
					return err
				}
				requireValues(t, vals(id, md[u][id]), r.Values, fmt.Sprintf("user %q id %d", u, id))
			}
		}
		return nil
	}
	coldRead := func() {
		require.NoError(t, os.RemoveAll(e.s3.cacheDir))
		e.reopen()
		s = e.store("items")
	}
	coldRead()
	atEveryRequest(t, p, "reading every row after a restart with an empty cache", read, func(t *testing.T, what string, rule proxyRuleFunc) {
		coldRead()
		p.SetRule(rule)
		err := read()
		p.SetRule(nil)
		requireUnavailableOrNil(t, err, what)
		e.check("items", md, us, gone)
	})
}

// proxyRuleFunc is the rule of a Proxy (SetRule).
type proxyRuleFunc = func(n int, r *http.Request) s3test.Fault

// atEveryRequest runs op through p without faults to count its requests,
// then calls try, in a subtest per fault of proxyFaults, with the rule
// that injects that fault at each of those requests in turn (and, for an
// outage, at every request after it).
func atEveryRequest(t *testing.T, p *s3test.Proxy, opName string, op func() error, try func(t *testing.T, what string, rule proxyRuleFunc)) {
	t.Helper()
	p.SetRule(nil)
	require.NoError(t, op())
	total := p.Requests()
	require.Positive(t, total)
	t.Logf("%d requests in %s", total, opName)
	for _, f := range proxyFaults {
		t.Run(f.name, func(t *testing.T) {
			for at := 1; at <= total; at++ {
				try(t, fmt.Sprintf("%s at request %d of %d", f.name, at, total), proxyRule(at, f.fault, f.outage))
			}
		})
	}
}
