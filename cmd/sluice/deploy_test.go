package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sluice-stream/sluice"
	"github.com/sluice-stream/sluice/internal/admission"
	"github.com/sluice-stream/sluice/internal/web"
)

// repoRoot is the module root, two levels above this package.
const repoRoot = "../.."

// The deployment files (Dockerfile, deploy/compose.yaml, deploy/k8s/) are
// checked against the binary: they parse; every command and flag they pass
// exists; the pipeline they run passes lint and is the same in compose and
// the ConfigMap; the UI port agrees across --ui-addr, EXPOSE, the published
// and container ports, the probes and the scrape annotation; the probe and
// metrics paths are served by `sluice run`'s server off loopback; the grace
// periods exceed --shutdown-timeout; several members only in group mode,
// each with its own published port.
func TestDeployManifests(t *testing.T) {
	df := readDockerfile(t)
	compose := readCompose(t)
	k := readK8s(t)

	// --- Dockerfile ---
	for _, want := range []string{"CGO_ENABLED=0", `ENTRYPOINT ["sluice"]`, "./cmd/sluice",
		"-X main.releaseVersion=${VERSION}", "-X main.releaseRevision=${REVISION}", "ARG VERSION", "ARG REVISION"} {
		if !strings.Contains(df.text, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	if final := df.stages[len(df.stages)-1]; !strings.HasPrefix(final, "gcr.io/distroless/static") && final != "scratch" {
		t.Errorf("Dockerfile's final stage is FROM %q, want distroless/static or scratch", final)
	}
	if df.user == "" || df.user == "root" || strings.HasPrefix(df.user, "0:") || df.user == "0" {
		t.Errorf("Dockerfile's USER is %q, want a non-root user", df.user)
	}
	// The version variables the Dockerfile sets exist in this binary (the
	// test fails to compile if they are renamed) and reach --version.
	defer func(v, r string) { releaseVersion, releaseRevision = v, r }(releaseVersion, releaseRevision)
	releaseVersion, releaseRevision = "v9.8.7", "0123456789abcdef0123"
	if v := version(); !strings.HasPrefix(v, "sluice v9.8.7 ") {
		t.Errorf("version() with a link-time version = %q, want it to start with \"sluice v9.8.7 \"", v)
	}

	// --- docker compose ---
	var runs []string
	for name, svc := range compose.Services {
		if svc.Image != compose.Services["broker"].Image {
			t.Errorf("compose service %s: image %q, want the one image of all services %q", name, svc.Image, compose.Services["broker"].Image)
		}
		checkArgs(t, "compose service "+name, svc.Command)
		if len(svc.Command) > 0 && svc.Command[0] == "run" {
			runs = append(runs, name)
		}
	}
	if len(runs) != 1 {
		t.Fatalf("compose has %d sluice run services (%v), want 1 (its replicas are the members)", len(runs), runs)
	}
	run := compose.Services[runs[0]]
	// Several members are one query only in group mode: without
	// sluice.group a second copy processes every record again.
	group := pipelineGroup(t, filepath.Join(repoRoot, "deploy", "pipeline.yaml"))
	replicas := max(run.Deploy.Replicas, 1)
	if replicas > 1 && group == "" {
		t.Errorf("compose runs %d replicas of a pipeline without sluice.group", replicas)
	}
	if group != "" && replicas < 3 {
		t.Errorf("compose runs %d member(s) of group %s, want three", replicas, group)
	}
	// Each replica needs its own host port: a range at least as wide.
	if replicas > 1 && !slices.ContainsFunc(run.Ports, func(p string) bool { return hostPortRange(p) >= replicas }) {
		t.Errorf("compose publishes %v for %d replicas: want a host port range of at least %d ports", run.Ports, replicas, replicas)
	}
	uiPort := uiAddrPort(t, "compose "+runs[0], run.Command)
	if df.expose != uiPort {
		t.Errorf("Dockerfile EXPOSE %s, --ui-addr port %s", df.expose, uiPort)
	}
	if !slices.ContainsFunc(run.Ports, func(p string) bool { return strings.HasSuffix(p, ":"+uiPort) }) {
		t.Errorf("compose %s publishes %v, none to the UI port %s", runs[0], run.Ports, uiPort)
	}
	// The health check probes readiness on the UI port with `sluice probe`.
	hc := run.Healthcheck.Test
	if len(hc) != 4 || hc[0] != "CMD" || hc[1] != "sluice" || hc[2] != "probe" {
		t.Fatalf("compose %s healthcheck %q, want [CMD sluice probe URL]", runs[0], hc)
	}
	checkArgs(t, "compose healthcheck", hc[2:])
	if u, err := url.Parse(hc[3]); err != nil || u.Path != web.ReadyzPath || u.Port() != uiPort {
		t.Errorf("compose healthcheck URL %q, want %s on port %s", hc[3], web.ReadyzPath, uiPort)
	}
	if grace := parseDuration(t, run.StopGracePeriod); grace <= shutdownTimeout(t, run.Command) {
		t.Errorf("compose stop_grace_period %s is not longer than --shutdown-timeout %s", grace, shutdownTimeout(t, run.Command))
	}
	if _, ok := run.Environment["SLUICE_UI_TOKEN"]; !ok {
		t.Errorf("compose %s listens off loopback without SLUICE_UI_TOKEN: sluice run refuses that", runs[0])
	}
	// The mounted pipeline is deploy/pipeline.yaml, at the path run reads.
	pipelineFile := filepath.Join(repoRoot, "deploy", "pipeline.yaml")
	mounted := false
	for _, v := range run.Volumes {
		src, dst, _ := strings.Cut(v, ":")
		dst, _, _ = strings.Cut(dst, ":")
		if dst == run.Command[1] {
			mounted = filepath.Clean(filepath.Join(repoRoot, "deploy", src)) == filepath.Clean(pipelineFile)
		}
	}
	if !mounted {
		t.Errorf("compose %s runs %s, which is not deploy/pipeline.yaml mounted (volumes %v)", runs[0], run.Command[1], run.Volumes)
	}
	// Broker, producer and query agree on the bootstrap address.
	listen := flagValue(compose.Services["broker"].Command, "listen")
	if b := flagValue(compose.Services["producer"].Command, "bootstrap"); b != listen || run.Environment["KAFKA_BOOTSTRAP"] != listen {
		t.Errorf("bootstrap addresses disagree: broker --listen %q, producer --bootstrap %q, KAFKA_BOOTSTRAP %q",
			listen, b, run.Environment["KAFKA_BOOTSTRAP"])
	}
	pipelineText, err := os.ReadFile(pipelineFile)
	if err != nil {
		t.Fatal(err)
	}
	lintPipeline(t, pipelineFile, map[string]string{"KAFKA_BOOTSTRAP": listen, "CHECKPOINT": run.Environment["CHECKPOINT"]})

	// --- Kubernetes ---
	dep, cm, pdb := k.deployment, k.configMap, k.pdb
	if dep == nil || cm == nil || pdb == nil {
		t.Fatalf("deploy/k8s lacks a Deployment, ConfigMap or PodDisruptionBudget")
	}
	switch {
	case group == "" && dep.Spec.Replicas != 1:
		t.Errorf("Deployment replicas %d of a pipeline without sluice.group: want 1 (one process per query)", dep.Spec.Replicas)
	case group == "" && dep.Spec.Strategy.Type != "Recreate":
		t.Errorf("Deployment strategy %q, want Recreate (one pod holds the checkpoint at a time)", dep.Spec.Strategy.Type)
	case group != "" && dep.Spec.Replicas < 2:
		t.Errorf("Deployment replicas %d of group %s: want several members", dep.Spec.Replicas, group)
	}
	pod := dep.Spec.Template
	if !labelsMatch(dep.Spec.Selector.MatchLabels, pod.Metadata.Labels) || !labelsMatch(pdb.Spec.Selector.MatchLabels, pod.Metadata.Labels) {
		t.Errorf("selectors (Deployment %v, PDB %v) do not select the pod labels %v", dep.Spec.Selector.MatchLabels, pdb.Spec.Selector.MatchLabels, pod.Metadata.Labels)
	}
	if pdb.Spec.MaxUnavailable == nil && pdb.Spec.MinAvailable == nil {
		t.Errorf("the PodDisruptionBudget sets neither maxUnavailable nor minAvailable")
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("pod has %d containers, want 1", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	if c.Image != strings.TrimSuffix(strings.TrimPrefix(compose.Services["broker"].Image, "${SLUICE_IMAGE:-"), "}") {
		t.Errorf("Deployment image %q, compose's default image %q", c.Image, compose.Services["broker"].Image)
	}
	checkArgs(t, "Deployment", c.Args)
	if len(c.Args) < 2 || c.Args[0] != "run" {
		t.Fatalf("Deployment args %q, want run PIPELINE", c.Args)
	}
	if p := uiAddrPort(t, "Deployment", c.Args); p != uiPort {
		t.Errorf("Deployment --ui-addr port %s, compose's %s", p, uiPort)
	}
	ports := map[string]string{}
	for _, p := range c.Ports {
		ports[p.Name] = strconv.Itoa(p.ContainerPort)
	}
	if !slices.Contains(slices.Collect(mapValues(ports)), uiPort) {
		t.Errorf("container ports %v lack the UI port %s", ports, uiPort)
	}
	portOf := func(p any) string {
		if s, ok := p.(string); ok && ports[s] != "" {
			return ports[s]
		}
		return fmt.Sprint(p)
	}
	for name, pr := range map[string]*probeSpec{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		want := map[string]string{"liveness": web.HealthzPath, "readiness": web.ReadyzPath}[name]
		if pr == nil || pr.HTTPGet.Path != want || portOf(pr.HTTPGet.Port) != uiPort {
			t.Errorf("%s probe %+v, want GET %s on port %s", name, pr, want, uiPort)
		}
	}
	ann := pod.Metadata.Annotations
	if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/port"] != uiPort || ann["prometheus.io/path"] != "/metrics" {
		t.Errorf("scrape annotations %v, want scrape true, port %s, path /metrics", ann, uiPort)
	}
	if grace := time.Duration(pod.Spec.TerminationGracePeriodSeconds) * time.Second; grace <= shutdownTimeout(t, c.Args) {
		t.Errorf("terminationGracePeriodSeconds %s is not longer than --shutdown-timeout %s", grace, shutdownTimeout(t, c.Args))
	}
	env := map[string]envVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	if e, ok := env["SLUICE_UI_TOKEN"]; !ok || e.ValueFrom == nil {
		t.Errorf("the container listens off loopback without SLUICE_UI_TOKEN from a secret: sluice run refuses that")
	}
	if sc := pod.Spec.SecurityContext; sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("pod securityContext.runAsNonRoot is not true")
	}
	// The memory limit leaves room above the heap sluice holds itself to:
	// the budget derived from it plus BudgetOverhead (the GOMEMLIMIT).
	limit := parseQuantity(t, c.Resources.Limits["memory"])
	if held := admission.DefaultBudget(limit) + sluice.BudgetOverhead; limit <= held {
		t.Errorf("memory limit %d bytes is not above the derived budget + overhead %d", limit, held)
	}
	// The pipeline file run reads is the ConfigMap's key through a mount.
	var cmMount string
	for _, v := range pod.Spec.Volumes {
		if v.ConfigMap != nil && v.ConfigMap.Name == cm.Metadata.Name {
			for _, m := range c.VolumeMounts {
				if m.Name == v.Name {
					cmMount = m.MountPath
				}
			}
		}
	}
	dir, key := filepath.Split(c.Args[1])
	if filepath.Clean(dir) != cmMount {
		t.Errorf("Deployment runs %s, but the ConfigMap %s is mounted at %q", c.Args[1], cm.Metadata.Name, cmMount)
	}
	if cm.Data[key] != string(pipelineText) {
		t.Errorf("the ConfigMap's %s differs from deploy/pipeline.yaml", key)
	}
	// The checkpoint lies on the data volume, not the read-only root.
	chk := env["CHECKPOINT"].Value
	if !slices.ContainsFunc(c.VolumeMounts, func(m volumeMount) bool { return strings.HasPrefix(chk, m.MountPath+"/") && !m.ReadOnly }) {
		t.Errorf("CHECKPOINT %q is not on a writable volume mount %v", chk, c.VolumeMounts)
	}
	lintPipeline(t, filepath.Join(t.TempDir(), key), map[string]string{"KAFKA_BOOTSTRAP": env["KAFKA_BOOTSTRAP"].Value, "CHECKPOINT": chk},
		cm.Data[key])

	// --- the paths are served, as probes and scrapers reach them ---
	checkServed(t, uiPort)
}

// checkArgs checks that args[0] is a sluice command and that every flag in
// args is one of its flags.
func checkArgs(t *testing.T, where string, args []string) {
	t.Helper()
	for _, p := range argProblems(args) {
		t.Errorf("%s: %s", where, p)
	}
}

// argProblems lists what in a sluice command line is not in the binary.
func argProblems(args []string) []string {
	if len(args) == 0 {
		return []string{"no command"}
	}
	i := slices.IndexFunc(commands, func(c command) bool { return c.name == args[0] })
	if i < 0 {
		return []string{fmt.Sprintf("%q is not a sluice command", args[0])}
	}
	known := map[string]bool{}
	for _, f := range flagsOf(commands[i]) {
		known[f.Name] = true
	}
	var problems []string
	for _, a := range args[1:] {
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !known[name] {
			problems = append(problems, fmt.Sprintf("sluice %s has no flag --%s", args[0], name))
		}
	}
	return problems
}

// flagValue returns the value of --name in args ("" if absent).
func flagValue(args []string, name string) string {
	for i, a := range args {
		if a == "--"+name || a == "-"+name {
			if i+1 < len(args) {
				return args[i+1]
			}
		}
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v
		}
	}
	return ""
}

// uiAddrPort returns the port of run's --ui-addr, which must be given and
// reachable from outside the container.
func uiAddrPort(t *testing.T, where string, args []string) string {
	t.Helper()
	host, port, err := net.SplitHostPort(flagValue(args, "ui-addr"))
	if err != nil {
		t.Fatalf("%s: --ui-addr %q: %v", where, flagValue(args, "ui-addr"), err)
	}
	if ip := net.ParseIP(host); host == "" || ip == nil || !ip.IsUnspecified() {
		t.Errorf("%s: --ui-addr host %q: probes and scrapers from outside the container need 0.0.0.0", where, host)
	}
	return port
}

// shutdownTimeout is run's --shutdown-timeout in args, or its default.
func shutdownTimeout(t *testing.T, args []string) time.Duration {
	t.Helper()
	if v := flagValue(args, "shutdown-timeout"); v != "" {
		return parseDuration(t, v)
	}
	return DefaultShutdownTimeout
}

func parseDuration(t *testing.T, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("duration %q: %v", s, err)
	}
	return d
}

// parseQuantity reads a Kubernetes memory quantity with a binary suffix.
func parseQuantity(t *testing.T, q string) int64 {
	t.Helper()
	for suffix, mult := range map[string]int64{"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30} {
		if n, ok := strings.CutSuffix(q, suffix); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			if err == nil {
				return v * mult
			}
		}
	}
	t.Fatalf("memory quantity %q: want a whole number of Ki, Mi or Gi", q)
	return 0
}

// lintPipeline runs `sluice lint` on the pipeline with env set; with text,
// the file is written first.
func lintPipeline(t *testing.T, file string, env map[string]string, text ...string) {
	t.Helper()
	if len(text) > 0 {
		if err := os.WriteFile(file, []byte(text[0]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	var stdout, stderr bytes.Buffer
	if err := runLint(context.Background(), []string{file}, &stdout, &stderr); err != nil {
		t.Errorf("sluice lint %s: %v\n%s%s", file, err, stdout.String(), stderr.String())
	}
}

func labelsMatch(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func mapValues(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for _, v := range m {
			if !yield(v) {
				return
			}
		}
	}
}

// checkServed starts `sluice run`'s HTTP server off loopback with a token,
// as the manifests configure it, and GETs the probe and metrics paths the
// way kubelet and Prometheus do: the probes without credentials and with
// the pod IP as Host, /metrics with the token.
func checkServed(t *testing.T, port string) {
	t.Helper()
	st := &runState{}
	srv, err := serveUI(context.Background(), "0.0.0.0:0", "tok", st, sluice.NewSession().MetricsHandler(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	_, p, _ := net.SplitHostPort(srv.Addr())
	for _, tc := range []struct {
		path, auth string
		want       int
	}{
		{web.HealthzPath, "", http.StatusOK},
		{web.ReadyzPath, "", http.StatusServiceUnavailable}, // no query yet: starting
		{"/metrics", "Bearer tok", http.StatusOK},
		{"/metrics", "", http.StatusUnauthorized},
	} {
		req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:"+p+tc.path, nil)
		req.Host = "10.244.1.17:" + port
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("GET %s (Authorization %q): %d %s, want %d", tc.path, tc.auth, resp.StatusCode, body, tc.want)
		}
	}
}

// dockerfile is what the test reads from the Dockerfile.
type dockerfile struct {
	text   string
	stages []string // the images of the FROM lines
	user   string   // the last USER
	expose string   // the EXPOSEd port
}

func readDockerfile(t *testing.T) dockerfile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df := dockerfile{text: string(b)}
	from := regexp.MustCompile(`^FROM\s+(?:--platform=\S+\s+)?(\S+)`)
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch f := strings.Fields(line); {
		case from.MatchString(line):
			df.stages = append(df.stages, from.FindStringSubmatch(line)[1])
		case len(f) == 2 && f[0] == "USER":
			df.user = f[1]
		case len(f) == 2 && f[0] == "EXPOSE":
			df.expose = strings.TrimSuffix(f[1], "/tcp")
		}
	}
	if len(df.stages) < 2 || df.expose == "" {
		t.Fatalf("Dockerfile: stages %v, EXPOSE %q: want a multi-stage build exposing the UI port", df.stages, df.expose)
	}
	return df
}

// composeFile is the part of deploy/compose.yaml the test reads.
type composeFile struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Command     []string          `yaml:"command"`
		Environment map[string]string `yaml:"environment"`
		Volumes     []string          `yaml:"volumes"`
		Ports       []string          `yaml:"ports"`
		Healthcheck struct {
			Test []string `yaml:"test"`
		} `yaml:"healthcheck"`
		StopGracePeriod string `yaml:"stop_grace_period"`
		Deploy          struct {
			Replicas int `yaml:"replicas"`
		} `yaml:"deploy"`
	} `yaml:"services"`
}

func readCompose(t *testing.T) composeFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(b, &c); err != nil { // merge keys (<<: *anchor) included
		t.Fatalf("deploy/compose.yaml: %v", err)
	}
	for _, s := range []string{"broker", "producer"} {
		if _, ok := c.Services[s]; !ok {
			t.Fatalf("deploy/compose.yaml has no %s service", s)
		}
	}
	if !slices.Contains(c.Services["producer"].Command, "loadgen") {
		t.Errorf("compose producer runs %q, want sluice loadgen", c.Services["producer"].Command)
	}
	return c
}

// The Kubernetes objects the test reads, as far as it reads them.
type (
	objectMeta struct {
		Name        string            `yaml:"name"`
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	}
	labelSelector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	}
	probeSpec struct {
		HTTPGet struct {
			Path string `yaml:"path"`
			Port any    `yaml:"port"`
		} `yaml:"httpGet"`
	}
	envVar struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom any    `yaml:"valueFrom"`
	}
	volumeMount struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	}
	container struct {
		Name  string   `yaml:"name"`
		Image string   `yaml:"image"`
		Args  []string `yaml:"args"`
		Env   []envVar `yaml:"env"`
		Ports []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
		} `yaml:"ports"`
		LivenessProbe  *probeSpec `yaml:"livenessProbe"`
		ReadinessProbe *probeSpec `yaml:"readinessProbe"`
		Resources      struct {
			Limits map[string]string `yaml:"limits"`
		} `yaml:"resources"`
		VolumeMounts []volumeMount `yaml:"volumeMounts"`
	}
	deployment struct {
		Spec struct {
			Replicas int           `yaml:"replicas"`
			Selector labelSelector `yaml:"selector"`
			Strategy struct {
				Type string `yaml:"type"`
			} `yaml:"strategy"`
			Template struct {
				Metadata objectMeta `yaml:"metadata"`
				Spec     struct {
					TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
					SecurityContext               struct {
						RunAsNonRoot *bool `yaml:"runAsNonRoot"`
					} `yaml:"securityContext"`
					Containers []container `yaml:"containers"`
					Volumes    []struct {
						Name      string `yaml:"name"`
						ConfigMap *struct {
							Name string `yaml:"name"`
						} `yaml:"configMap"`
					} `yaml:"volumes"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	configMap struct {
		Metadata objectMeta        `yaml:"metadata"`
		Data     map[string]string `yaml:"data"`
	}
	pdbObject struct {
		Spec struct {
			MaxUnavailable any           `yaml:"maxUnavailable"`
			MinAvailable   any           `yaml:"minAvailable"`
			Selector       labelSelector `yaml:"selector"`
		} `yaml:"spec"`
	}
	k8sObjects struct {
		deployment *deployment
		configMap  *configMap
		pdb        *pdbObject
	}
)

// readK8s parses every document of deploy/k8s/*.yaml; each names its
// apiVersion and kind, and the kustomization lists every other file.
func readK8s(t *testing.T) k8sObjects {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot, "deploy", "k8s", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("deploy/k8s: no manifests (%v)", err)
	}
	var out k8sObjects
	var resources, listed []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var node yaml.Node
			if err := dec.Decode(&node); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			var head struct {
				APIVersion string   `yaml:"apiVersion"`
				Kind       string   `yaml:"kind"`
				Resources  []string `yaml:"resources"`
			}
			if err := node.Decode(&head); err != nil || head.APIVersion == "" || head.Kind == "" {
				t.Fatalf("%s: a document without apiVersion and kind (%v)", f, err)
			}
			var target any
			switch head.Kind {
			case "Deployment":
				out.deployment = &deployment{}
				target = out.deployment
			case "ConfigMap":
				out.configMap = &configMap{}
				target = out.configMap
			case "PodDisruptionBudget":
				out.pdb = &pdbObject{}
				target = out.pdb
			case "Kustomization":
				listed = head.Resources
				continue
			}
			resources = append(resources, filepath.Base(f))
			if target != nil {
				if err := node.Decode(target); err != nil {
					t.Fatalf("%s: %s: %v", f, head.Kind, err)
				}
			}
		}
	}
	slices.Sort(resources)
	slices.Sort(listed)
	if !slices.Equal(slices.Compact(resources), listed) {
		t.Errorf("kustomization.yaml lists %v, the directory holds %v", listed, resources)
	}
	return out
}

// The argument checker catches what TestDeployManifests relies on it to.
func TestDeployArgProblems(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "p.yaml", "--ui-addr", "0.0.0.0:4040", "--shutdown-timeout=30s"}, ""},
		{[]string{"run", "p.yaml", "--ui-adr", "0.0.0.0:4040"}, "sluice run has no flag --ui-adr"},
		{[]string{"loadgen", "--bootstrap", "b:9092", "--listen", "x"}, "sluice loadgen has no flag --listen"},
		{[]string{"serve"}, `"serve" is not a sluice command`},
	} {
		got := strings.Join(argProblems(tc.args), "; ")
		if got != tc.want {
			t.Errorf("argProblems(%q) = %q, want %q", tc.args, got, tc.want)
		}
	}
}

// pipelineGroup returns the Kafka source's sluice.group in the pipeline
// file ("" when it has none).
func pipelineGroup(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Source struct {
			Options map[string]any `yaml:"options"`
		} `yaml:"source"`
	}
	if err := yaml.Unmarshal(data, &p); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	g, _ := p.Source.Options["sluice.group"].(string)
	return g
}

// hostPortRange is how many host ports a compose port mapping publishes
// ("127.0.0.1:4040-4043:4040" → 4; "127.0.0.1:4040:4040" → 1).
func hostPortRange(mapping string) int {
	parts := strings.Split(mapping, ":")
	if len(parts) < 2 {
		return 1
	}
	lo, hi, ok := strings.Cut(parts[len(parts)-2], "-")
	if !ok {
		return 1
	}
	a, err1 := strconv.Atoi(lo)
	b, err2 := strconv.Atoi(hi)
	if err1 != nil || err2 != nil || b < a {
		return 0
	}
	return b - a + 1
}
