package bqfake

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	bq "google.golang.org/api/bigquery/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	_ "google.golang.org/protobuf/types/known/wrapperspb" // so that a schema naming a wrapper type builds
)

// writeService is the Storage Write API (google.cloud.bigquery.storage.v1
// BigQueryWrite) for the _default stream of every table.
type writeService struct {
	storagepb.UnimplementedBigQueryWriteServer
	cat *catalog

	// Guarded by cat.mu.
	faults    faults
	appends   int64 // AppendRows requests received
	unseen    int64 // appends refused for naming columns the Write API does not see yet
	bytes     int64 // their serialized size
	conns     int   // AppendRows connections open
	peakConns int
	onAppend  func(Applied) // see Server.OnAppend
}

// parseDefaultStream splits
// "projects/{p}/datasets/{d}/tables/{t}/streams/_default".
func parseDefaultStream(name string) (project, ds, tbl string, err error) {
	p := strings.Split(name, "/")
	if len(p) != 8 || p[0] != "projects" || p[2] != "datasets" || p[4] != "tables" || p[6] != "streams" {
		return "", "", "", status.Errorf(codes.InvalidArgument, "invalid write stream name %q", name)
	}
	if p[7] != "_default" {
		return "", "", "", status.Errorf(codes.Unimplemented, "bqfake serves only the _default stream, not %q", name)
	}
	return p[1], p[3], p[5], nil
}

// GetWriteStream describes a table's _default stream, with the table schema.
// managedwriter calls it when a ManagedStream is created.
func (w *writeService) GetWriteStream(_ context.Context, req *storagepb.GetWriteStreamRequest) (*storagepb.WriteStream, error) {
	project, ds, tbl, err := parseDefaultStream(req.GetName())
	if err != nil {
		return nil, err
	}
	w.cat.mu.Lock()
	defer w.cat.mu.Unlock()
	t, aerr := w.cat.lookupTableLocked(project, ds, tbl)
	if aerr != nil {
		return nil, status.Error(codes.NotFound, aerr.msg)
	}
	if err := w.cat.streamVisibleLocked(t, req.GetName()); err != nil {
		return nil, err
	}
	return &storagepb.WriteStream{
		Name:        req.GetName(),
		Type:        storagepb.WriteStream_COMMITTED,
		CreateTime:  timestamppb.New(time.UnixMilli(t.meta.CreationTime)),
		TableSchema: storageSchema(w.cat.visibleFields(t)),
		WriteMode:   storagepb.WriteStream_INSERT,
		Location:    t.meta.Location,
	}, nil
}

// connState is what one AppendRows connection remembers between requests.
type connState struct {
	last    string                  // the stream of the previous request
	writers map[string]*writerState // by stream name
}

// writerState is a writer schema sent on a connection for one stream.
type writerState struct {
	desc    protoreflect.MessageDescriptor
	descErr error  // the descriptor does not build
	since   int    // table schema version when the schema was sent
	tbl     *table // the table and metadata revision b was built for
	rev     int
	b       *binding // nil until built
	bindErr error
}

// AppendRows serves the bidi stream. Requests are handled one at a time in
// arrival order, and each gets its response before the next is read, so
// responses come back in request order as the API promises.
func (w *writeService) AppendRows(stream storagepb.BigQueryWrite_AppendRowsServer) error {
	if !w.openConn() {
		// Refused as the answer to the connection's first request: ended
		// before it, the client's send would fail with a bare EOF, and
		// which of the two it reports would depend on timing.
		stream.Recv()
		return errConnQuota
	}
	defer w.closeConn()
	conn := &connState{writers: make(map[string]*writerState)}
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		resp, end := w.append(conn, req)
		if resp != nil {
			if err := stream.Send(resp); err != nil {
				return err
			}
		}
		if end != nil {
			return end
		}
	}
}

// append handles one request. It returns the response to send (nil for
// none) and, when the stream must end, the status to end it with.
func (w *writeService) append(conn *connState, req *storagepb.AppendRowsRequest) (*storagepb.AppendRowsResponse, error) {
	size := proto.Size(req)
	w.cat.mu.Lock()
	w.appends++
	w.bytes += int64(size)
	f := w.faults.takeLocked()
	w.cat.mu.Unlock()

	if f.closeBefore {
		return nil, status.Error(codes.Unavailable, "bqfake: stream closed (CloseStreamAfter)")
	}
	name := req.GetWriteStream()
	if name == "" {
		name = conn.last
	}
	if name == "" {
		// BigQuery ends the connection when the first request names no stream.
		return nil, status.Error(codes.InvalidArgument, "the first AppendRows request of a connection must set write_stream")
	}
	conn.last = name
	// The connection takes the writer schema even from a request that then
	// fails, so later requests without one can use it.
	w.takeSchema(conn, name, req)

	var resp *storagepb.AppendRowsResponse
	if f.fail != codes.OK {
		msg := fmt.Sprintf("bqfake: injected %v", f.fail)
		if f.fail == codes.ResourceExhausted {
			msg = "Exceeds 'AppendRows throughput' quota, user_id: bqfake (status: INSUFFICIENT_TOKENS), you can issue a raise quota request through Google Cloud Console."
		}
		resp = errorResponse(name, f.fail, msg)
	} else {
		resp = w.appendRows(conn, name, req, size)
	}
	switch {
	case f.drop:
		return nil, status.Error(codes.Unavailable, "bqfake: connection reset after the request was applied (DropNextResponse)")
	case f.closeAfter:
		return resp, status.Error(codes.Unavailable, "bqfake: stream closed (CloseStreamAfter)")
	}
	return resp, nil
}

// takeSchema records the writer schema a request carries, if any.
func (w *writeService) takeSchema(conn *connState, name string, req *storagepb.AppendRowsRequest) {
	sch := req.GetProtoRows().GetWriterSchema()
	if sch == nil {
		return
	}
	ws := &writerState{}
	ws.desc, ws.descErr = messageDescriptor(sch.GetProtoDescriptor())
	if project, ds, tbl, err := parseDefaultStream(name); err == nil {
		w.cat.mu.Lock()
		if t, aerr := w.cat.lookupTableLocked(project, ds, tbl); aerr == nil {
			ws.since = t.version
		}
		w.cat.mu.Unlock()
	}
	conn.writers[name] = ws
}

func errorResponse(stream string, code codes.Code, msg string) *storagepb.AppendRowsResponse {
	st := status.New(code, msg+" Entity: "+stream)
	return &storagepb.AppendRowsResponse{
		Response:    &storagepb.AppendRowsResponse_Error{Error: st.Proto()},
		WriteStream: stream,
	}
}

// appendRows validates a request and, when every row is valid, applies it.
// A request is all or nothing: any bad row rejects the batch with
// INVALID_ARGUMENT and one RowError per bad row.
func (w *writeService) appendRows(conn *connState, name string, req *storagepb.AppendRowsRequest, size int) *storagepb.AppendRowsResponse {
	project, ds, tbl, err := parseDefaultStream(name)
	if err != nil {
		st := status.Convert(err)
		return errorResponse(name, st.Code(), st.Message())
	}
	switch {
	case req.GetOffset() != nil:
		return errorResponse(name, codes.InvalidArgument, "offset is not supported on the _default stream.")
	case size > maxAppendBytes:
		return errorResponse(name, codes.InvalidArgument, fmt.Sprintf("AppendRows request too large: %d limit %d", size, maxAppendBytes))
	case req.GetProtoRows() == nil:
		return errorResponse(name, codes.InvalidArgument, "bqfake accepts proto rows only (CDC requires them)")
	}
	pr := req.GetProtoRows()

	// Rows are decoded without the lock, so that requests to other tables
	// are decoded meanwhile, and applied under it unless the table changed
	// in between: then the request is taken again, as a whole, under it.
	ws := conn.writers[name]
	w.cat.mu.Lock()
	t, resp := w.bindLocked(ws, name, project, ds, tbl)
	var rev int
	if t != nil {
		rev = t.rev
	}
	w.cat.mu.Unlock()
	if resp != nil {
		return resp
	}
	changes, resp := decodeRows(ws.b, name, pr.GetRows().GetSerializedRows())
	w.cat.mu.Lock()
	defer w.cat.mu.Unlock()
	if now, _ := w.cat.lookupTableLocked(project, ds, tbl); now != t || t.rev != rev {
		if t, resp = w.bindLocked(ws, name, project, ds, tbl); resp != nil {
			return resp
		}
		changes, resp = decodeRows(ws.b, name, pr.GetRows().GetSerializedRows())
	}
	if resp != nil {
		return resp
	}
	pk := t.primaryKey()
	now := w.cat.now()
	w.cat.expireDeletesLocked(t, now)
	for _, c := range changes {
		t.apply(c, pk)
		t.noteDelete(c, pk, now)
	}
	w.observeLocked(project, ds, tbl, changes)
	resp = &storagepb.AppendRowsResponse{
		Response:    &storagepb.AppendRowsResponse_AppendResult_{AppendResult: &storagepb.AppendRowsResponse_AppendResult{}},
		WriteStream: name,
	}
	if t.version != ws.since {
		// The table schema changed after the writer sent its schema: tell it,
		// as BigQuery does, so that it can pick up new columns.
		resp.UpdatedSchema = storageSchema(w.cat.visibleFields(t))
	}
	return resp
}

// bindLocked checks that the stream's table takes rows of the writer
// schema ws and binds ws to it; a non-nil response refuses the request.
// catalog.mu is held.
func (w *writeService) bindLocked(ws *writerState, name, project, ds, tbl string) (*table, *storagepb.AppendRowsResponse) {
	t, aerr := w.cat.lookupTableLocked(project, ds, tbl)
	if aerr != nil {
		return nil, errorResponse(name, codes.NotFound, aerr.msg)
	}
	if t.meta.Type == "VIEW" {
		return nil, errorResponse(name, codes.InvalidArgument, fmt.Sprintf("Cannot write to view %s", t.meta.Id))
	}
	if err := w.cat.streamVisibleLocked(t, name); err != nil {
		st := status.Convert(err)
		return nil, &storagepb.AppendRowsResponse{Response: &storagepb.AppendRowsResponse_Error{Error: st.Proto()}, WriteStream: name}
	}
	switch {
	case ws == nil:
		return nil, errorResponse(name, codes.InvalidArgument, "No writer schema: the first request for a stream on a connection must set proto_rows.writer_schema")
	case ws.descErr != nil:
		return nil, errorResponse(name, codes.InvalidArgument, fmt.Sprintf("Invalid proto schema: %v", ws.descErr))
	}
	if ws.tbl != t || ws.rev != t.rev {
		ws.b, ws.bindErr = bindTable(ws.desc, t)
		ws.tbl, ws.rev = t, t.rev
	}
	if resp := w.extraFieldsLocked(t, ws.desc, name); resp != nil {
		return nil, resp
	}
	if ws.bindErr != nil {
		return nil, errorResponse(name, codes.InvalidArgument, ws.bindErr.Error())
	}
	return t, nil
}

// decodeRows decodes every row with b; a non-nil response refuses the
// request with one RowError per bad row (a request is all or nothing).
// The binding only reads column definitions, which a table never changes
// in place (setMeta replaces them), so no lock is needed.
func decodeRows(b *binding, name string, rows [][]byte) ([]change, *storagepb.AppendRowsResponse) {
	changes := make([]change, 0, len(rows))
	var rowErrs []*storagepb.RowError
	for i, raw := range rows {
		c, err := b.decodeRow(raw)
		if err != nil {
			rowErrs = append(rowErrs, &storagepb.RowError{Index: int64(i), Code: storagepb.RowError_FIELDS_ERROR, Message: err.Error()})
			continue
		}
		changes = append(changes, c)
	}
	if len(rowErrs) > 0 {
		resp := errorResponse(name, codes.InvalidArgument, "Errors found while processing rows. Please refer to the row_errors field for details. The list may not be complete because of the size limitations.")
		resp.RowErrors = rowErrs
		return nil, resp
	}
	return changes, nil
}

// messageDescriptor builds the writer's message from the DescriptorProto
// sent in ProtoSchema: a self-contained message whose nested types hold
// every message it uses (managedwriter's adapt.NormalizeDescriptor makes
// one), placed in a synthetic proto2 file. References to well-known types
// resolve against the global registry, so that such a schema builds and
// fails on its column types, as it does in BigQuery.
func messageDescriptor(dp *descriptorpb.DescriptorProto) (protoreflect.MessageDescriptor, error) {
	if dp == nil {
		return nil, errors.New("proto_descriptor is empty")
	}
	deps := map[string]bool{}
	collectDeps(dp, deps)
	fdp := &descriptorpb.FileDescriptorProto{
		Name:        proto.String("bqfake/writer_schema.proto"),
		MessageType: []*descriptorpb.DescriptorProto{dp},
	}
	for d := range deps {
		fdp.Dependency = append(fdp.Dependency, d)
	}
	fd, err := protodesc.NewFile(fdp, protoregistry.GlobalFiles)
	if err != nil {
		return nil, err
	}
	return fd.Messages().Get(0), nil
}

// collectDeps finds the files of the well-known types dp refers to.
func collectDeps(dp *descriptorpb.DescriptorProto, deps map[string]bool) {
	for _, f := range dp.GetField() {
		tn := strings.TrimPrefix(f.GetTypeName(), ".")
		if !strings.HasPrefix(tn, "google.protobuf.") {
			continue
		}
		if d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(tn)); err == nil {
			deps[d.ParentFile().Path()] = true
		}
	}
	for _, n := range dp.GetNestedType() {
		collectDeps(n, deps)
	}
}

// storageSchema converts a REST schema to the Storage API's.
func storageSchema(fs []*bq.TableFieldSchema) *storagepb.TableSchema {
	return &storagepb.TableSchema{Fields: storageFields(fs)}
}

var storageTypes = map[string]storagepb.TableFieldSchema_Type{
	"STRING": storagepb.TableFieldSchema_STRING, "INT64": storagepb.TableFieldSchema_INT64,
	"FLOAT64": storagepb.TableFieldSchema_DOUBLE, "STRUCT": storagepb.TableFieldSchema_STRUCT,
	"BYTES": storagepb.TableFieldSchema_BYTES, "BOOL": storagepb.TableFieldSchema_BOOL,
	"TIMESTAMP": storagepb.TableFieldSchema_TIMESTAMP, "DATE": storagepb.TableFieldSchema_DATE,
	"TIME": storagepb.TableFieldSchema_TIME, "DATETIME": storagepb.TableFieldSchema_DATETIME,
	"GEOGRAPHY": storagepb.TableFieldSchema_GEOGRAPHY, "NUMERIC": storagepb.TableFieldSchema_NUMERIC,
	"BIGNUMERIC": storagepb.TableFieldSchema_BIGNUMERIC, "JSON": storagepb.TableFieldSchema_JSON,
}

var storageModes = map[string]storagepb.TableFieldSchema_Mode{
	"NULLABLE": storagepb.TableFieldSchema_NULLABLE,
	"REQUIRED": storagepb.TableFieldSchema_REQUIRED,
	"REPEATED": storagepb.TableFieldSchema_REPEATED,
}

func storageFields(fs []*bq.TableFieldSchema) []*storagepb.TableFieldSchema {
	out := make([]*storagepb.TableFieldSchema, 0, len(fs))
	for _, f := range fs {
		out = append(out, &storagepb.TableFieldSchema{
			Name:        f.Name,
			Type:        storageTypes[normType(f.Type)],
			Mode:        storageModes[mode(f)],
			Fields:      storageFields(f.Fields),
			Description: f.Description,
			MaxLength:   f.MaxLength,
			Precision:   f.Precision,
			Scale:       f.Scale,
		})
	}
	return out
}
