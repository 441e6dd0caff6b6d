package engine

import (
	"context"
	"sync"

	"github.com/sluice-stream/sluice/internal/checkpoint"
)

// purger deletes old batches from the checkpoint's offsets and commit logs
// in its own goroutine, off the batch's critical path (Spark's
// spark.sql.streaming.asyncLogPurge.enabled, on by default since 3.4:
// SPARK-40849 measured the purge at about two thirds of walCommit). A
// request made while a purge runs is remembered and served once that one
// ends, so after the last request the logs are purged as the synchronous
// call would leave them; requests never queue up beyond one.
//
// Purging asynchronously is safe: Checkpoint.Purge deletes only batches
// below the newest logged one minus minBatchesToRetain (at least 1), which
// no recovery reads — a replay of the newest batch needs only its own
// offsets and the previous batch's.
type purger struct {
	cp     *checkpoint.Checkpoint
	retain int
	before func() // Config.BeforePurge
	warn   func(err error)

	pending chan struct{} // capacity 1: a purge is wanted
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// startPurger starts the purge goroutine; stop ends it.
func startPurger(cp *checkpoint.Checkpoint, retain int, before func(), warn func(error)) *purger {
	ctx, cancel := context.WithCancel(context.Background())
	p := &purger{cp: cp, retain: retain, before: before, warn: warn, pending: make(chan struct{}, 1), cancel: cancel}
	p.wg.Add(1)
	go p.run(ctx)
	return p
}

func (p *purger) run(ctx context.Context) {
	defer p.wg.Done()
	for {
		select {
		case <-p.pending:
			p.purge()
		case <-ctx.Done():
			select { // the last request is served before the checkpoint closes
			case <-p.pending:
				p.purge()
			default:
			}
			return
		}
	}
}

func (p *purger) purge() {
	if p.before != nil {
		p.before()
	}
	if err := p.cp.Purge(p.retain); err != nil {
		p.warn(err)
	}
}

// request asks for a purge without waiting for it.
func (p *purger) request() {
	select {
	case p.pending <- struct{}{}:
	default: // one is wanted already
	}
}

// stop waits for a purge under way and the one requested last, then ends
// the goroutine. Call it before the checkpoint closes; calling it twice is
// harmless.
func (p *purger) stop() {
	p.cancel()
	p.wg.Wait()
}
