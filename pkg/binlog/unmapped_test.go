package binlog

import (
	"strings"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
)

// A column type the mapping does not know (MySQL 9's VECTOR; no MariaDB
// this suite can start has one) makes the table undecodable with an error
// naming table, column and type, and the way out; it is never guessed at.
func TestUnmappedTypeNamesTableAndColumn(t *testing.T) {
	e := &replication.TableMapEvent{
		Schema: []byte("shop"), Table: []byte("embeddings"), ColumnCount: 2,
		ColumnType: []byte{mysql.MYSQL_TYPE_LONG, mysql.MYSQL_TYPE_VECTOR},
		ColumnMeta: []uint16{0, 4},
		NullBitmap: []byte{0b10},
		ColumnName: [][]byte{[]byte("id"), []byte("embedding")},
	}
	_, err := fromTableMap(e, nil, nil)
	if err == nil {
		t.Fatal("a VECTOR column was mapped")
	}
	for _, want := range []string{"shop.embeddings", "column embedding", "VECTOR", "no mapping"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}
