package groupstatus

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/sluice-stream/sluice/internal/lag"
	"github.com/sluice-stream/sluice/progress"
)

// WriteJSON writes the report as one indented JSON object. Unknown
// offsets, lags and seconds are null.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable writes the report for a terminal: a heading with the group's
// state and health, the members with their partitions (as
// kafka-consumer-groups --describe --members --verbose), and the
// partitions with offsets, lag and status (as --describe, plus seconds and
// status), then the reasons of the partitions that are not OK.
func (r *Report) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "Group %s: state %s, protocol %s, %d members, coordinator %d, at %s\n",
		r.Group, orDash(r.State), orDash(r.Protocol), len(r.Members), r.Coordinator, progress.FormatTime(r.At))
	fmt.Fprintf(w, "Status %s: %s\n", r.Health.Status, r.Health.Reason)
	if r.Samples > 1 {
		fmt.Fprintf(w, "Judged over %d snapshots %s apart.\n", r.Samples, r.Interval)
	}
	fmt.Fprintln(w)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MEMBER-ID\tCLIENT-ID\tHOST\t#PARTITIONS\tASSIGNMENT")
	if len(r.Members) == 0 {
		fmt.Fprintln(tw, "(no members)\t-\t-\t0\t-")
	}
	for _, m := range r.Members {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", m.MemberID, orDash(m.ClientID), orDash(m.Host), len(m.Partitions), assignment(m.Partitions))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)

	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tMEMBER-ID\tCOMMITTED-OFFSET\tLATEST-OFFSET\tLAG\tLAG-SECONDS\tSTATUS")
	var notOK []Partition
	for _, p := range r.Partitions {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Topic, p.Partition, orDash(p.MemberID),
			num(p.Committed), num(p.Latest), num(p.Lag), secs(p.LagSeconds), p.Status)
		if p.Status != lag.StatusOK {
			notOK = append(notOK, p)
		}
	}
	fmt.Fprintf(tw, "TOTAL\t-\t-\t-\t-\t%d\t%s\t%s\n", r.LagRecords, secs(r.MaxLagSeconds), r.Health.Status)
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range notOK {
		fmt.Fprintf(w, "%s-%d %s: %s\n", p.Topic, p.Partition, p.Status, p.Reason)
	}
	return nil
}

// assignment formats partitions as kafka-consumer-groups does:
// topic(0,1,2),other(3).
func assignment(ps []TopicPartition) string {
	if len(ps) == 0 {
		return "-"
	}
	var b strings.Builder
	for i, p := range ps {
		switch {
		case i == 0:
			b.WriteString(p.Topic + "(")
		case ps[i-1].Topic != p.Topic:
			b.WriteString("),")
			b.WriteString(p.Topic + "(")
		default:
			b.WriteString(",")
		}
		b.WriteString(strconv.Itoa(int(p.Partition)))
	}
	b.WriteString(")")
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func num(v *int64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatInt(*v, 10)
}

func secs(v *float64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatFloat(*v, 'f', 1, 64)
}
