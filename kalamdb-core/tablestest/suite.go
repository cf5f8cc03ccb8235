package tablestest

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tables"
)

// Run runs the table-store suite on the harness's backend: one subtest per
// behaviour, each on a fresh backend.
func Run(t *testing.T, h Harness) {
	rowTests := []struct {
		name string
		fn   func(*testing.T, *env, rowStore)
	}{
		{"InsertGet", testInsertGet},
		{"EveryTypeRoundTrips", testEveryType},
		{"DuplicateKey", testDuplicateKey},
		{"InsertManyIsAtomic", testInsertManyAtomic},
		{"InsertWithinBatchLimits", testInsertWithinBatchLimits},
		{"InvalidRows", testInvalidRows},
		{"Update", testUpdate},
		{"SoftDelete", testSoftDelete},
		{"ScanPaging", testScanPaging},
		{"ScanBytes", testScanBytes},
		{"ConcurrentInsertSameKey", testConcurrentInsertSameKey},
		{"ConcurrentMixed", testConcurrentMixed},
		{"DeleteIfUnchanged", testDeleteIfUnchanged},
		{"ColdSourceMerge", testColdSourceMerge},
		{"ColdSourceError", testColdSourceError},
		{"ConcurrentFlush", testConcurrentFlush},
		{"AddColumn", testAddColumn},
		{"UpdateDeleteMany", testUpdateDeleteMany},
		{"ManyWithinBatchLimits", testManyWithinBatchLimits},
		{"ManyColdRows", testManyColdRows},
		{"ManyVersionsChecked", testManyVersionsChecked},
	}
	// These run with an in-memory cold tier under every user and shared
	// table, as the Parquet tier is attached in production.
	coldTests := map[string]bool{"ColdSourceMerge": true, "ColdSourceError": true, "ConcurrentFlush": true, "ManyColdRows": true}
	for _, kind := range []string{"user", "shared"} {
		for _, rt := range rowTests {
			t.Run(kind+"/"+rt.name, func(t *testing.T) {
				opts := envOptions{cold: coldTests[rt.name]}
				// The concurrency tests run on a backend whose Get yields,
				// which makes check-then-act races likely instead of rare.
				if strings.HasPrefix(rt.name, "Concurrent") {
					opts.wrap = func(b store.StorageBackend) store.StorageBackend { return yielding{b} }
				}
				e := newEnvWith(t, h, opts)
				rt.fn(t, e, e.kinds()[kind]())
			})
		}
	}
	RunSeveralServers(t, h)
	t.Run("stream/EmbeddedEvictionTakesNoLease", func(t *testing.T) { testStreamEmbeddedEvictionTakesNoLease(t, h) })
	for _, c := range []struct {
		name string
		fn   func(*testing.T, *env)
	}{
		{"catalog/SurvivesRestart", testCatalogRestart},
		{"catalog/WrongTableType", testWrongType},
		{"catalog/DroppedTable", testDroppedTable},
		{"catalog/RowStore", testRowStore},
		{"catalog/RowStoreOfARecreatedTable", testRowStoreOfARecreatedTable},
		{"user/Isolation", testUserIsolation},
		{"user/ManyIsolation", testManyUserIsolation},
		{"user/StringPrimaryKeys", testStringKeys},
		{"user/BufferUsers", testBufferUsers},
		{"user/SeqSurvivesRestart", testSeqRestart},
		{"stream/AppendRead", testStreamAppendRead},
		{"stream/InvalidInput", testStreamInvalid},
		{"stream/TTL", testStreamTTL},
		{"stream/MaxBuffer", testStreamMaxBuffer},
		{"stream/MaxBytes", testStreamMaxBytes},
		{"stream/ReadBytes", testStreamReadBytes},
		{"stream/AppendWithinBatchLimits", testStreamAppendWithinBatchLimits},
		{"stream/EvictionTimer", testStreamTimer},
		{"stream/ConcurrentAppendTail", testStreamTail},
		{"stream/Restart", testStreamRestart},
		{"stream/Dropped", testStreamDropped},
	} {
		t.Run(c.name, func(t *testing.T) { c.fn(t, newEnv(t, h)) })
	}
}

// RunSeveralServers runs the part of the suite where two table layers on
// one backend stand for two servers (Run runs it too), on the harness's
// backend wrapped to claim that several processes share it
// (store.Capabilities.MultiProcess); Redis and etcd claim it themselves.
func RunSeveralServers(t *testing.T, h Harness) {
	for _, kind := range []string{"user", "shared"} {
		for _, c := range []struct {
			name string
			fn   func(*testing.T, Harness, string)
		}{
			{"SeveralProcessesInsertSameKey", testProcessesInsertSameKey},
			{"SeveralProcessesNoLostUpdate", testProcessesNoLostUpdate},
			{"SeveralProcessesDeleteAndReinsert", testProcessesDeleteAndReinsert},
			{"SeveralProcessesPurgeKeepsNewerWrites", testProcessesPurgeKeepsNewerWrites},
			{"SeveralProcessesManyRetried", testProcessesManyRetried},
			{"ManyStorageFailureChangesNothing", testManyStorageFailure},
		} {
			t.Run(kind+"/"+c.name, func(t *testing.T) { c.fn(t, h, kind) })
		}
	}
	for _, c := range []struct {
		name string
		fn   func(*testing.T, Harness)
	}{
		{"servers/SeeNewTables", testServersSeeNewTables},
		{"servers/SeeDroppedTables", testServersSeeDroppedTables},
		{"servers/SeeAddedColumns", testServersSeeAddedColumns},
		{"servers/BackgroundRefresh", testServersBackgroundRefresh},
		{"stream/SeveralServersEvictBeyondTheMaximum", testStreamServersEvictBeyondTheMaximum},
		{"stream/SeveralServersEvictExpiredAnywhere", testStreamServersEvictExpiredAnywhere},
		{"stream/SeveralServersReadInCommitOrder", testStreamServersReadInCommitOrder},
		{"stream/SeveralServersAppendEvicts", testStreamServersAppendEvicts},
		{"stream/SeveralServersOneEvictionAtATime", testStreamServersOneEvictionAtATime},
		{"stream/SeveralServersTimerSkipsWhileHeld", testStreamServersTimerSkipsWhileHeld},
		{"stream/SeveralServersCountOncePerInterval", testStreamServersCountOncePerInterval},
		{"stream/SeveralServersEvictionWhoseLeaseWasTakenOver", testStreamServersEvictionWhoseLeaseWasTakenOver},
	} {
		t.Run(c.name, func(t *testing.T) { c.fn(t, h) })
	}
}

func requireColumnError(t *testing.T, err error, kind error, column string) {
	t.Helper()
	require.ErrorIs(t, err, kind)
	var ce *core.ColumnError
	require.True(t, errors.As(err, &ce), "want a *core.ColumnError, got %v", err)
	assert.Equal(t, column, ce.Column, "column named by %v", err)
}

func assertValues(t *testing.T, want, got []row.Value, msgAndArgs ...any) {
	t.Helper()
	require.Len(t, got, len(want), msgAndArgs...)
	for i := range want {
		assert.True(t, want[i].Equal(got[i]), "column %d: want %v, got %v %v", i, want[i], got[i], msgAndArgs)
	}
}

func ids(rows []row.Row) []int64 {
	out := make([]int64, len(rows))
	for i, r := range rows {
		out[i] = r.Values[colID].Int64()
	}
	return out
}

// scanAll pages through s with the given page size and returns every row.
func scanAll(t *testing.T, e *env, s rowStore, pageSize int) []row.Row {
	t.Helper()
	var all []row.Row
	opts := tables.ScanOptions{Limit: pageSize}
	for range 10_000 {
		page, err := s.Scan(e.ctx, opts)
		require.NoError(t, err)
		all = append(all, page.Rows...)
		if !page.More {
			assert.True(t, page.Next.IsNull(), "Next is null on the last page")
			return all
		}
		require.Len(t, page.Rows, pageSize, "a page with More is full")
		opts.After = page.Next
	}
	t.Fatal("scan did not end")
	return nil
}
