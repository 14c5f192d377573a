package kafka

// offsets.go is the replay side of the consumer group: choosing table
// topics, and moving the group's committed offsets back (or forward) while
// no member runs (`consumer reset`).

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TopicFilter selects table topics of one prefix. Its specification is a
// comma-separated list; an entry starting with '^' is a regular expression
// matched against whole topic names, any other entry names one table,
// either as <database>.<table> or as the full topic <prefix>.<database>.<table>.
// The empty specification selects every table topic of the prefix.
type TopicFilter struct {
	prefix string
	tables *regexp.Regexp // every table topic of the prefix
	exact  map[string]string
	res    []*regexp.Regexp
}

// NewTopicFilter parses spec (see TopicFilter) for prefix.
func NewTopicFilter(prefix, spec string) (*TopicFilter, error) {
	f := &TopicFilter{prefix: prefix, tables: regexp.MustCompile(TopicPattern(prefix)), exact: map[string]string{}}
	for _, e := range strings.Split(spec, ",") {
		switch e = strings.TrimSpace(e); {
		case e == "":
		case strings.HasPrefix(e, "^"):
			re, err := regexp.Compile(e)
			if err != nil {
				return nil, fmt.Errorf("topic filter %q: %w", e, err)
			}
			f.res = append(f.res, re)
		default:
			f.exact[e] = e
			f.exact[prefix+"."+e] = e
		}
	}
	return f, nil
}

// All reports whether the filter selects every table topic.
func (f *TopicFilter) All() bool { return len(f.exact) == 0 && len(f.res) == 0 }

// Match reports whether topic is a selected table topic.
func (f *TopicFilter) Match(topic string) bool {
	if !f.tables.MatchString(topic) {
		return false
	}
	if f.All() || f.exact[topic] != "" {
		return true
	}
	for _, re := range f.res {
		if re.MatchString(topic) {
			return true
		}
	}
	return false
}

// Patterns are regular expressions for kgo.ConsumeRegex that cover every
// selected topic (they may cover more; Match decides).
func (f *TopicFilter) Patterns() []string {
	if f.All() {
		return []string{TopicPattern(f.prefix)}
	}
	var out []string
	for t := range f.exact {
		out = append(out, `^`+regexp.QuoteMeta(t)+`$`)
	}
	for _, re := range f.res {
		out = append(out, re.String())
	}
	slices.Sort(out)
	return out
}

// Admin reads and moves the committed offsets of consumer groups.
type Admin struct {
	client *kgo.Client
	adm    *kadm.Client
}

// NewAdmin connects to brokers. opts are extra client options (security,
// tests).
func NewAdmin(brokers []string, log *slog.Logger, opts ...kgo.Opt) (*Admin, error) {
	base := []kgo.Opt{kgo.SeedBrokers(brokers...), withLog(log)}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	return &Admin{client: cl, adm: kadm.NewClient(cl)}, nil
}

// Close closes the client.
func (a *Admin) Close() { a.client.Close() }

// Topics returns the existing topics f selects, sorted. A table named in f
// that has no topic is an error, and so is selecting nothing.
func (a *Admin) Topics(ctx context.Context, f *TopicFilter) ([]string, error) {
	listed, err := a.adm.ListTopics(ctx)
	if err != nil {
		return nil, fmt.Errorf("list topics: %w", err)
	}
	var out []string
	found := map[string]bool{}
	for _, t := range listed.Names() {
		if f.Match(t) {
			out = append(out, t)
			found[f.exact[t]] = true
		}
	}
	var errs []error
	for _, e := range f.exact {
		if !found[e] {
			errs = append(errs, fmt.Errorf("no table topic %s (nor %s.%s)", e, f.prefix, e))
			found[e] = true // once per entry
		}
	}
	if len(out) == 0 && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("no table topic of prefix %s is selected", f.prefix))
	}
	slices.Sort(out)
	return out, errors.Join(errs...)
}

// ResetTarget is where Reset moves a group: exactly one of Earliest (the
// first offset still in each partition), AfterMilli (the first record at or
// after that time, ms since the epoch, or the end of a partition without
// one) and Offsets (explicit offsets by topic and partition) is set.
type ResetTarget struct {
	Earliest   bool
	AfterMilli *int64
	Offsets    map[string]map[int32]int64
}

// OffsetMove is one partition's committed offset before and after Reset.
type OffsetMove struct {
	Topic     string
	Partition int32
	Old       int64 // -1: the group had no committed offset
	New       int64
}

// GroupActiveError is Reset refusing a group that has live members: their
// own commits would overwrite the reset, or they would go on from the
// offsets they hold.
type GroupActiveError struct {
	Group   string
	State   string
	Members []string // client id and host of each member
}

// Error names the group, its members and the fix.
func (e *GroupActiveError) Error() string {
	return fmt.Sprintf("group %s has %d live member(s) (state %s: %s); stop every `consumer run` of the group (e.g. scale it to 0) and reset again",
		e.Group, len(e.Members), e.State, strings.Join(e.Members, ", "))
}

// Reset moves the committed offsets of group, for every partition of
// topics (or, for explicit offsets, of the partitions named), to target
// and returns the moves, sorted. It refuses (*GroupActiveError) while the
// group has live members; a member joining between the check and the
// commit makes the broker reject the commit, since it comes from outside
// the group's generation. With dryRun nothing is committed, so a group
// with live members is no obstacle: the moves are returned together with
// the *GroupActiveError that a real reset would meet.
func (a *Admin) Reset(ctx context.Context, group string, topics []string, target ResetTarget, dryRun bool) ([]OffsetMove, error) {
	described, err := a.adm.DescribeGroups(ctx, group)
	if err != nil {
		return nil, fmt.Errorf("describe group %s: %w", group, err)
	}
	d := described[group]
	if errors.Is(d.Err, kerr.GroupIDNotFound) { // never used: nothing runs
		d.Err, d.Members, d.State = nil, nil, "Dead"
	}
	if d.Err != nil {
		return nil, fmt.Errorf("describe group %s: %w", group, d.Err)
	}
	var active error
	if len(d.Members) > 0 || (d.State != "Empty" && d.State != "Dead" && d.State != "") {
		ae := &GroupActiveError{Group: group, State: d.State}
		for _, m := range d.Members {
			ae.Members = append(ae.Members, m.ClientID+"@"+m.ClientHost)
		}
		if !dryRun {
			return nil, ae
		}
		active = ae
	}

	want, err := a.targetOffsets(ctx, topics, target)
	if err != nil {
		return nil, err
	}
	committed, err := a.adm.FetchOffsets(ctx, group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		committed, err = nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("fetch offsets of group %s: %w", group, err)
	}
	var moves []OffsetMove
	commit := kadm.Offsets{}
	for topic, ps := range want {
		for p, at := range ps {
			old := int64(-1)
			if c, ok := committed.Lookup(topic, p); ok && c.Err == nil {
				old = c.At
			}
			moves = append(moves, OffsetMove{Topic: topic, Partition: p, Old: old, New: at})
			commit.Add(kadm.Offset{Topic: topic, Partition: p, At: at, LeaderEpoch: -1})
		}
	}
	slices.SortFunc(moves, func(x, y OffsetMove) int {
		if c := strings.Compare(x.Topic, y.Topic); c != 0 {
			return c
		}
		return int(x.Partition - y.Partition)
	})
	if dryRun || len(moves) == 0 {
		return moves, active
	}
	resp, err := a.adm.CommitOffsets(ctx, group, commit)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("commit offsets of group %s: %w", group, err)
	}
	return moves, nil
}

// targetOffsets resolves target into offsets by topic and partition.
// Explicit offsets must lie between a partition's start and end offsets.
func (a *Admin) targetOffsets(ctx context.Context, topics []string, target ResetTarget) (map[string]map[int32]int64, error) {
	if target.Offsets != nil {
		topics = topics[:0:0]
		for t := range target.Offsets {
			topics = append(topics, t)
		}
	}
	starts, err := a.adm.ListStartOffsets(ctx, topics...)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list start offsets of %s: %w", strings.Join(topics, ","), err)
	}
	out := map[string]map[int32]int64{}
	set := func(topic string, p int32, at int64) {
		if out[topic] == nil {
			out[topic] = map[int32]int64{}
		}
		out[topic][p] = at
	}
	switch {
	case target.Earliest:
		starts.Each(func(o kadm.ListedOffset) { set(o.Topic, o.Partition, o.Offset) })
	case target.AfterMilli != nil:
		after, err := a.adm.ListOffsetsAfterMilli(ctx, *target.AfterMilli, topics...)
		if err == nil {
			err = after.Error()
		}
		if err != nil {
			return nil, fmt.Errorf("list offsets after %d ms: %w", *target.AfterMilli, err)
		}
		after.Each(func(o kadm.ListedOffset) { set(o.Topic, o.Partition, o.Offset) })
	case target.Offsets != nil:
		ends, err := a.adm.ListEndOffsets(ctx, topics...)
		if err == nil {
			err = ends.Error()
		}
		if err != nil {
			return nil, fmt.Errorf("list end offsets of %s: %w", strings.Join(topics, ","), err)
		}
		var errs []error
		for topic, ps := range target.Offsets {
			for p, at := range ps {
				start, ok := starts.Lookup(topic, p)
				end, _ := ends.Lookup(topic, p)
				switch {
				case !ok:
					errs = append(errs, fmt.Errorf("topic %s has no partition %d", topic, p))
				case at < start.Offset || at > end.Offset:
					errs = append(errs, fmt.Errorf("topic %s partition %d: offset %d is outside %d..%d (start..end)", topic, p, at, start.Offset, end.Offset))
				default:
					set(topic, p, at)
				}
			}
		}
		if len(errs) > 0 {
			return nil, errors.Join(errs...)
		}
	default:
		return nil, errors.New("reset: no target (earliest, a time or offsets)")
	}
	return out, nil
}

// ParseOffsets parses explicit offsets, "topic:partition=offset,...", where
// topic is a full topic name or <database>.<table>; Resolve turns the
// latter into topic names.
func ParseOffsets(spec string) (map[string]map[int32]int64, error) {
	out := map[string]map[int32]int64{}
	for _, e := range strings.Split(spec, ",") {
		if e = strings.TrimSpace(e); e == "" {
			continue
		}
		tp, off, ok1 := strings.Cut(e, "=")
		i := strings.LastIndexByte(tp, ':')
		if !ok1 || i < 1 {
			return nil, fmt.Errorf("offsets: %q, want topic:partition=offset", e)
		}
		p, err := strconv.ParseInt(tp[i+1:], 10, 32)
		if err != nil || p < 0 {
			return nil, fmt.Errorf("offsets: %q: partition %q is not a partition number", e, tp[i+1:])
		}
		at, err := strconv.ParseInt(off, 10, 64)
		if err != nil || at < 0 {
			return nil, fmt.Errorf("offsets: %q: %q is not an offset", e, off)
		}
		topic := tp[:i]
		if strings.HasPrefix(topic, "^") {
			return nil, fmt.Errorf("offsets: %q: name a topic or <database>.<table>, not a pattern", e)
		}
		if out[topic] == nil {
			out[topic] = map[int32]int64{}
		}
		out[topic][int32(p)] = at
	}
	if len(out) == 0 {
		return nil, errors.New("offsets: none given")
	}
	return out, nil
}

// Resolve renames the topics of explicit offsets given as
// <database>.<table> to their table topic, checking that each exists.
func (a *Admin) Resolve(ctx context.Context, prefix string, offsets map[string]map[int32]int64) (map[string]map[int32]int64, error) {
	out := map[string]map[int32]int64{}
	var errs []error
	for name, ps := range offsets {
		f, err := NewTopicFilter(prefix, name)
		if err != nil {
			return nil, err
		}
		topics, err := a.Topics(ctx, f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		topic := topics[0]
		if slices.Contains(topics, name) { // a full name wins over <database>.<table>
			topic = name
		}
		if out[topic] == nil {
			out[topic] = map[int32]int64{}
		}
		for p, at := range ps {
			out[topic][p] = at
		}
	}
	return out, errors.Join(errs...)
}
