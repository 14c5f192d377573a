package bqfake

import (
	"google.golang.org/grpc/codes"
)

// faults holds the injected failures; guarded by catalog.mu. They count
// AppendRows requests across all connections, in arrival order.
type faults struct {
	failCode codes.Code
	failLeft int

	dropNext bool

	closeArmed bool
	closeLeft  int
}

// FailAppends makes the next n AppendRows requests fail with code, without
// applying their rows. The failure is sent as the request's response
// (AppendRowsResponse.error), as BigQuery reports request-level errors, so
// the connection stays open. For codes.ResourceExhausted the message is
// BigQuery's throughput-quota one, which managedwriter retries when
// EnableWriteRetries is on (it retries no other RESOURCE_EXHAUSTED).
func (s *Server) FailAppends(code codes.Code, n int) {
	s.cat.mu.Lock()
	defer s.cat.mu.Unlock()
	s.write.faults.failCode, s.write.faults.failLeft = code, n
}

// DropNextResponse makes the next AppendRows request a lost acknowledgement:
// its rows are applied, but instead of its response the stream ends with
// codes.Unavailable. The client sees the append fail (managedwriter with
// EnableWriteRetries resends it on a new stream), although BigQuery holds
// the rows; requests queued behind it on that stream are not processed.
func (s *Server) DropNextResponse() {
	s.cat.mu.Lock()
	defer s.cat.mu.Unlock()
	s.write.faults.dropNext = true
}

// CloseStreamAfter lets n more AppendRows requests complete normally and
// then ends the stream that carried the n-th with codes.Unavailable, as a
// server-side connection reset does. With n = 0 the stream of the next
// request ends before that request is processed. Requests already sent
// behind the last one on that stream are not processed.
func (s *Server) CloseStreamAfter(n int) {
	s.cat.mu.Lock()
	defer s.cat.mu.Unlock()
	s.write.faults.closeArmed, s.write.faults.closeLeft = true, n
}

// fault is what the injected failures do to one request.
type fault struct {
	fail        codes.Code // not OK: respond with this error, skip the rows
	drop        bool       // apply, then end the stream without a response
	closeBefore bool       // end the stream without processing the request
	closeAfter  bool       // respond, then end the stream
}

// takeLocked consumes the injected failures for one request.
func (f *faults) takeLocked() fault {
	if f.closeArmed && f.closeLeft == 0 {
		f.closeArmed = false
		return fault{closeBefore: true}
	}
	var out fault
	switch {
	case f.failLeft > 0:
		f.failLeft--
		out.fail = f.failCode
	case f.dropNext:
		f.dropNext = false
		out.drop = true
	}
	if f.closeArmed {
		f.closeLeft--
		if f.closeLeft == 0 {
			f.closeArmed = false
			out.closeAfter = true
		}
	}
	return out
}
