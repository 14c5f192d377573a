package binlog

import (
	"fmt"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/encoding/korean"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/traditionalchinese"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/encoding/unicode/utf32"
)

// textDecoder turns a column's bytes into valid UTF-8.
type textDecoder func(raw string) (string, error)

// decoderFor returns the decoder for a MySQL character set name. UTF-8
// character sets are validated, not converted (no allocation).
func decoderFor(charset string) (textDecoder, error) {
	switch charset {
	case "utf8mb4", "utf8mb3", "utf8", "ascii":
		return validUTF8, nil
	case "latin1":
		return decodeLatin1, nil
	}
	enc, ok := otherCharsets[charset]
	if !ok {
		return nil, fmt.Errorf("character set %s is not supported (supported: utf8mb4, utf8mb3, latin1, ascii, binary and the character sets in charset.go)", charset)
	}
	dec := enc.NewDecoder()
	return func(raw string) (string, error) { return dec.String(raw) }, nil
}

var otherCharsets = map[string]encoding.Encoding{
	"latin2": charmap.ISO8859_2, "latin5": charmap.ISO8859_9, "latin7": charmap.ISO8859_13,
	"greek": charmap.ISO8859_7, "hebrew": charmap.ISO8859_8, "cp1250": charmap.Windows1250,
	"cp1251": charmap.Windows1251, "cp1256": charmap.Windows1256, "cp1257": charmap.Windows1257,
	"cp850": charmap.CodePage850, "cp852": charmap.CodePage852, "cp866": charmap.CodePage866,
	"koi8r": charmap.KOI8R, "koi8u": charmap.KOI8U, "tis620": charmap.Windows874,
	"macroman": charmap.Macintosh,
	"ucs2":     unicode.UTF16(unicode.BigEndian, unicode.IgnoreBOM), "utf16": unicode.UTF16(unicode.BigEndian, unicode.IgnoreBOM),
	"utf16le": unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM), "utf32": utf32.UTF32(utf32.BigEndian, utf32.IgnoreBOM),
	"sjis": japanese.ShiftJIS, "cp932": japanese.ShiftJIS, "ujis": japanese.EUCJP, "eucjpms": japanese.EUCJP,
	"gbk": simplifiedchinese.GBK, "gb2312": simplifiedchinese.HZGB2312, "gb18030": simplifiedchinese.GB18030,
	"big5": traditionalchinese.Big5, "euckr": korean.EUCKR,
}

func validUTF8(raw string) (string, error) {
	if !utf8.ValidString(raw) {
		return "", fmt.Errorf("invalid UTF-8 %q", truncate(raw))
	}
	return raw, nil
}

// MySQL's latin1 is Windows-1252 with the five bytes that 1252 leaves
// undefined mapped to the C1 control characters of the same value.
var latin1Table = func() (t [256]rune) {
	for i := range 256 {
		t[i] = charmap.Windows1252.DecodeByte(byte(i))
		if t[i] == utf8.RuneError {
			t[i] = rune(i)
		}
	}
	for _, b := range []int{0x81, 0x8D, 0x8F, 0x90, 0x9D} {
		t[b] = rune(b)
	}
	return t
}()

func decodeLatin1(raw string) (string, error) {
	ascii := true
	for i := 0; i < len(raw); i++ {
		if raw[i] >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		return raw, nil
	}
	b := make([]byte, 0, len(raw)+len(raw)/2)
	for i := 0; i < len(raw); i++ {
		b = utf8.AppendRune(b, latin1Table[raw[i]])
	}
	return string(b), nil
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
