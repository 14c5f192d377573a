package kafka

// The path half of `producer check`: can the producer reach Kafka and the
// Schema Registry at all. Each check bounds itself (checkTimeout) so that an
// unreachable address fails in seconds instead of retrying for minutes.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/strait-cdc/strait/pkg/cdc"
)

const (
	checkTimeout     = 15 * time.Second // per check, when ctx has no earlier deadline
	checkDialTimeout = 5 * time.Second
)

// CheckKafka connects to brokers and reports, as the results "kafka" and
// "kafka brokers", whether the cluster answers (broker count, controller)
// and whether every broker answers at the address it advertises, which is
// the one clients use for partition leaders. opts (TLS, SASL, ...) come
// after the check's own options and win over them.
func CheckKafka(ctx context.Context, brokers []string, opts ...kgo.Opt) []cdc.CheckResult {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	fix := "check kafka.brokers, network/security groups, TLS/SASL settings"
	if len(brokers) == 0 {
		return []cdc.CheckResult{{Name: "kafka", Status: cdc.Fail, Detail: "no brokers configured", Fix: "set kafka.brokers"}}
	}
	base := []kgo.Opt{kgo.SeedBrokers(brokers...), kgo.DialTimeout(checkDialTimeout), kgo.RequestRetries(2)}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		return []cdc.CheckResult{{Name: "kafka", Status: cdc.Fail, Detail: err.Error(), Fix: fix}}
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	meta, err := adm.BrokerMetadata(ctx)
	if err != nil {
		return []cdc.CheckResult{{Name: "kafka", Status: cdc.Fail,
			Detail: fmt.Sprintf("no broker of %s answers: %v", strings.Join(brokers, ","), err), Fix: fix}}
	}
	addrs := make(map[int32]string, len(meta.Brokers))
	var list []string
	for _, b := range meta.Brokers {
		addrs[b.NodeID] = fmt.Sprintf("%s:%d", b.Host, b.Port)
		list = append(list, fmt.Sprintf("%d at %s", b.NodeID, addrs[b.NodeID]))
	}
	res := []cdc.CheckResult{{Name: "kafka", Status: cdc.Pass,
		Detail: fmt.Sprintf("cluster %s: %d brokers (%s), controller %d", meta.Cluster, len(meta.Brokers), strings.Join(list, ", "), meta.Controller)}}
	if meta.Controller < 0 {
		res[0].Status = cdc.Warn
		res[0].Detail = fmt.Sprintf("cluster %s: %d brokers (%s), no controller", meta.Cluster, len(meta.Brokers), strings.Join(list, ", "))
		res[0].Fix = "check the brokers' logs: a cluster without an active controller cannot create topics or elect leaders"
	}

	// A seed broker may answer while the others advertise an address this
	// host cannot reach (advertised.listeners): producing would then hang.
	r := cdc.CheckResult{Name: "kafka brokers", Status: cdc.Pass, Detail: "every broker answers at its advertised address"}
	versions, err := adm.ApiVersions(ctx)
	if err != nil {
		r.Status, r.Detail, r.Fix = cdc.Fail, err.Error(), fix
		return append(res, r)
	}
	var bad []string
	for _, v := range versions.Sorted() {
		if v.Err != nil {
			bad = append(bad, fmt.Sprintf("broker %d at %s: %v", v.NodeID, addrs[v.NodeID], v.Err))
		}
	}
	if len(bad) > 0 {
		r.Status, r.Detail = cdc.Fail, strings.Join(bad, "; ")
		r.Fix = "make each broker's advertised.listeners reachable from this host; " + fix
	}
	return append(res, r)
}

// CheckRegistry reports, as the result "schema registry", whether the Schema
// Registry at url answers: the number of subjects and the global
// compatibility level. opts (TLS, basic auth, ...) win over the defaults.
func CheckRegistry(ctx context.Context, url string, opts ...sr.ClientOpt) []cdc.CheckResult {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	r := cdc.CheckResult{Name: "schema registry", Status: cdc.Fail,
		Fix: "check kafka.schema_registry_url, network/security groups, TLS and credentials"}
	if url == "" {
		r.Detail, r.Fix = "no URL configured", "set kafka.schema_registry_url"
		return []cdc.CheckResult{r}
	}
	cl, err := sr.NewClient(append([]sr.ClientOpt{sr.URLs(url)}, opts...)...)
	if err != nil {
		r.Detail = fmt.Sprintf("%s: %v", url, err)
		return []cdc.CheckResult{r}
	}
	subjects, err := cl.Subjects(ctx)
	if err != nil {
		r.Detail = fmt.Sprintf("%s: %v", url, err)
		return []cdc.CheckResult{r}
	}
	r.Status, r.Fix = cdc.Pass, ""
	r.Detail = fmt.Sprintf("%s: %d subjects", url, len(subjects))
	if c := cl.Compatibility(ctx); len(c) == 1 && c[0].Err == nil {
		r.Detail += ", global compatibility " + c[0].Level.String()
	}
	return []cdc.CheckResult{r}
}

// CheckStateACLs reports, as the result "kafka state ACLs", who besides
// principal (the producer's, "" when unknown) the brokers' ACLs allow to
// write the topics the producer reads back and acts on: <prefix>._checkpoint,
// _schema_history, _snapshot_plan and _signals. The producer refuses state records it did
// not commit itself, but whoever can write those topics can still make it
// stop, or ask for snapshots. Reading the ACLs back needs DESCRIBE on the
// cluster; without it the result says it could not check.
func CheckStateACLs(ctx context.Context, brokers []string, prefix, principal string, opts ...kgo.Opt) cdc.CheckResult {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	r := cdc.CheckResult{Name: "kafka state ACLs", Status: cdc.Warn}
	topics := []string{prefix + "._checkpoint", prefix + "._schema_history", prefix + "._snapshot_plan", SignalTopic(prefix)}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.DialTimeout(checkDialTimeout), kgo.RequestRetries(2)}, opts...)...)
	if err != nil {
		r.Detail = err.Error()
		return r
	}
	defer cl.Close()
	// Every topic ACL, matched here: brokers differ in how they match a
	// MATCH filter against prefixed and wildcard ACLs.
	filter := kadm.NewACLs().Topics().ResourcePatternType(kadm.ACLPatternAny).Allow().AllowHosts().Operations(kadm.OpAny)
	described, err := kadm.NewClient(cl).DescribeACLs(ctx, filter)
	if err == nil {
		for _, d := range described {
			if err = d.Err; err != nil {
				break
			}
		}
	}
	if err != nil {
		r.Detail = "cannot read the ACLs back, so not checked: " + err.Error()
		r.Fix = "grant this principal DESCRIBE on the cluster to have it checked, or check by hand that only the producer may WRITE " + strings.Join(topics, ", ")
		return r
	}
	var others []string
	ours := false
	for _, d := range described {
		for _, a := range d.Described {
			if a.Permission != kmsg.ACLPermissionTypeAllow || a.Operation != kadm.OpWrite && a.Operation != kadm.OpAll ||
				!slices.ContainsFunc(topics, func(t string) bool { return aclCovers(a, t) }) {
				continue
			}
			if principal != "" && a.Principal == principal {
				ours = true
				continue
			}
			grant := fmt.Sprintf("%s on %s (%s)", a.Principal, a.Name, strings.ToLower(a.Pattern.String()))
			if !slices.Contains(others, grant) {
				others = append(others, grant)
			}
		}
	}
	switch {
	case len(others) > 0:
		r.Detail = "others may WRITE the producer's state and requests: " + strings.Join(others, "; ")
		r.Fix = "remove their WRITE on " + strings.Join(topics, ", ") + " (README, \"Threat model\"): give WRITE on _signals only to whoever may request snapshots"
	case !ours:
		r.Detail = "no ACL allows anyone to WRITE " + strings.Join(topics, ", ") + ": the brokers enforce no ACLs (anyone who reaches them may write), or only super users may"
		r.Fix = "enable an authorizer and grant the producer's principal the README's ACLs (\"Least privilege, in one place\")"
	default:
		r.Status, r.Detail = cdc.Pass, "only "+principal+" may WRITE "+strings.Join(topics, ", ")
	}
	return r
}

// aclCovers reports whether the topic ACL a applies to topic.
func aclCovers(a kadm.DescribedACL, topic string) bool {
	switch a.Pattern {
	case kadm.ACLPatternLiteral:
		return a.Name == topic || a.Name == "*"
	case kadm.ACLPatternPrefixed:
		return strings.HasPrefix(topic, a.Name)
	}
	return false
}
