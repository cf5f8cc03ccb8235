package flush_test

import (
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
)

// TestColdTierSuitesOnS3 runs the cold tier's suites (flush, merged reads,
// compaction, crashes and failures, outages of the backend, drop,
// concurrency) with the segments in an S3 bucket of a moto server behind a
// disk cache, as they run on a directory.
func TestColdTierSuitesOnS3(t *testing.T) {
	defer withS3(t)()
	for _, c := range []struct {
		name string
		run  func(*testing.T)
	}{
		{"ColdRowsKeepUniquenessUpdatesAndDeletes", TestColdRowsKeepUniquenessUpdatesAndDeletes},
		{"DeletionsWithNothingColdAreNotWritten", TestDeletionsWithNothingColdAreNotWritten},
		{"ScanPagesAcrossBufferAndSegments", TestScanPagesAcrossBufferAndSegments},
		{"MergedScanMatchesModel", TestMergedScanMatchesModel},
		{"FootersStayCachedWithoutARowGroupCache", TestFootersStayCachedWithoutARowGroupCache},
		{"CloseFlushesEverything", TestCloseFlushesEverything},
		{"ScanReadsOnlyTheSegmentsItReaches", TestScanReadsOnlyTheSegmentsItReaches},
		{"DropTableRemovesBufferManifestAndFiles", TestDropTableRemovesBufferManifestAndFiles},
		{"CompactKeepsTombstonesAboveFullSegments", TestCompactKeepsTombstonesAboveFullSegments},
		{"MajorCompactMergesFullSegments", TestMajorCompactMergesFullSegments},
		{"MajorCompactCrashAtEveryStep", TestMajorCompactCrashAtEveryStep},
		{"ManyDeletionsTriggerAMajorCompaction", TestManyDeletionsTriggerAMajorCompaction},
		{"RandomFlushesAndCompactions", TestRandomFlushesAndCompactions},
		{"ReadsDuringFlushesSeeEveryRow", TestReadsDuringFlushesSeeEveryRow},
		{"RowsStayVisibleAroundTheCommit", TestRowsStayVisibleAroundTheCommit},
		{"OutageAtEveryWriteOfAFlush", TestOutageAtEveryWriteOfAFlush},
		{"OutageAtEveryWriteOfACompaction", TestOutageAtEveryWriteOfACompaction},
		{"AddColumnAcrossTiers", TestAddColumnAcrossTiers},
	} {
		t.Run(c.name, c.run)
	}
}

// After a restart with an empty disk cache, every row is read back from
// the bucket; a drop, and a drop interrupted after the catalog step,
// remove the table's objects.
func TestS3RestartWithAnEmptyCacheAndDrop(t *testing.T) {
	defer withS3(t)()
	for _, typ := range []catalog.TableType{catalog.UserTable, catalog.SharedTable} {
		t.Run(string(typ), func(t *testing.T) {
			e, md, gone, us := crashScenario(t, typ)
			require.NoError(t, flushItems(e))
			require.NoError(t, os.RemoveAll(e.s3.cacheDir))
			e.reopen()
			e.check("items", md, us, gone)
			assert.Positive(t, e.s3.store.Stats().Gets, "the rows came from the bucket")
			assertFilesMatchManifest(t, e)

			require.NoError(t, e.m.DropTable(e.ctx, ns, "items"))
			assert.Empty(t, e.s3.objects(t), "the drop removed the table's objects")

			e.createTable("other", typ, catalog.FlushPolicy{})
			require.NoError(t, e.store("other").insert(e.ctx, us[0], vals(1, 0)))
			_, err := e.m.Flush(e.ctx, ns, "other")
			require.NoError(t, err)
			require.Len(t, e.s3.objects(t), 1)
			require.NoError(t, e.m.DB().Catalog().DropTable(e.ctx, ns, "other")) // the catalog step only
			e.reopen()
			assert.Empty(t, e.s3.objects(t), "Open completed the interrupted drop")
		})
	}
}

// An unrecorded object younger than the grace period survives Open on a
// shared bucket: it may be an upload about to commit.
func TestS3OpenKeepsYoungUnrecordedObjects(t *testing.T) {
	defer withS3(t)()
	e := newEnv(t)
	tbl := e.createTable("items", catalog.SharedTable, catalog.FlushPolicy{})
	require.NoError(t, e.store("items").insert(e.ctx, "", vals(1, 0)))
	require.NoError(t, flushItems(e))
	stray := segment.TableDir(ns, "items") + "/" + segment.FileName(tbl.ID, 77)
	up, err := e.s3.store.Create(context.Background(), stray)
	require.NoError(t, err)
	_, err = up.Write([]byte("an upload of another server"))
	require.NoError(t, err)
	require.NoError(t, up.Commit())

	e.opts.GCGrace = 0 // the default, an hour
	e.reopen()
	assert.Contains(t, e.s3.objects(t), stray)
	assert.Equal(t, 1, e.m.Young())
	e.check("items", model{"": {1: 0}}, []string{""}, nil)

	e.opts.GCGrace = -1
	e.reopen()
	assert.NotContains(t, e.s3.objects(t), stray, "without a grace, unrecorded objects go at once")
}
