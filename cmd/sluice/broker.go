package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/sluice-stream/sluice/internal/broker"
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

func runBroker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("broker", stderr)
	listen := fs.String("listen", "127.0.0.1:9092", "address to listen on (host:port; port 0 picks a free one)")
	dataDir := fs.String("data-dir", "", "persist topics in this directory (default: in memory)")
	autoCreate := fs.Bool("auto-create-topics", true, "create topics on first produce, as librdkafka clients expect")
	partitions := fs.Int("default-partitions", 1, "partitions of auto-created topics")
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
