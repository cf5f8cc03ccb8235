package segment_test

import (
	"errors"

	"github.com/apache/arrow/go/v17/parquet/metadata"
)

type metadataFooter = metadata.FileMetaData

func errorsIs(err, target error) bool { return errors.Is(err, target) }
