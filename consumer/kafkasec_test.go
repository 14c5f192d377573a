package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/strait-cdc/strait/pkg/kafka"
	"github.com/strait-cdc/strait/pkg/testenv"
)

const (
	secConsumerUser  = "strait-consumer"
	secConsumerPass  = "consumer-secret"
	secRegistryUser  = "strait-sr"
	secRegistryPass  = "registry-secret"
	secConsumerGroup = "strait-bigquery"
)

// consumerACL is one ACL of the consumer's documented minimum (README,
// "Kafka security").
type consumerACL struct {
	name string
	acl  kfake.ACL
}

// consumerACLs are the ACLs the README lists for a consumer of prefix in
// group: READ (which implies DESCRIBE) on the topics <prefix>.*, READ on
// its group, WRITE and CREATE on its dead-letter topic.
func consumerACLs(prefix, group string) []consumerACL {
	dlq := func(op kmsg.ACLOperation) kfake.ACL {
		return kfake.ACL{Resource: kmsg.ACLResourceTypeTopic, Name: prefix + "._dead_letter." + group,
			Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: op, Allow: true}
	}
	return []consumerACL{
		{"topic READ", kfake.ACL{Resource: kmsg.ACLResourceTypeTopic, Name: prefix + ".", Pattern: kmsg.ACLResourcePatternTypePrefixed,
			Operation: kmsg.ACLOperationRead, Allow: true}},
		{"group READ", kfake.ACL{Resource: kmsg.ACLResourceTypeGroup, Name: group, Pattern: kmsg.ACLResourcePatternTypeLiteral,
			Operation: kmsg.ACLOperationRead, Allow: true}},
		{"dead-letter WRITE", dlq(kmsg.ACLOperationWrite)},
		{"dead-letter CREATE", dlq(kmsg.ACLOperationCreate)},
	}
}

// secureEnv is a Kafka cluster reached only over TLS with a client
// certificate and SASL SCRAM-SHA-512, ACLs enforced, and a Schema Registry
// over TLS with basic authentication.
type secureEnv struct {
	certs    *testenv.Certs
	kafka    *kfake.Cluster
	registry string
}

func startSecureEnv(t *testing.T, acls []kfake.ACL) *secureEnv {
	t.Helper()
	sk, err := testenv.StartSecureKafka(t.TempDir(), secConsumerUser, secConsumerPass, secRegistryUser, secRegistryPass, acls...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sk.Close)
	return &secureEnv{certs: sk.Certs, kafka: sk.Kafka, registry: sk.RegistryURL}
}

// security is the kafka.Security of user (password given) on e.
func (e *secureEnv) security(user, pass string) kafka.Security {
	tls := kafka.TLS{Enabled: true, CAFile: e.certs.CAFile, CertFile: e.certs.ClientCertFile, KeyFile: e.certs.ClientKeyFile}
	return kafka.Security{
		TLS:          tls,
		SASL:         kafka.SASL{Mechanism: kafka.MechanismScramSHA512, Username: user, Password: pass},
		RegistryTLS:  kafka.TLS{Enabled: true, CAFile: e.certs.CAFile},
		RegistryAuth: kafka.RegistryAuth{Username: secRegistryUser, Password: secRegistryPass},
	}
}

// publisher is the producer's writer on e as the superuser.
func (e *secureEnv) publisher(t *testing.T, prefix string) *publisher {
	t.Helper()
	cfg := &kafka.Config{}
	cfg.Defaults()
	cfg.Brokers, cfg.RegistryURL, cfg.TopicPrefix, cfg.Partitions = e.kafka.ListenAddrs(), e.registry, prefix, 2
	cfg.Security = e.security(testenv.SecureAdminUser, testenv.SecureAdminPass)
	w, err := kafka.NewWriter(cfg, "test", slog.New(slog.NewTextHandler(io.Discard, nil)), kafka.NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	return &publisher{t: t, w: w}
}

// run runs `consumer run` as strait-consumer on e, the passwords coming
// from the environment, until ctx ends or run returns.
func (e *secureEnv) run(t *testing.T, ctx context.Context, prefix, dataset string) (*consumerProc, context.CancelFunc) {
	t.Helper()
	args := []string{"run",
		"-kafka.brokers", strings.Join(e.kafka.ListenAddrs(), ","), "-kafka.group_id", secConsumerGroup,
		"-kafka.topic_prefix", prefix, "-kafka.schema_registry_url", e.registry, "-kafka.topic_refresh", "1s",
		"-kafka.tls.enabled=true", "-kafka.tls.ca_file", e.certs.CAFile,
		"-kafka.tls.cert_file", e.certs.ClientCertFile, "-kafka.tls.key_file", e.certs.ClientKeyFile,
		"-kafka.sasl.mechanism", "scram-sha-512", "-kafka.sasl.username", secConsumerUser,
		"-kafka.schema_registry_tls.enabled=true", "-kafka.schema_registry_tls.ca_file", e.certs.CAFile,
		"-kafka.schema_registry_auth.username", secRegistryUser,
		"-bigquery.project", project, "-bigquery.dataset", dataset,
		"-bigquery.endpoint", env.bq.RESTURL(), "-bigquery.write_endpoint", env.bq.GRPCAddr(), "-bigquery.insecure=true",
		"-http_addr", "127.0.0.1:0", "-log_format", "text",
	}
	getenv := func(k string) string {
		return map[string]string{
			"STRAIT_KAFKA_SASL_PASSWORD":                 secConsumerPass,
			"STRAIT_KAFKA_SCHEMA_REGISTRY_AUTH_PASSWORD": secRegistryPass,
		}[k]
	}
	runCtx, cancel := context.WithCancel(ctx)
	c := &consumerProc{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		c.err = run(runCtx, args, getenv, io.Discard, &c.logs)
	}()
	t.Cleanup(func() {
		cancel()
		<-c.done
		if t.Failed() {
			t.Logf("consumer log:\n%s", c.logs.String())
		}
	})
	return c, cancel
}

// TestKafkaSecurityLeastPrivilege runs the consumer against a cluster that
// takes TLS with client certificates, SCRAM-SHA-512 and ACLs, and a
// registry behind TLS and basic authentication: with exactly the README's
// ACLs it applies the changes and dead-letters a bad record; without its
// group's READ it stops naming the ACL; without WRITE on its dead-letter
// topic the table stops naming the ACL.
func TestKafkaSecurityLeastPrivilege(t *testing.T) {
	without := func(prefix, missing string) []kfake.ACL {
		var out []kfake.ACL
		for _, a := range consumerACLs(prefix, secConsumerGroup) {
			if a.name != missing {
				out = append(out, a.acl)
			}
		}
		return out
	}
	// badRecord adds a record that is not in the Confluent wire format to
	// prefix's users topic, as the superuser.
	badRecord := func(t *testing.T, ctx context.Context, e *secureEnv, prefix string) {
		t.Helper()
		cl, err := kgo.NewClient(kgo.SeedBrokers(e.kafka.ListenAddrs()...), kgo.DialTLSConfig(e.certs.ClientConfig()),
			kgo.SASL(scram.Auth{User: testenv.SecureAdminUser, Pass: testenv.SecureAdminPass}.AsSha512Mechanism()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: prefix + ".shop.users", Key: []byte("k"), Value: []byte("not avro")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("minimal ACLs", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		const prefix, dataset = "csec", "ds_csec"
		e := startSecureEnv(t, without(prefix, ""))
		pub := e.publisher(t, prefix)
		pub.publish(ctx, ins(users, user(1, "a@x", "1.00")...))
		badRecord(t, ctx, e, prefix)
		pub.publish(ctx, ins(users, user(2, "b@x", "2.00")...))
		c, _ := e.run(t, ctx, prefix, dataset)
		waitRows(t, ctx, dataset, "shop_users", []map[string]any{userRow(1, "a@x", "1.00"), userRow(2, "b@x", "2.00")})
		waitLog(t, ctx, c, regexpQuote("record sent to the dead-letter topic"))
	})

	t.Run("without group READ", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		const prefix, dataset = "csec2", "ds_csec2"
		e := startSecureEnv(t, without(prefix, "group READ"))
		e.publisher(t, prefix).publish(ctx, ins(users, user(1, "a@x", "1.00")...))
		c, _ := e.run(t, ctx, prefix, dataset)
		select {
		case <-c.done:
		case <-ctx.Done():
			t.Fatal("consumer still running at the deadline")
		}
		want := "not authorized to READ group strait-bigquery (ACL missing for User:strait-consumer)"
		if c.err == nil || !strings.Contains(c.err.Error(), want) {
			t.Fatalf("consumer error %v, want one containing %q", c.err, want)
		}
	})

	t.Run("without dead-letter WRITE", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		const prefix, dataset = "csec3", "ds_csec3"
		e := startSecureEnv(t, without(prefix, "dead-letter WRITE"))
		pub := e.publisher(t, prefix)
		pub.publish(ctx, ins(users, user(1, "a@x", "1.00")...))
		badRecord(t, ctx, e, prefix)
		c, _ := e.run(t, ctx, prefix, dataset)
		waitLog(t, ctx, c, regexpQuote("not authorized to WRITE topic csec3._dead_letter.strait-bigquery (ACL missing for User:strait-consumer)"))
	})
}
