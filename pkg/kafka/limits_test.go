package kafka

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"

	"github.com/klauspost/compress/s2"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-cdc/strait/pkg/testenv"
)

// v2Records returns n Kafka v2 records of a value of size bytes each, made
// by fill.
func v2Records(n, size int, fill func([]byte)) []byte {
	var b []byte
	value := make([]byte, size)
	for i := range n {
		fill(value)
		var rec []byte
		rec = append(rec, 0)                              // attributes
		rec = binary.AppendVarint(rec, 0)                 // timestamp delta
		rec = binary.AppendVarint(rec, int64(i))          // offset delta
		rec = binary.AppendVarint(rec, -1)                // no key
		rec = binary.AppendVarint(rec, int64(len(value))) // the value
		rec = append(rec, value...)
		rec = binary.AppendVarint(rec, 0) // no headers
		b = binary.AppendVarint(b, int64(len(rec)))
		b = append(b, rec...)
	}
	return b
}

// xerial frames src as Java producers frame snappy.
func xerial(src []byte) []byte {
	out := append(append([]byte{}, xerialHeader...), 0, 0, 0, 1, 0, 0, 0, 1)
	for len(src) > 0 {
		n := min(len(src), 32<<10)
		block := s2.EncodeSnappy(nil, src[:n])
		out = binary.BigEndian.AppendUint32(out, uint32(len(block)))
		out = append(out, block...)
		src = src[n:]
	}
	return out
}

// compress compresses src with codec as franz-go's producer does (and
// snappy also as Java's does: xerial).
func compress(t *testing.T, codec string, src []byte) ([]byte, kgo.CompressionCodecType) {
	t.Helper()
	var c kgo.CompressionCodec
	switch codec {
	case "xerial":
		return xerial(src), kgo.CodecSnappy
	case "snappy":
		c = kgo.SnappyCompression()
	case "gzip":
		c = kgo.GzipCompression()
	case "lz4":
		c = kgo.Lz4Compression()
	case "zstd":
		c = kgo.ZstdCompression()
	}
	comp, err := kgo.DefaultCompressor(c)
	if err != nil {
		t.Fatal(err)
	}
	out, typ := comp.Compress(new(bytes.Buffer), src)
	return append([]byte{}, out...), typ
}

// TestBoundedDecompressor: batches of every codec decompress as they
// were; a batch beyond the bounds — larger than a record may be, or
// compressed better than maxRatio — is refused with kgo.ErrMaxDecompress
// having allocated a bounded amount, not what it claims.
func TestBoundedDecompressor(t *testing.T) {
	const max = 1 << 20
	d := newBoundedDecompressor(max)
	rng := rand.New(rand.NewPCG(1, 2))
	text := func(b []byte) { // compresses about 3 to 5 times, as rows do
		for i := range b {
			b[i] = "abcdefghij0123456789 ,.:"[rng.IntN(24)]
		}
	}
	zeros := func(b []byte) { clear(b) }
	for _, codec := range []string{"snappy", "xerial", "gzip", "lz4", "zstd"} {
		for _, c := range []struct {
			name  string
			batch []byte
			ok    bool
		}{
			{"rows", v2Records(1000, 420, text), true},
			{"compressed beyond the ratio", v2Records(1, 512<<10, zeros), codec == "snappy" || codec == "xerial"},
			{"larger than a record", v2Records(3, max/2, zeros), false},
			{"a bomb", v2Records(1, 64<<20, zeros), false},
		} {
			src, typ := compress(t, codec, c.batch)
			var out []byte
			var err error
			alloc := allocated(func() { out, err = d.Decompress(src, typ) })
			switch {
			case c.ok && err != nil:
				t.Errorf("%s, %s (%d bytes to %d): %v", codec, c.name, len(src), len(c.batch), err)
			case c.ok && !bytes.Equal(out, c.batch):
				t.Errorf("%s, %s: decompressed to %d bytes differing from the %d compressed", codec, c.name, len(out), len(c.batch))
			case !c.ok && !errors.Is(err, kgo.ErrMaxDecompress):
				t.Errorf("%s, %s (%d bytes to %d): %v, want kgo.ErrMaxDecompress", codec, c.name, len(src), len(c.batch), err)
			}
			if limit := uint64(4*max + 8<<20); alloc > limit {
				t.Errorf("%s, %s: allocated %d bytes, want at most %d", codec, c.name, alloc, limit)
			}
		}
	}
}

// allocated returns the bytes f allocates: the least of three runs, as
// other tests' goroutines (a kfake cluster closing) may allocate meanwhile.
func allocated(f func()) uint64 {
	least := uint64(math.MaxUint64)
	for range 3 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		f()
		runtime.ReadMemStats(&after)
		least = min(least, after.TotalAlloc-before.TotalAlloc)
	}
	return least
}

// fuzzCodecs are the codecs FuzzDecompress picks from by index.
var fuzzCodecs = []kgo.CompressionCodecType{kgo.CodecSnappy, kgo.CodecGzip, kgo.CodecLz4, kgo.CodecZstd, kgo.CodecNone}

// FuzzDecompress feeds arbitrary batches of every codec to the readers'
// decompressor: a batch decompresses to at most its bound, or is refused,
// never a panic or an allocation sized by what the batch claims.
func FuzzDecompress(f *testing.F) {
	const max = 1 << 20
	d := newBoundedDecompressor(max)
	f.Fuzz(func(t *testing.T, which uint8, src []byte) {
		codec := fuzzCodecs[int(which)%len(fuzzCodecs)]
		out, err := d.Decompress(src, codec)
		if err == nil && codec != kgo.CodecNone && len(out) > min(max, maxRatio*len(src)) {
			t.Fatalf("%d bytes of codec %d decompressed to %d", len(src), codec, len(out))
		}
	})
}

// TestDecompressCorpus checks the seed corpus of FuzzDecompress — real
// batches of every codec, bombs, and cut ones — and rewrites it with
// -update.
func TestDecompressCorpus(t *testing.T) {
	rows := v2Records(20, 100, func(b []byte) {
		for i := range b {
			b[i] = byte('a' + i%7)
		}
	})
	bomb := v2Records(1, 1<<20, func(b []byte) { clear(b) })
	d := newBoundedDecompressor(1 << 20)
	var files []string
	for i, codec := range []string{"snappy", "gzip", "lz4", "zstd"} {
		good, _ := compress(t, codec, rows)
		seeds := [][]byte{good, good[:len(good)/2]}
		if codec == "snappy" {
			seeds = append(seeds, xerial(rows))
		} else {
			b, _ := compress(t, codec, bomb)
			seeds = append(seeds, b)
		}
		for j, src := range seeds {
			out, err := d.Decompress(src, fuzzCodecs[i])
			if (err == nil && bytes.Equal(out, rows)) != (j != 1 && (j == 0 || codec == "snappy")) {
				t.Errorf("%s seed %d: %v", codec, j, err)
			}
			files = append(files, fmt.Sprintf("go test fuzz v1\nuint8(%d)\n[]byte(%s)\n", i, strconv.Quote(string(src))))
		}
	}
	testenv.CheckCorpus(t, filepath.Join("testdata", "fuzz", "FuzzDecompress"), files, *update)
}
