package kafka

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/strait-cdc/strait/pkg/cdc"
	"github.com/strait-cdc/strait/pkg/testenv"
)

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// summary is "name STATUS" of each result.
func summary(res []cdc.CheckResult) []string {
	var out []string
	for _, r := range res {
		out = append(out, r.Name+" "+r.Status.String())
	}
	return out
}

func TestCheckKafka(t *testing.T) {
	c, err := testenv.StartKafka(kfake.NumBrokers(3))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	seeds := c.ListenAddrs()
	unreachable := seeds[2]
	// This host cannot reach the third broker at its advertised address.
	partition := kgo.Dialer(func(ctx context.Context, network, host string) (net.Conn, error) {
		if host == unreachable {
			return nil, errors.New("no route to host")
		}
		var d net.Dialer
		return d.DialContext(ctx, network, host)
	})

	// A listener that accepts connections and never answers, like a
	// firewall that lets the handshake through or a non-Kafka port.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close() // open and silent until the listener closes
		}
	}()

	tests := []struct {
		name     string
		brokers  []string
		opts     []kgo.Opt
		deadline time.Duration
		want     []string
		contains string // in the first non-PASS detail, or the first detail
	}{
		{"cluster", seeds[:1], nil, 0, []string{"kafka PASS", "kafka brokers PASS"}, "3 brokers"},
		{"advertised broker unreachable", seeds[:1], []kgo.Opt{partition}, 0, []string{"kafka PASS", "kafka brokers FAIL"}, "broker 2 at " + unreachable + ": unable to dial: no route to host"},
		{"no brokers", nil, nil, 0, []string{"kafka FAIL"}, "no brokers configured"},
		{"nothing listens", []string{closedAddr(t)}, nil, 0, []string{"kafka FAIL"}, "connection refused"},
		{"no answer before the deadline", []string{silent.Addr().String()}, nil, 2 * time.Second, []string{"kafka FAIL"}, "no broker of " + silent.Addr().String()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.deadline == 0 {
				tt.deadline = 30 * time.Second
			}
			ctx, cancel := context.WithTimeout(context.Background(), tt.deadline)
			defer cancel()
			start := time.Now()
			res := CheckKafka(ctx, tt.brokers, tt.opts...)
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("took %v, want a few seconds", took)
			}
			if diff := cmp.Diff(summary(res), tt.want); diff != "" {
				t.Fatalf("(-got +want):\n%s\n%+v", diff, res)
			}
			r := res[0]
			for _, x := range res {
				if x.Status != cdc.Pass {
					r = x
					break
				}
			}
			if !strings.Contains(r.Detail, tt.contains) {
				t.Errorf("%s detail %q, want it to contain %q", r.Name, r.Detail, tt.contains)
			}
			if r.Status == cdc.Fail && !strings.Contains(r.Fix, "kafka.brokers") {
				t.Errorf("%s fix %q", r.Name, r.Fix)
			}
		})
	}
}

func TestCheckRegistry(t *testing.T) {
	reg := testenv.StartRegistry()
	defer reg.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.CreateSchema(ctx, "strait.shop.orders-value", sr.Schema{Schema: `"string"`, Type: sr.TypeAvro}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		url      string
		want     cdc.Status
		contains string
	}{
		{"reachable", reg.URL(), cdc.Pass, "1 subjects, global compatibility BACKWARD"},
		{"nothing listens", "http://" + closedAddr(t), cdc.Fail, "connection refused"},
		{"no URL", "", cdc.Fail, "no URL configured"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			res := CheckRegistry(ctx, tt.url)
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("took %v, want a few seconds", took)
			}
			if len(res) != 1 || res[0].Name != "schema registry" || res[0].Status != tt.want || !strings.Contains(res[0].Detail, tt.contains) {
				t.Fatalf("got %+v, want one schema registry %s containing %q", res, tt.want, tt.contains)
			}
			if tt.want == cdc.Fail && res[0].Fix == "" {
				t.Errorf("FAIL without a fix")
			}
		})
	}
}
