package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/sluice-stream/sluice/internal/broker"
	"github.com/sluice-stream/sluice/internal/procstat"
)

// topicFlags collects repeated --topic NAME:PARTITIONS flags.
type topicFlags []broker.TopicSpec

func (t *topicFlags) String() string {
	var s []string
	for _, x := range *t {
		s = append(s, x.String())
	}
	return strings.Join(s, ",")
}

func (t *topicFlags) Set(v string) error {
	specs, err := broker.ParseTopicSpecs(v)
	if err != nil {
		return err
	}
	*t = append(*t, specs...)
	return nil
}

// brokerHugeHeap is how much heap `sluice broker` in memory prepares for
// huge pages: the records it keeps are its heap, a latency run's 10 s at
// 184,000 records/s about 450 MB of it.
const brokerHugeHeap = 1 << 30

// prepareHugeHeap prepares the first want bytes of the heap, at most a
// quarter of the memory limit, for transparent huge pages
// (procstat.PrepareHeapHugePages), for a process whose heap grows with
// what it holds (`sluice broker`, `sluice loadgen`): a fresh Go process
// faults every 4 KiB page of it in, on a virtual machine an exit to the
// hypervisor each.
func prepareHugeHeap(want int64, log *slog.Logger) {
	lim, err := procstat.MemoryLimit()
	if err != nil {
		log.Debug("heap not prepared for huge pages", "err", err)
		return
	}
	if n, err := procstat.PrepareHeapHugePages(min(want, lim.Bytes/4)); err != nil {
		log.Debug("heap not prepared for huge pages", "err", err)
	} else if n > 0 {
		log.Debug("heap prepared for transparent huge pages", "bytes", n)
	}
}

func runBroker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("broker", stderr)
	listen := fs.String("listen", "127.0.0.1:9092", "address to listen on (host:port; port 0 picks a free one)")
	dataDir := fs.String("data-dir", "", "persist topics in this directory (default: in memory)")
	autoCreate := fs.Bool("auto-create-topics", true, "create topics on first produce, as librdkafka clients expect")
	partitions := fs.Int("default-partitions", 1, "partitions of auto-created topics")
	hugePages := fs.Bool("huge-pages", false, "without --data-dir: prepare the first GiB of heap (at most a quarter of the memory limit) for transparent huge pages, so the records kept in memory are faulted in 2 MiB at a time (about 110,000 fewer faults and 40 % less broker CPU at 184,000 records/s, peak RSS about 10 % higher; off by default: on the benchmark VM it lengthened a light-load query's slowest batches)")
	logf := addLogFlags(fs, "warn")
	var topics topicFlags
	fs.Var(&topics, "topic", "topic to create, NAME[:PARTITIONS] (repeatable, comma-separated allowed)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	log, err := logf.logger(stderr)
	if err != nil {
		return err
	}
	if *hugePages && *dataDir == "" {
		prepareHugeHeap(brokerHugeHeap, log)
	}
	b, err := broker.Start(ctx, broker.Config{
		Listen: *listen, Topics: topics, DataDir: *dataDir,
		AutoCreateTopics: *autoCreate, DefaultPartitions: *partitions, Logger: log,
		LibrdkafkaCompat: true, // so librdkafka clients (kcat) really compress
	})
	if err != nil {
		return err
	}
	defer b.Close()
	fmt.Fprintf(stdout, "sluice broker listening on %s\n", b.Addr())
	for _, t := range topics {
		fmt.Fprintf(stdout, "topic %s\n", t)
	}
	fmt.Fprintln(stdout, "bootstrap servers:", b.Addr())
	<-ctx.Done()
	fmt.Fprintln(stdout, "sluice broker stopping")
	return nil
}
