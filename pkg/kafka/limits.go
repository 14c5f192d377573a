package kafka

// limits.go bounds what a reader of topics takes in: fetch sizes, one
// fetch at a time, and what a fetched record batch may decompress to.
// Whoever can write a topic chooses its batches: a few hundred bytes of
// zstd or gzip inflate to gigabytes, and a fetch of fetch_max_bytes holds
// thousands of batches. franz-go bounds each batch (MaxDecompressBatchBytes)
// but not their sum, so the readers here also bound each batch by its
// compressed size: at most maxRatio times as large. A fetch response then
// decompresses to at most maxRatio × its size, whatever it holds; the
// consumer's memory arithmetic is in config.go (maxFetchBytes).

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kgo"
)

// maxRatio is how many times its compressed size a batch may decompress
// to. Snappy, which the producer uses (franz-go's default), cannot exceed
// about 21: its longest copy, 64 bytes, takes 3 bytes. Other producers'
// batches compressed better than this are refused like batches too large
// (README, "Bad input and dead letters").
const maxRatio = 24

// batchOverhead is what a batch holds beyond its records' keys, values and
// headers: the batch and record framing.
const batchOverhead = 1 << 10

// readLimits are the options of every client that reads topics, for
// records of at most maxRecord bytes: fetches of at most fetchMax bytes
// (and one batch beyond: a broker returns a partition's first batch even
// when it is larger), one fetch in flight or buffered at a time, and
// batches bounded as boundedDecompressor says.
func readLimits(maxRecord, fetchMax int) []kgo.Opt {
	batch := min(maxRecord, 256<<20) + batchOverhead
	return []kgo.Opt{
		kgo.WithDecompressor(newBoundedDecompressor(batch)),
		kgo.FetchMaxBytes(int32(fetchMax)),
		kgo.BrokerMaxReadBytes(int32(min(fetchMax+batch+batchOverhead, 1<<30))),
		kgo.MaxConcurrentFetches(1),
	}
}

// boundedDecompressor decompresses batches of every codec Kafka has, each
// to at most min(max, maxRatio × its compressed size) bytes, and stops
// decompressing there: a batch beyond is refused with kgo.ErrMaxDecompress,
// which franz-go reports as *kgo.ErrDecompressTooLarge for the partition.
// Safe for concurrent use.
type boundedDecompressor struct {
	max  int
	zstd sync.Pool // *zstd.Decoder
	gzip sync.Pool // *gzip.Reader
	lz4  sync.Pool // *lz4.Reader
}

func newBoundedDecompressor(max int) *boundedDecompressor {
	d := &boundedDecompressor{max: max}
	d.zstd.New = func() any {
		// Streaming in the calling goroutine (concurrency 1 starts none),
		// with a window no larger than a batch may be.
		z, _ := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxMemory(uint64(max)))
		return z
	}
	d.lz4.New = func() any { return lz4.NewReader(nil) }
	return d
}

// Decompress implements kgo.Decompressor.
func (d *boundedDecompressor) Decompress(src []byte, codec kgo.CompressionCodecType) ([]byte, error) {
	limit := d.max
	if len(src) < limit/maxRatio {
		limit = maxRatio * len(src)
	}
	switch codec {
	case kgo.CodecNone:
		return src, nil
	case kgo.CodecSnappy:
		return decodeSnappy(src, limit)
	case kgo.CodecZstd:
		z := d.zstd.Get().(*zstd.Decoder)
		defer d.zstd.Put(z)
		if err := z.Reset(bytes.NewReader(src)); err != nil { // a Reader, not a Buffer: zstd would decode all of a Buffer at once
			return nil, err
		}
		defer z.Reset(nil)
		return readLimited(z, limit)
	case kgo.CodecGzip:
		g, _ := d.gzip.Get().(*gzip.Reader)
		var err error
		if g == nil {
			g, err = gzip.NewReader(bytes.NewReader(src))
		} else {
			err = g.Reset(bytes.NewReader(src))
		}
		if err != nil {
			return nil, err
		}
		defer d.gzip.Put(g)
		return readLimited(g, limit)
	case kgo.CodecLz4:
		l := d.lz4.Get().(*lz4.Reader)
		defer d.lz4.Put(l)
		l.Reset(bytes.NewReader(src))
		return readLimited(l, limit)
	}
	return nil, fmt.Errorf("unknown compression codec %d", codec)
}

// readLimited reads r to its end, refusing more than limit bytes.
func readLimited(r io.Reader, limit int) ([]byte, error) {
	var out bytes.Buffer
	n, err := out.ReadFrom(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if n > int64(limit) {
		return nil, fmt.Errorf("%w: over %d bytes", kgo.ErrMaxDecompress, limit)
	}
	return out.Bytes(), nil
}

// xerialHeader starts the framing Java producers give snappy: the magic,
// a version and a compatible version; then blocks, each a big-endian
// length and a raw snappy block.
var xerialHeader = []byte{130, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

var errXerial = errors.New("malformed xerial snappy framing")

// decodeSnappy decodes raw or xerial-framed snappy, checking the lengths
// the blocks declare against limit before allocating them.
func decodeSnappy(src []byte, limit int) ([]byte, error) {
	if !bytes.HasPrefix(src, xerialHeader) || len(src) < 16 {
		n, err := s2.DecodedLen(src)
		if err != nil {
			return nil, err
		}
		if n > limit {
			return nil, fmt.Errorf("%w: snappy block of %d bytes, over %d", kgo.ErrMaxDecompress, n, limit)
		}
		return s2.Decode(nil, src)
	}
	total := 0
	for rest := src[16:]; len(rest) > 0; {
		if len(rest) < 4 {
			return nil, errXerial
		}
		size := binary.BigEndian.Uint32(rest)
		if uint64(size) > uint64(len(rest)-4) {
			return nil, errXerial
		}
		n, err := s2.DecodedLen(rest[4 : 4+size])
		if err != nil {
			return nil, err
		}
		if total += n; total > limit {
			return nil, fmt.Errorf("%w: snappy blocks of over %d bytes", kgo.ErrMaxDecompress, limit)
		}
		rest = rest[4+size:]
	}
	out := make([]byte, 0, total)
	for rest := src[16:]; len(rest) > 0; {
		size := binary.BigEndian.Uint32(rest)
		block, err := s2.Decode(out[len(out):cap(out)], rest[4:4+size])
		if err != nil {
			return nil, err
		}
		out, rest = out[:len(out)+len(block)], rest[4+size:]
	}
	return out, nil
}
