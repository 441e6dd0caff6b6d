package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestGroupModeUIShowsTheWholeGroup runs two group-mode members with their
// UI on, and asks one member's API for its group: both members are listed
// with the partitions each owns — the other member's too, which that
// member's own progress cannot show — and every partition of the topic has
// an owner, committed and latest offsets.
func TestGroupModeUIShowsTheWholeGroup(t *testing.T) {
	b := startOrders(t, 4000)
	dir := t.TempDir()
	pipelineFor := func(member string) string {
		p := filepath.Join(dir, member+".yaml")
		yaml := fmt.Sprintf(`name: ui-group
source:
  format: kafka
  options:
    kafka.bootstrap.servers: %s
    subscribe: orders
    startingOffsets: earliest
    maxOffsetsPerTrigger: 20
    sluice.group: ui-view
    sluice.group.member: %s
    kafka.session.timeout.ms: 6000
    kafka.heartbeat.interval.ms: 300
sink:
  format: noop
  options:
    checkpointLocation: %s
    sluice.sink.delayPerRow: 5ms
`, b.Addr(), member, filepath.Join(dir, "chk-"+member))
		if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	urlRE := regexp.MustCompile(`url=(http://[0-9.:]+)/`)
	var bases []string
	for _, m := range []string{"m1", "m2"} {
		cmd, out := sluiceChild(t, "run", pipelineFor(m), "--ui-addr", "127.0.0.1:0", "--log-level", "info", "--quiet")
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		waitOutput(t, out, "live UI and API")
		bases = append(bases, urlRE.FindStringSubmatch(out.String())[1])
	}
	getJSON := func(url string, v any) int {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if v != nil && resp.StatusCode == http.StatusOK {
			if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
				t.Fatalf("%s: %v", url, err)
			}
		}
		return resp.StatusCode
	}
	type member struct {
		MemberID   string `json:"memberId"`
		ClientID   string `json:"clientId"`
		Partitions []struct {
			Partition int32 `json:"partition"`
		} `json:"partitions"`
	}
	type report struct {
		Group      string   `json:"group"`
		State      string   `json:"state"`
		Members    []member `json:"members"`
		Partitions []struct {
			Partition int32  `json:"partition"`
			MemberID  string `json:"memberId"`
			Latest    *int64 `json:"latestOffset"`
			Committed *int64 `json:"committedOffset"`
		} `json:"partitions"`
	}
	var rep report
	var id string
	deadline := time.Now().Add(45 * time.Second)
	for {
		var qs []struct {
			ID      string `json:"id"`
			Reports struct {
				Group bool `json:"group"`
			} `json:"reports"`
		}
		if getJSON(bases[0]+"/api/v1/queries", &qs) == http.StatusOK && len(qs) == 1 {
			if !qs[0].Reports.Group {
				t.Fatalf("the query does not say it runs in group mode: %+v", qs[0])
			}
			id = qs[0].ID
			rep = report{}
			if code := getJSON(bases[0]+"/api/v1/queries/"+id+"/group", &rep); code != http.StatusOK {
				t.Fatalf("GET /group: HTTP %d", code)
			}
			owned := 0
			for _, m := range rep.Members {
				if len(m.Partitions) > 0 {
					owned++
				}
			}
			committed := 0
			for _, p := range rep.Partitions {
				if p.Committed != nil {
					committed++
				}
			}
			if rep.State == "Stable" && len(rep.Members) == 2 && owned == 2 && committed == 2 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the group never showed two members owning partitions with commits: %+v", rep)
		}
		time.Sleep(300 * time.Millisecond)
	}
	if rep.Group != "ui-view" || len(rep.Partitions) != 2 {
		t.Fatalf("group report %+v: want group ui-view with both partitions of orders", rep)
	}
	var clients []string
	owner := map[string]bool{}
	for _, m := range rep.Members {
		clients = append(clients, m.ClientID)
		owner[m.MemberID] = true
	}
	sort.Strings(clients)
	if strings.Join(clients, ",") != "sluice-m1,sluice-m2" {
		t.Errorf("members' client ids %v, want sluice-m1 and sluice-m2", clients)
	}
	for _, p := range rep.Partitions {
		if !owner[p.MemberID] || p.Latest == nil || *p.Latest != 2000 {
			t.Errorf("partition %d: owner %q (members %v), latest %v: want an owner among the members and 2000 records", p.Partition, p.MemberID, owner, p.Latest)
		}
	}
	// The second member's API (its own query id: each member has its own
	// checkpoint) describes the same group.
	var qs2 []struct {
		ID string `json:"id"`
	}
	if code := getJSON(bases[1]+"/api/v1/queries", &qs2); code != http.StatusOK || len(qs2) != 1 {
		t.Fatalf("second member's query list: HTTP %d, %+v", code, qs2)
	}
	var rep2 report
	if code := getJSON(bases[1]+"/api/v1/queries/"+qs2[0].ID+"/group", &rep2); code != http.StatusOK || rep2.Group != "ui-view" || len(rep2.Members) != 2 {
		t.Errorf("second member's /group: HTTP %d, %+v", code, rep2)
	}
}
