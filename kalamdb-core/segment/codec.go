package segment

import (
	"fmt"
	"io"
	"sync"

	"github.com/apache/arrow/go/v17/parquet/compress"
	"github.com/klauspost/compress/zstd"
)

// The Parquet library's zstd codec builds a new zstd encoder, with its
// large tables, for every data page it compresses when a compression level
// is set (which the column writer always does). reuseZstd keeps one encoder
// per level instead; zstd encoders are safe for concurrent EncodeAll. The
// output is the same zstd format, readable by every Parquet reader. It is
// registered for the whole process when this package is loaded.
type reuseZstd struct {
	stock compress.Codec

	mu   sync.Mutex
	encs map[int]*zstd.Encoder
	dec  *zstd.Decoder
}

var (
	stockZstd compress.Codec
	ourZstd   *reuseZstd
)

func init() {
	stock, err := compress.GetCodec(compress.Codecs.Zstd)
	if err != nil {
		panic(fmt.Sprintf("segment: the Parquet library has no zstd codec: %v", err))
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0))
	if err != nil {
		panic(fmt.Sprintf("segment: creating the zstd decoder: %v", err))
	}
	stockZstd = stock
	ourZstd = &reuseZstd{stock: stock, encs: map[int]*zstd.Encoder{}, dec: dec}
	compress.RegisterCodec(compress.Codecs.Zstd, ourZstd)
}

// UseStockZstd switches the whole process between the Parquet library's
// own zstd codec (true) and this package's encoder-reusing one (false, the
// default). It exists for benchmarks that compare the two; it must not be
// called while Parquet files are being written.
func UseStockZstd(stock bool) {
	if stock {
		compress.RegisterCodec(compress.Codecs.Zstd, stockZstd)
	} else {
		compress.RegisterCodec(compress.Codecs.Zstd, ourZstd)
	}
}

func (z *reuseZstd) encoder(level int) *zstd.Encoder {
	z.mu.Lock()
	defer z.mu.Unlock()
	if e := z.encs[level]; e != nil {
		return e
	}
	l := zstd.SpeedDefault
	if level != compress.DefaultCompressionLevel {
		l = zstd.EncoderLevelFromZstd(level)
	}
	e, err := zstd.NewWriter(nil, zstd.WithZeroFrames(true), zstd.WithEncoderLevel(l))
	if err != nil {
		// Only invalid options fail, and these are valid.
		panic(fmt.Sprintf("segment: creating a zstd encoder: %v", err))
	}
	z.encs[level] = e
	return e
}

func (z *reuseZstd) NewReader(r io.Reader) io.ReadCloser  { return z.stock.NewReader(r) }
func (z *reuseZstd) NewWriter(w io.Writer) io.WriteCloser { return z.stock.NewWriter(w) }
func (z *reuseZstd) NewWriterLevel(w io.Writer, level int) (io.WriteCloser, error) {
	return z.stock.NewWriterLevel(w, level)
}

func (z *reuseZstd) Encode(dst, src []byte) []byte {
	return z.encoder(compress.DefaultCompressionLevel).EncodeAll(src, dst[:0])
}

func (z *reuseZstd) EncodeLevel(dst, src []byte, level int) []byte {
	return z.encoder(level).EncodeAll(src, dst[:0])
}

func (z *reuseZstd) CompressBound(n int64) int64 { return z.stock.CompressBound(n) }

// Decode panics on corrupt input, as the codec interface has no error
// result; the segment reader recovers it into core.ErrCorrupt.
func (z *reuseZstd) Decode(dst, src []byte) []byte {
	out, err := z.dec.DecodeAll(src, dst[:0])
	if err != nil {
		panic(fmt.Errorf("zstd: %w", err))
	}
	return out
}
