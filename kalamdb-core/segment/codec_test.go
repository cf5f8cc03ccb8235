package segment

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow/go/v17/parquet/compress"
	"github.com/stretchr/testify/require"
)

func TestReuseZstdIsRegisteredAndCompatible(t *testing.T) {
	c, err := compress.GetCodec(compress.Codecs.Zstd)
	require.NoError(t, err)
	require.Same(t, ourZstd, c, "the encoder-reusing codec is the process's zstd codec")

	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{1, 100, 64 << 10, 1 << 20} {
		src := make([]byte, n)
		for i := range src {
			src[i] = byte(rng.IntN(16)) // compressible
		}
		for _, level := range []int{compress.DefaultCompressionLevel, 1, 3, 9} {
			ours := ourZstd.EncodeLevel(nil, src, level)
			theirs := stockZstd.EncodeLevel(nil, src, level)
			require.True(t, bytes.Equal(src, stockZstd.Decode(nil, ours)), "stock decodes ours, n=%d level=%d", n, level)
			require.True(t, bytes.Equal(src, ourZstd.Decode(nil, theirs)), "ours decodes stock, n=%d level=%d", n, level)
		}
	}
	require.Panics(t, func() { ourZstd.Decode(nil, []byte("definitely not zstd")) }, "corrupt input panics for the reader to recover")
}
