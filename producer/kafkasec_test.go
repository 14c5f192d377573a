package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/strait-cdc/strait/pkg/testenv"
)

// producerACL is one ACL of the producer's documented minimum (README,
// "Kafka security").
type producerACL struct {
	name string // how the test names it
	acl  kfake.ACL
}

// producerACLs are the ACLs the README lists for a producer of prefix:
// CREATE, WRITE (which implies DESCRIBE) on the topics <prefix>.*, READ on
// the four internal topics it reads back, WRITE on its transactional id.
func producerACLs(prefix string) []producerACL {
	topics := func(op kmsg.ACLOperation) kfake.ACL {
		return kfake.ACL{Resource: kmsg.ACLResourceTypeTopic, Name: prefix + ".", Pattern: kmsg.ACLResourcePatternTypePrefixed, Operation: op, Allow: true}
	}
	read := func(topic string) kfake.ACL {
		return kfake.ACL{Resource: kmsg.ACLResourceTypeTopic, Name: topic, Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: kmsg.ACLOperationRead, Allow: true}
	}
	return []producerACL{
		{"topic CREATE", topics(kmsg.ACLOperationCreate)},
		{"topic WRITE", topics(kmsg.ACLOperationWrite)},
		{"checkpoint READ", read(prefix + "._checkpoint")},
		{"schema history READ", read(prefix + "._schema_history")},
		{"signals READ", read(prefix + "._signals")},
		{"snapshot plan READ", read(prefix + "._snapshot_plan")},
		{"transactional id WRITE", kfake.ACL{Resource: kmsg.ACLResourceTypeTransactionalId, Name: "strait-" + prefix,
			Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: kmsg.ACLOperationWrite, Allow: true}},
	}
}

// secureEnv is a Kafka cluster reached only over TLS with a client
// certificate and SASL SCRAM-SHA-512, ACLs enforced, and a Schema Registry
// over TLS with basic authentication.
type secureEnv struct {
	certs    *testenv.Certs
	kafka    *kfake.Cluster
	registry string // URL
	args     []string
}

const (
	secProducerUser = "strait-producer"
	secProducerPass = "producer-secret"
	secRegistryUser = "strait-sr"
	secRegistryPass = "registry-secret"
)

func startSecureEnv(t *testing.T, acls []kfake.ACL) *secureEnv {
	t.Helper()
	dir := t.TempDir()
	sk, err := testenv.StartSecureKafka(dir, secProducerUser, secProducerPass, secRegistryUser, secRegistryPass, acls...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sk.Close)
	certs, cl := sk.Certs, sk.Kafka
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return &secureEnv{certs: certs, kafka: cl, registry: sk.RegistryURL, args: []string{
		"-kafka.brokers", strings.Join(cl.ListenAddrs(), ","), "-kafka.schema_registry_url", sk.RegistryURL,
		"-kafka.tls.enabled=true", "-kafka.tls.ca_file", certs.CAFile,
		"-kafka.tls.cert_file", certs.ClientCertFile, "-kafka.tls.key_file", certs.ClientKeyFile,
		"-kafka.sasl.mechanism", "scram-sha-512", "-kafka.sasl.username", secProducerUser,
		"-kafka.sasl.password_file", write("kafka-password", secProducerPass),
		"-kafka.schema_registry_tls.enabled=true", "-kafka.schema_registry_tls.ca_file", certs.CAFile,
		"-kafka.schema_registry_auth.username", secRegistryUser,
		"-kafka.schema_registry_auth.password_file", write("registry-password", secRegistryPass),
	}}
}

// adminClient is a superuser's client of the secure cluster, reading
// topics (read_committed) from their start.
func (e *secureEnv) adminClient(t *testing.T, topics ...string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.kafka.ListenAddrs()...), kgo.DialTLSConfig(e.certs.ClientConfig()),
		kgo.SASL(scram.Auth{User: testenv.SecureAdminUser, Pass: testenv.SecureAdminPass}.AsSha512Mechanism()),
		kgo.ConsumeTopics(topics...), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// TestKafkaSecurityLeastPrivilege runs the producer against a cluster that
// takes TLS with client certificates, SCRAM-SHA-512 and ACLs, and a
// registry behind TLS and basic authentication: with exactly the README's
// ACLs it publishes; without one of the key ACLs it stops with an error
// naming the missing permission.
func TestKafkaSecurityLeastPrivilege(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := env.db.Exec(ctx, "", "CREATE DATABASE secure", "CREATE TABLE secure.items (id INT PRIMARY KEY, name VARCHAR(20))"); err != nil {
		t.Fatal(err)
	}
	insert := func(from int) {
		t.Helper()
		if err := env.db.Exec(ctx, "secure", "INSERT INTO items VALUES ("+itoa(from)+", 'a'), ("+itoa(from+1)+", 'b')"); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("minimal ACLs", func(t *testing.T) {
		var acls []kfake.ACL
		for _, a := range producerACLs("sec") {
			acls = append(acls, a.acl)
		}
		e := startSecureEnv(t, acls)
		startProducer(t, producerArgs(t, ctx, "sec", "secure.*", e.args...))
		insert(1)
		cl := e.adminClient(t, "sec.secure.items")
		var got []string
		for len(got) < 2 && ctx.Err() == nil {
			cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, r.Topic) })
		}
		if len(got) != 2 {
			t.Fatalf("got %d records in sec.secure.items, want 2", len(got))
		}
	})

	t.Run("topics created beforehand need no CREATE", func(t *testing.T) {
		var acls []kfake.ACL
		for _, a := range producerACLs("secpre") {
			if a.name != "topic CREATE" {
				acls = append(acls, a.acl)
			}
		}
		e := startSecureEnv(t, acls)
		cl := e.adminClient(t, "secpre.secure.items")
		for _, topic := range []string{"secpre.secure.items", "secpre._checkpoint", "secpre._schema_history", "secpre._schema_changes", "secpre._heartbeat"} {
			if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, -1, nil, topic); err != nil {
				t.Fatal(err)
			}
		}
		startProducer(t, producerArgs(t, ctx, "secpre", "secure.*", e.args...))
		insert(50)
		n := 0
		for n < 2 && ctx.Err() == nil {
			n += cl.PollFetches(ctx).NumRecords()
		}
		if n != 2 {
			t.Fatalf("got %d records in secpre.secure.items, want 2", n)
		}
	})

	for i, tt := range []struct {
		missing string // producerACLs' name of the ACL left out
		want    string // in the producer's error
	}{
		{"transactional id WRITE", "not authorized to WRITE transactional id strait-sec1 (ACL missing for User:strait-producer)"},
		{"topic WRITE", "not authorized to WRITE topic sec2.secure.items (ACL missing for User:strait-producer)"},
		{"topic CREATE", "not authorized to CREATE topic sec3.secure.items (ACL missing for User:strait-producer)"},
	} {
		t.Run("without "+tt.missing, func(t *testing.T) {
			prefix := "sec" + itoa(i+1)
			var acls []kfake.ACL
			for _, a := range producerACLs(prefix) {
				if a.name != tt.missing {
					acls = append(acls, a.acl)
				}
			}
			e := startSecureEnv(t, acls)
			p := startProducer(t, producerArgs(t, ctx, prefix, "secure.*", e.args...))
			insert(100 * (i + 1))
			waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			err := p.wait(t, waitCtx)
			t.Logf("producer error: %v", err)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("producer error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestKafkaSecurityCheckpointRead: a producer that may no longer read its
// checkpoint topic stops naming the ACL, instead of taking the topic for
// missing and publishing everything again.
func TestKafkaSecurityCheckpointRead(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := env.db.Exec(ctx, "", "CREATE DATABASE secure_cp", "CREATE TABLE secure_cp.items (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	var acls []kfake.ACL
	for _, a := range producerACLs("seccp") {
		acls = append(acls, a.acl)
	}
	e := startSecureEnv(t, acls)
	args := producerArgs(t, ctx, "seccp", "secure_cp.*", e.args...)
	p := startProducer(t, args)
	if err := env.db.Exec(ctx, "secure_cp", "INSERT INTO items VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	cl := e.adminClient(t, "seccp._checkpoint")
	for n := 0; n == 0 && ctx.Err() == nil; {
		n = cl.PollFetches(ctx).NumRecords()
	}
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
	deleted, err := kadm.NewClient(cl).DeleteACLs(ctx, kadm.NewACLs().Topics("seccp._checkpoint").
		ResourcePatternType(kadm.ACLPatternLiteral).Operations(kadm.OpRead).Allow("User:"+secProducerUser).AllowHosts("*"))
	if err != nil || len(deleted) != 1 || deleted[0].Err != nil || len(deleted[0].Deleted) != 1 {
		t.Fatalf("delete the checkpoint READ ACL: %v %+v", err, deleted)
	}
	p = startProducer(t, args)
	err = p.wait(t, ctx)
	want := "not authorized to READ topic seccp._checkpoint (ACL missing for User:strait-producer)"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("producer error %v, want one containing %q", err, want)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestCheckStateACLs: `producer check` reads the ACLs back and names any
// other principal allowed to write the producer's state or its requests
// (<prefix>._checkpoint, _schema_history, _signals); with the README's
// minimum (plus DESCRIBE on the cluster, to read them) it passes, and
// without DESCRIBE it says it could not check.
func TestCheckStateACLs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	check := func(e *secureEnv, prefix string) string {
		t.Helper()
		var out strings.Builder
		args := producerArgs(t, ctx, prefix, "secure.*", e.args...)
		args[0] = "check"
		_ = run(ctx, args, func(string) string { return "" }, &out, io.Discard) // the source's own checks are not this test's
		for _, line := range strings.Split(out.String(), "\n") {
			if strings.Contains(line, "kafka state ACLs") {
				return line
			}
		}
		t.Fatalf("producer check printed no kafka state ACLs line:\n%s", out.String())
		return ""
	}
	acls := func(prefix string, describe bool) []kfake.ACL {
		var out []kfake.ACL
		for _, a := range producerACLs(prefix) {
			out = append(out, a.acl)
		}
		if describe {
			out = append(out, kfake.ACL{Resource: kmsg.ACLResourceTypeCluster, Name: "kafka-cluster", Pattern: kmsg.ACLResourcePatternTypeLiteral,
				Operation: kmsg.ACLOperationDescribe, Allow: true})
		}
		return out
	}

	e := startSecureEnv(t, acls("acl1", true))
	if line := check(e, "acl1"); !strings.HasPrefix(line, "PASS") || !strings.Contains(line, "only User:strait-producer may WRITE") {
		t.Errorf("with the minimum: %q, want a pass", line)
	}
	grant := kadm.NewACLs().Topics("acl1._signals").ResourcePatternType(kadm.ACLPatternLiteral).
		Allow("User:mallory").AllowHosts("*").Operations(kadm.OpWrite)
	if _, err := kadm.NewClient(e.adminClient(t)).CreateACLs(ctx, grant); err != nil {
		t.Fatal(err)
	}
	if line := check(e, "acl1"); !strings.HasPrefix(line, "WARN") || !strings.Contains(line, "User:mallory on acl1._signals (literal)") {
		t.Errorf("with another writer: %q, want a warning naming it", line)
	}

	e = startSecureEnv(t, acls("acl2", false))
	if line := check(e, "acl2"); !strings.HasPrefix(line, "WARN") || !strings.Contains(line, "cannot read the ACLs back") {
		t.Errorf("without DESCRIBE: %q, want a warning that it was not checked", line)
	}
}
