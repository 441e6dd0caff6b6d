package main

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-stream/sluice/internal/groupstatus"
	"github.com/sluice-stream/sluice/internal/kafkaauth"
	"github.com/sluice-stream/sluice/internal/pipeline"
	"github.com/sluice-stream/sluice/internal/source/kafka"
)

// groupViewMaxAge is how long a description of the group is served again
// before the broker is asked anew: several open pages cost one question.
const groupViewMaxAge = 2 * time.Second

// groupViewTimeout bounds one description.
const groupViewTimeout = 10 * time.Second

// groupView describes a group-mode query's whole consumer group for the
// live UI and GET /api/v1/queries/{id}/group — every member and which
// partitions it owns, committed and latest offsets, lag — as `sluice
// status --group` does, with the query's own bootstrap servers and
// security settings. Each member's UI so shows the whole group, not only
// its own partitions.
type groupView struct {
	group string
	opts  []kgo.Opt
	sec   *kafkaauth.Settings

	mu   sync.Mutex
	last *groupstatus.Report
	at   time.Time
}

// newGroupView returns the view for the pipeline in file when its source
// is a Kafka or Event Hubs source in group mode (sluice.group), else nil.
// The file was already accepted by the session: any error here only means
// no view.
func newGroupView(file string) *groupView {
	p, err := pipeline.Load(file)
	if err != nil {
		return nil
	}
	var cfg *kafka.Config
	switch strings.ToLower(p.Source.Format) {
	case "kafka":
		cfg, err = kafka.ParseConfig(p.Source.Options)
	case "eventhubs":
		cfg, err = kafka.ParseEventHubsConfig(p.Source.Options)
	default:
		return nil
	}
	if err != nil || cfg.Group == "" || len(cfg.Bootstrap) == 0 {
		return nil
	}
	opts := append([]kgo.Opt{kgo.SeedBrokers(cfg.Bootstrap...)}, cfg.Security.Opts()...)
	return &groupView{group: cfg.Group, opts: opts, sec: cfg.Security}
}

// describe returns the group's description, at most groupViewMaxAge old.
func (g *groupView) describe(ctx context.Context) (*groupstatus.Report, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.last != nil && time.Since(g.at) < groupViewMaxAge {
		return g.last, nil
	}
	ctx, cancel := context.WithTimeout(ctx, groupViewTimeout)
	defer cancel()
	cl, err := kgo.NewClient(g.opts...)
	if err != nil {
		return nil, g.sec.Scrub(err)
	}
	defer cl.Close()
	rep, err := groupstatus.Describe(ctx, kadm.NewClient(cl), g.group, groupstatus.Options{ClientOpts: g.opts})
	if err != nil {
		return nil, g.sec.Scrub(g.sec.Explain(err))
	}
	g.last, g.at = rep, time.Now()
	return rep, nil
}
