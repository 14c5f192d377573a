package bigquery

import (
	"testing"

	"cloud.google.com/go/bigquery"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/strait-cdc/strait/pkg/sink"
)

// AllTypes is fuzzTable for the package's external tests.
var AllTypes = fuzzTable

// TableColumns returns the columns of the table the consumer creates for
// a value schema: the data columns, then the metadata columns. For the
// type walk (TestTypeWalk); key columns may differ (README, "Primary-key
// columns").
func TableColumns(valueSchema string) (bigquery.Schema, error) {
	p, err := planValue(valueSchema)
	if err != nil {
		return nil, err
	}
	return tableSchema(p), nil
}

// AppendRow returns the row the consumer appends in upsert mode for a
// value body (without the Confluent header) of valueSchema on topic,
// decoded with the table's writer schema. For the type walk.
func AppendRow(t testing.TB, valueSchema string, topic *sink.Topic, body []byte) (protoreflect.Message, error) {
	p, err := planValue(valueSchema)
	if err != nil {
		return nil, err
	}
	ts := tableSchema(p)
	bd, err := bind(p, ts, true)
	if err != nil {
		return nil, err
	}
	row, _, _, err := bd.appendRow(nil, body, 1, topic)
	if err != nil {
		return nil, err
	}
	m := rowMessage(t, ts, true)
	if err := proto.Unmarshal(row, m.Interface()); err != nil {
		return nil, err
	}
	return m, nil
}
