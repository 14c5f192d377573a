package bigquery

import (
	"context"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/bigquery/storage/managedwriter"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/strait-cdc/strait/pkg/bigquery/bqfake"
)

// TestWriterSchemaNameCollision: the writer schema of a table whose
// columns are named like its generated nested message types (s1, S2) and
// like their normalized names (row_s3) is accepted by the local BigQuery
// and takes a row; a descriptor whose nested type collides with a column
// the way the old names did is refused by it.
func TestWriterSchemaNameCollision(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv, err := bqfake.New()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	bq, err := bigquery.NewClient(ctx, "p", srv.ClientOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	defer bq.Close()
	mw, err := managedwriter.NewClient(ctx, "p", srv.GRPCClientOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	defer mw.Close()
	if err := bq.Dataset("d").Create(ctx, &bigquery.DatasetMetadata{}); err != nil {
		t.Fatal(err)
	}
	geo := bigquery.Schema{{Name: "wkb", Type: bigquery.BytesFieldType}, {Name: "srid", Type: bigquery.IntegerFieldType}}
	schema := bigquery.Schema{
		{Name: "id", Type: bigquery.IntegerFieldType},
		{Name: "s1", Type: bigquery.StringFieldType}, {Name: "S2", Type: bigquery.StringFieldType},
		{Name: "row_s3", Type: bigquery.StringFieldType}, {Name: "row", Type: bigquery.StringFieldType},
		{Name: "g1", Type: bigquery.RecordFieldType, Schema: geo}, {Name: "g2", Type: bigquery.RecordFieldType, Schema: geo},
		{Name: "g3", Type: bigquery.RecordFieldType, Schema: geo},
	}
	if err := bq.Dataset("d").Table("t").Create(ctx, &bigquery.TableMetadata{Schema: schema}); err != nil {
		t.Fatal(err)
	}
	appendOne := func(desc *descriptorpb.DescriptorProto) error {
		s, err := mw.NewManagedStream(ctx, managedwriter.WithDestinationTable(managedwriter.TableParentFromParts("p", "d", "t")),
			managedwriter.WithType(managedwriter.DefaultStream), managedwriter.WithSchemaDescriptor(desc))
		if err != nil {
			return err
		}
		defer s.Close()
		res, err := s.AppendRows(ctx, [][]byte{{}})
		if err != nil {
			return err
		}
		_, err = res.GetResult(ctx)
		return err
	}

	desc, err := writerSchema(schema, false)
	if err != nil {
		t.Fatalf("writer schema: %v", err)
	}
	if err := appendOne(desc); err != nil {
		t.Errorf("append with the writer schema: %v", err)
	}
	for _, n := range desc.GetNestedType() {
		if findColumn(schema, n.GetName()) != nil {
			t.Errorf("nested type %s is named like a column", n.GetName())
		}
	}

	// The names of before: the record g3 got nested type s3, normalized to
	// row_s3, next to the column row_s3.
	clash := proto.Clone(desc).(*descriptorpb.DescriptorProto)
	for _, f := range clash.Field {
		if f.GetName() == "g3" {
			old := f.GetTypeName()
			f.TypeName = proto.String("row_s3")
			for _, n := range clash.NestedType {
				if n.GetName() == old {
					n.Name = proto.String("row_s3")
				}
			}
		}
	}
	if err := appendOne(clash); err == nil {
		t.Errorf("append with a nested type named like column row_s3: no error, want BigQuery to refuse the descriptor")
	}
}

// TestCheckDecimal: the NUMERIC and BIGNUMERIC ranges, at their edges.
func TestCheckDecimal(t *testing.T) {
	const maxBig = bigNumericMaxInt + "." + bigNumericMaxFrc
	tests := []struct {
		text string
		typ  bigquery.FieldType
		ok   bool
	}{
		{"0", bigquery.NumericFieldType, true},
		{"-0.5", bigquery.NumericFieldType, true},
		{numericMaxInt + ".999999999", bigquery.NumericFieldType, true},
		{"-" + numericMaxInt + ".999999999", bigquery.NumericFieldType, true},
		{"1" + numericMaxInt, bigquery.NumericFieldType, false},
		{maxBig, bigquery.BigNumericFieldType, true},
		{"-" + bigNumericMaxInt + "." + bigNumericMinFrc, bigquery.BigNumericFieldType, true},
		{bigNumericMaxInt + "." + bigNumericMinFrc, bigquery.BigNumericFieldType, false},
		{"-" + bigNumericMaxInt + ".34992332820282019728792003956564819969", bigquery.BigNumericFieldType, false},
		{bigNumericMaxInt + ".3", bigquery.BigNumericFieldType, true},
		{bigNumericMaxInt + ".4", bigquery.BigNumericFieldType, false},
		{bigNumericMaxInt, bigquery.BigNumericFieldType, true},
		{"578960446186580977117854925043439539267", bigquery.BigNumericFieldType, false},
		{"99999999999999999999999999999999999999.5", bigquery.BigNumericFieldType, true},
		{"1000000000000000000000000000000000000000", bigquery.BigNumericFieldType, false},
	}
	for _, tt := range tests {
		err := checkDecimal([]byte(tt.text), tt.typ)
		if (err == nil) != tt.ok {
			t.Errorf("checkDecimal(%s, %s) = %v, want ok %v", tt.text, tt.typ, err, tt.ok)
		}
	}
}
