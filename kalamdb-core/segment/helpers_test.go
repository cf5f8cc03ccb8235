package segment_test

import (
	"errors"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"

	"github.com/apache/arrow/go/v17/parquet/metadata"
)

type metadataFooter = metadata.FileMetaData

func errorsIs(err, target error) bool { return errors.Is(err, target) }

// ref names segment p of the local file system fsys.
func ref(fsys segment.FS, p string) segment.Ref {
	return segment.Ref{Store: segment.FSStore(fsys, "test"), Name: p, Size: -1}
}
