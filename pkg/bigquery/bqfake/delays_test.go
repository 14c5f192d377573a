package bqfake_test

import (
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	storage "cloud.google.com/go/bigquery/storage/apiv1"
	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"cloud.google.com/go/bigquery/storage/managedwriter"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strait-cdc/strait/pkg/bigquery/bqfake"
)

// TestSchemaDelay: a new column is refused on the Write API with
// SCHEMA_MISMATCH_EXTRA_FIELDS until the schema delay has passed; the
// old columns are written meanwhile.
func TestSchemaDelay(t *testing.T) {
	clock := bqfake.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	e := newEnv(t, bqfake.WithClock(clock), bqfake.WithSchemaDelay(bqfake.DefaultSchemaDelay))
	e.createTable(t, "users", cdcTable())
	grown := append(append(bigquery.Schema{}, cdcSchema...), &bigquery.FieldSchema{Name: "email", Type: bigquery.StringFieldType})
	if _, err := e.bq.Dataset(dsID).Table("users").Update(e.ctx, bigquery.TableMetadataToUpdate{Schema: grown}, ""); err != nil {
		t.Fatal(err)
	}
	row := map[string]any{"id": int64(1), "name": "a", "email": "a@x", "_CHANGE_TYPE": "UPSERT"}

	w := e.newWriter(t, "users", grown, true)
	_, err := w.append(e.ctx, t, row)
	wantCode(t, err, codes.InvalidArgument)
	if got := storageErrorCode(err); got != storagepb.StorageError_SCHEMA_MISMATCH_EXTRA_FIELDS {
		t.Fatalf("storage error code = %v (%v), want SCHEMA_MISMATCH_EXTRA_FIELDS", got, err)
	}
	old := e.newWriter(t, "users", cdcSchema, true)
	if _, err := old.append(e.ctx, t, map[string]any{"id": int64(2), "name": "b", "_CHANGE_TYPE": "UPSERT"}); err != nil {
		t.Fatalf("old columns within the delay: %v", err)
	}

	clock.Advance(bqfake.DefaultSchemaDelay - time.Second)
	_, err = w.append(e.ctx, t, row)
	wantCode(t, err, codes.InvalidArgument)
	clock.Advance(time.Second)
	if _, err := w.append(e.ctx, t, row); err != nil {
		t.Fatalf("after the delay: %v", err)
	}
	want := []map[string]any{{"id": int64(1), "name": "a", "email": "a@x"}, {"id": int64(2), "name": "b", "email": nil}}
	if diff := cmp.Diff(e.rows(t, "users"), want); diff != "" {
		t.Errorf("rows (-got +want):\n%s", diff)
	}
}

// storageErrorCode is the StorageError detail of a Write API error.
func storageErrorCode(err error) storagepb.StorageError_StorageErrorCode {
	st, _ := status.FromError(err)
	for _, d := range st.Details() {
		if se, ok := d.(*storagepb.StorageError); ok {
			return se.GetCode()
		}
	}
	return storagepb.StorageError_STORAGE_ERROR_CODE_UNSPECIFIED
}

// TestRecreateDelay: the default stream of a table deleted and created
// again answers NOT_FOUND for the re-create delay; a table created for the
// first time does not.
func TestRecreateDelay(t *testing.T) {
	clock := bqfake.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	e := newEnv(t, bqfake.WithClock(clock), bqfake.WithRecreateDelay(bqfake.DefaultRecreateDelay))
	e.createTable(t, "users", cdcTable())
	row := map[string]any{"id": int64(1), "name": "a", "_CHANGE_TYPE": "UPSERT"}
	if _, err := e.newWriter(t, "users", cdcSchema, true).append(e.ctx, t, row); err != nil {
		t.Fatalf("new table: %v", err)
	}
	if err := e.bq.Dataset(dsID).Table("users").Delete(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.createTable(t, "users", cdcTable())

	_, err := e.mw.NewManagedStream(e.ctx,
		managedwriter.WithDestinationTable(managedwriter.TableParentFromParts(project, dsID, "users")),
		managedwriter.WithType(managedwriter.DefaultStream))
	wantCode(t, err, codes.NotFound)

	clock.Advance(bqfake.DefaultRecreateDelay)
	if _, err := e.newWriter(t, "users", cdcSchema, true).append(e.ctx, t, row); err != nil {
		t.Fatalf("after the delay: %v", err)
	}
	if got := len(e.rows(t, "users")); got != 1 {
		t.Errorf("rows = %d, want 1", got)
	}
}

// TestDeleteRetention: within the retention a delete keeps an older
// upsert out; after it the delete is forgotten and the older upsert brings
// the row back.
func TestDeleteRetention(t *testing.T) {
	clock := bqfake.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	e := newEnv(t, bqfake.WithClock(clock))
	e.createTable(t, "users", cdcTable())
	w := e.newWriter(t, "users", cdcSchema, true)
	up := map[string]any{"id": int64(1), "name": "old", "_CHANGE_TYPE": "UPSERT", "_CHANGE_SEQUENCE_NUMBER": "1"}
	del := map[string]any{"id": int64(1), "_CHANGE_TYPE": "DELETE", "_CHANGE_SEQUENCE_NUMBER": "2"}
	for _, r := range []map[string]any{up, del} {
		if _, err := w.append(e.ctx, t, r); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(bqfake.DefaultDeleteRetention - time.Minute)
	if _, err := w.append(e.ctx, t, up); err != nil {
		t.Fatal(err)
	}
	if got := e.rows(t, "users"); len(got) != 0 {
		t.Fatalf("within the retention: rows = %v, want none", got)
	}
	clock.Advance(time.Minute)
	if _, err := w.append(e.ctx, t, up); err != nil {
		t.Fatal(err)
	}
	want := []map[string]any{{"id": int64(1), "name": "old"}}
	if diff := cmp.Diff(e.rows(t, "users"), want); diff != "" {
		t.Errorf("after the retention (-got +want):\n%s", diff)
	}
}

// TestConnectionQuota: an AppendRows connection beyond the project's
// quota is refused with RESOURCE_EXHAUSTED; closing one frees its place.
func TestConnectionQuota(t *testing.T) {
	e := newEnv(t, bqfake.WithMaxConnections(2))
	for _, name := range []string{"a", "b", "c"} {
		e.createTable(t, name, cdcTable())
	}
	row := map[string]any{"id": int64(1), "name": "x", "_CHANGE_TYPE": "UPSERT"}
	a := e.newWriter(t, "a", cdcSchema, true)
	b := e.newWriter(t, "b", cdcSchema, true)
	for _, w := range []*writer{a, b} {
		if _, err := w.append(e.ctx, t, row); err != nil {
			t.Fatal(err)
		}
	}
	if got := e.srv.Connections(); got != 2 {
		t.Fatalf("Connections() = %d, want 2", got)
	}
	_, err := e.newWriter(t, "c", cdcSchema, true).append(e.ctx, t, row)
	wantCode(t, err, codes.ResourceExhausted)

	a.ms.Close()
	waitFor(t, func() bool { return e.srv.Connections() < 2 })
	if _, err := e.newWriter(t, "c", cdcSchema, true).append(e.ctx, t, row); err != nil {
		t.Fatalf("after a connection closed: %v", err)
	}
	if got := e.srv.PeakConnections(); got != 2 {
		t.Errorf("PeakConnections() = %d, want 2", got)
	}
}

// waitFor waits, up to a deadline, for cond.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDefaultQuotaByLocation: the default connection quota is the
// multi-region one in US and EU and the regional one elsewhere.
func TestDefaultQuotaByLocation(t *testing.T) {
	for loc, want := range map[string]int{"US": bqfake.MultiRegionConnections, "EU": bqfake.MultiRegionConnections, "europe-west1": bqfake.RegionalConnections} {
		srv, err := bqfake.New(bqfake.WithLocation(loc))
		if err != nil {
			t.Fatal(err)
		}
		if got := srv.MaxConnections(); got != want {
			t.Errorf("%s: MaxConnections() = %d, want %d", loc, got, want)
		}
		srv.Close()
	}
}

// TestBackgroundApply: by default the Storage Read API sees a CDC table
// as of its last background apply, at most max_staleness old, and refuses
// a CDC table without max_staleness; WithoutBackgroundApply reads it as it
// is now.
func TestBackgroundApply(t *testing.T) {
	clock := bqfake.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	e := newEnv(t, bqfake.WithClock(clock))
	rc, err := storage.NewBigQueryReadClient(e.ctx, e.srv.GRPCClientOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	count := func(table string) (int64, error) {
		sess, err := rc.CreateReadSession(e.ctx, &storagepb.CreateReadSessionRequest{
			Parent: "projects/" + project,
			ReadSession: &storagepb.ReadSession{
				Table:      "projects/" + project + "/datasets/" + dsID + "/tables/" + table,
				DataFormat: storagepb.DataFormat_AVRO,
			},
		})
		return sess.GetEstimatedRowCount(), err
	}
	md := cdcTable()
	md.MaxStaleness = &bigquery.IntervalValue{Minutes: 15}
	e.createTable(t, "users", md)
	w := e.newWriter(t, "users", cdcSchema, true)
	if _, err := w.append(e.ctx, t, map[string]any{"id": int64(1), "name": "a", "_CHANGE_TYPE": "UPSERT"}); err != nil {
		t.Fatal(err)
	}
	if n, err := count("users"); err != nil || n != 1 {
		t.Fatalf("first read: %d rows (%v), want 1", n, err)
	}
	if _, err := w.append(e.ctx, t, map[string]any{"id": int64(2), "name": "b", "_CHANGE_TYPE": "UPSERT"}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(15*time.Minute - time.Second)
	if n, err := count("users"); err != nil || n != 1 {
		t.Fatalf("within max_staleness: %d rows (%v), want 1 (as of the last apply)", n, err)
	}
	clock.Advance(time.Second)
	if n, err := count("users"); err != nil || n != 2 {
		t.Fatalf("after max_staleness: %d rows (%v), want 2", n, err)
	}

	e.createTable(t, "fresh", cdcTable())
	_, err = count("fresh")
	wantCode(t, err, codes.FailedPrecondition)

	live := newEnv(t, bqfake.WithClock(clock), bqfake.WithoutBackgroundApply())
	lrc, err := storage.NewBigQueryReadClient(live.ctx, live.srv.GRPCClientOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	defer lrc.Close()
	live.createTable(t, "fresh", cdcTable())
	lw := live.newWriter(t, "fresh", cdcSchema, true)
	if _, err := lw.append(live.ctx, t, map[string]any{"id": int64(1), "name": "a", "_CHANGE_TYPE": "UPSERT"}); err != nil {
		t.Fatal(err)
	}
	sess, err := lrc.CreateReadSession(live.ctx, &storagepb.CreateReadSessionRequest{
		Parent: "projects/" + project,
		ReadSession: &storagepb.ReadSession{
			Table:      "projects/" + project + "/datasets/" + dsID + "/tables/fresh",
			DataFormat: storagepb.DataFormat_AVRO,
		},
	})
	if err != nil || sess.GetEstimatedRowCount() != 1 {
		t.Fatalf("WithoutBackgroundApply, no max_staleness: %d rows (%v), want 1", sess.GetEstimatedRowCount(), err)
	}
}
