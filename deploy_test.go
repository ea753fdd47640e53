package qrphgate_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/qrphgate/qrphgate/internal/e2e"
)

// dockerfile is the parsed Dockerfile: one instruction per entry, with
// continuation lines joined.
func dockerfile(t *testing.T) [][2]string {
	t.Helper()
	f, err := os.Open("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][2]string
	var cur string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cur += strings.TrimSuffix(line, "\\") + " "
			continue
		}
		line = cur + line
		cur = ""
		instr, rest, _ := strings.Cut(line, " ")
		out = append(out, [2]string{strings.ToUpper(instr), strings.TrimSpace(rest)})
	}
	return out
}

// TestDockerfile checks what the image promises: multi-stage, a static
// -trimpath build, a distroless non-root runtime, /data as a volume, and
// COPY sources that exist. The build step itself is run with go build, so
// a broken build command fails here even where no Docker engine runs.
func TestDockerfile(t *testing.T) {
	var froms, copies []string
	var buildCmd, user, volume, entrypoint string
	for _, in := range dockerfile(t) {
		switch in[0] {
		case "FROM":
			froms = append(froms, in[1])
		case "RUN":
			if strings.Contains(in[1], "go build") {
				buildCmd = in[1]
			}
		case "USER":
			user = in[1]
		case "VOLUME":
			volume = in[1]
		case "ENTRYPOINT":
			entrypoint = in[1]
		case "COPY":
			if !strings.Contains(in[1], "--from=") {
				f := strings.Fields(in[1])
				copies = append(copies, f[:len(f)-1]...)
			}
		}
	}
	if len(froms) < 2 {
		t.Fatalf("want a multi-stage build, got FROM %v", froms)
	}
	if last := froms[len(froms)-1]; !strings.Contains(last, "distroless") || !strings.Contains(last, "nonroot") {
		t.Errorf("runtime image %q is not distroless nonroot", last)
	}
	if user == "" || strings.HasPrefix(user, "root") || strings.HasPrefix(user, "0") {
		t.Errorf("USER %q: the image must not run as root", user)
	}
	if volume != "/data" {
		t.Errorf("VOLUME %q, want /data", volume)
	}
	if !strings.Contains(entrypoint, "qrphgate") {
		t.Errorf("ENTRYPOINT %q", entrypoint)
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "./cmd/qrphgate"} {
		if !strings.Contains(buildCmd, want) {
			t.Errorf("build step %q lacks %s", buildCmd, want)
		}
	}
	for _, src := range copies {
		if src == "." {
			continue
		}
		if _, err := os.Stat(src); err != nil {
			t.Errorf("COPY source %s: %v", src, err)
		}
	}
	// Run the image's build command with a shell, as RUN does, writing
	// the binary to a temp dir instead of /out.
	if !strings.Contains(buildCmd, "-o /out/qrphgate") {
		t.Fatalf("build step %q does not write /out/qrphgate", buildCmd)
	}
	run := strings.Replace(buildCmd, "-o /out/qrphgate", "-o "+filepath.Join(t.TempDir(), "qrphgate"), 1)
	if out, err := exec.Command("sh", "-c", run).CombinedOutput(); err != nil {
		t.Fatalf("the Dockerfile's build step fails: %s: %v\n%s", run, err, out)
	}
}

// TestDockerBuild builds the image where a Docker engine is available. CI
// machines here have only the Docker client, so it reports why it skips.
func TestDockerBuild(t *testing.T) {
	if err := exec.Command("docker", "info").Run(); err != nil {
		t.Skipf("no Docker engine on this machine (docker info: %v); TestDockerfile checks the build step instead", err)
	}
	out, err := exec.Command("docker", "build", "-t", "qrphgate:test", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
}

// yamlDocs decodes every document of a YAML file.
func yamlDocs(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var docs []map[string]any
	for {
		var d map[string]any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if d != nil {
			docs = append(docs, d)
		}
	}
	return docs
}

// at walks a decoded YAML tree: keys for maps, ints for lists.
func at(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func TestComposeFile(t *testing.T) {
	docs := yamlDocs(t, filepath.Join("examples", "compose", "compose.yaml"))
	if len(docs) != 1 {
		t.Fatalf("%d documents", len(docs))
	}
	c := docs[0]
	if at(c, "services", "app") == nil || at(c, "services", "qrphgate") == nil {
		t.Fatal("compose needs the app and qrphgate services")
	}
	if got := at(c, "services", "qrphgate", "network_mode"); got != "service:app" {
		t.Errorf("qrphgate network_mode %v: the sidecar must share the app's loopback", got)
	}
	ctx, _ := at(c, "services", "qrphgate", "build", "context").(string)
	if _, err := os.Stat(filepath.Join("examples", "compose", ctx, "Dockerfile")); err != nil {
		t.Errorf("build context %q has no Dockerfile: %v", ctx, err)
	}
	var dataVolume bool
	vols, _ := at(c, "services", "qrphgate", "volumes").([]any)
	for _, v := range vols {
		s, _ := v.(string)
		if strings.HasSuffix(s, ":/data") {
			dataVolume = true
			if _, declared := at(c, "volumes", strings.TrimSuffix(s, ":/data")).(map[string]any); !declared && at(c, "volumes") == nil {
				t.Errorf("volume %s is not declared", s)
			}
		}
		if src, _, ok := strings.Cut(s, ":"); ok && strings.HasPrefix(src, ".") {
			if _, err := os.Stat(filepath.Join("examples", "compose", src)); err != nil {
				t.Errorf("bind mount source %s: %v", src, err)
			}
		}
	}
	if !dataVolume {
		t.Error("qrphgate needs a volume on /data (certificates and the spool)")
	}
	// The health check is the binary probing Caddyfile.example's /readyz.
	test := fmt.Sprint(at(c, "services", "qrphgate", "healthcheck", "test"))
	example, err := os.ReadFile("Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	if test != "[CMD /usr/bin/qrphgate modulus probe http://127.0.0.1:9180/readyz]" ||
		!strings.Contains(string(example), "http://:9180 {") || !strings.Contains(string(example), "handle /readyz {\n\t\tmodulus_health") {
		t.Errorf("qrphgate healthcheck %s does not probe Caddyfile.example's /readyz", test)
	}

	// The one-shot preflight runs qrphgate's config with its environment
	// and volumes, and qrphgate waits for it to pass.
	pre := at(c, "services", "preflight")
	if pre == nil {
		t.Fatal("no preflight service")
	}
	if cond := at(c, "services", "qrphgate", "depends_on", "preflight", "condition"); cond != "service_completed_successfully" {
		t.Errorf("qrphgate depends on preflight with condition %v", cond)
	}
	if fmt.Sprint(at(pre, "volumes")) != fmt.Sprint(vols) || at(pre, "env_file") != at(c, "services", "qrphgate", "env_file") ||
		fmt.Sprint(at(pre, "environment")) != fmt.Sprint(at(c, "services", "qrphgate", "environment")) {
		t.Error("preflight does not run with qrphgate's volumes and environment")
	}
	checkPreflightArgs(t, "compose preflight", at(pre, "command"), "/etc/qrphgate/Caddyfile")
}

// checkPreflightArgs: an init or CI step runs `modulus preflight` on the
// config the gateway runs.
func checkPreflightArgs(t *testing.T, what string, args any, config string) {
	t.Helper()
	l, _ := args.([]any)
	got := fmt.Sprint(l)
	if len(l) < 4 || l[0] != "modulus" || l[1] != "preflight" || !strings.Contains(got, "--config "+config) {
		t.Errorf("%s runs %v, want modulus preflight --config %s", what, got, config)
	}
}

// exampleEnv is what Caddyfile.example expects, with obviously fake values.
var exampleEnv = []string{
	"MODULUS_SECRET_KEY=sk_live_FAKE-not-a-real-key-000000",
	"MODULUS_ENCRYPTION_KEY=TEST-ONLY-fake-key-do-not-use-32",
	"MODULUS_ACTIVATION_CODE=TEST-0000-0000-0001",
	"QRPHGATE_SIGNING_SECRET=whsec_VEVTVC1PTkxZLWZha2Utc2lnbmluZy1zZWNyZXQtMzI=",
	"QRPHGATE_WEBHOOK_IPS=203.0.113.10/32 198.51.100.0/24",
}

// TestCaddyfileExample adapts and validates (provisions every module of) the
// production example with fake credentials, and checks that no secret value
// reaches the adapted JSON.
func TestCaddyfileExample(t *testing.T) {
	dir := t.TempDir()
	for _, kv := range exampleEnv {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	abs, _ := filepath.Abs("Caddyfile.example")
	out, err := e2e.Run(t, dir, "adapt", "--config", abs, "--adapter", "caddyfile")
	if err != nil {
		t.Fatalf("adapt: %v\n%s", err, out)
	}
	for _, kv := range exampleEnv[:4] {
		_, v, _ := strings.Cut(kv, "=")
		if strings.Contains(out, v) {
			t.Errorf("the adapted JSON contains a secret value (%s...)", v[:8])
		}
	}
	if !strings.Contains(out, "{env.MODULUS_SECRET_KEY}") || !strings.Contains(out, "198.51.100.0/24") ||
		!strings.Contains(out, `"handler":"modulus_health"`) || !strings.Contains(out, `"read_header_timeout":10000000000`) {
		t.Errorf("adapted JSON lacks the placeholders or the allowlist:\n%s", out)
	}
	if out, err := e2e.Run(t, dir, "validate", "--config", abs, "--adapter", "caddyfile"); err != nil || !strings.Contains(out, "Valid configuration") {
		t.Fatalf("validate: %v\n%s", err, out)
	}
	// The offline preflight the Dockerfile and Compose show passes on it.
	if out, err := e2e.Run(t, dir, "modulus", "preflight", "--config", abs, "--adapter", "caddyfile"); err != nil ||
		!strings.Contains(out, " 0 fail.") || !strings.Contains(out, "  webhook.spool ") || !strings.Contains(out, "ok    ops.health ") {
		t.Fatalf("preflight: %v\n%s", err, out)
	}
	// Without the allowlist the example must refuse to start, not allow all.
	os.Unsetenv("QRPHGATE_WEBHOOK_IPS")
	if out, err := e2e.Run(t, dir, "adapt", "--config", abs, "--adapter", "caddyfile"); err == nil || !strings.Contains(out, "allow_ips") {
		t.Fatalf("adapt without QRPHGATE_WEBHOOK_IPS: %v\n%s", err, out)
	}
}

// TestKubernetesManifests parses every manifest, checks that what the
// Deployment references exists (Secret keys, ConfigMap, probe ports), that
// the sidecar runs as non-root with probes, and that the ConfigMap's
// Caddyfile adapts with the real binary without any secret in the JSON.
func TestKubernetesManifests(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("examples", "kubernetes", "*.yaml"))
	if len(files) < 4 {
		t.Fatalf("manifests: %v", files)
	}
	byKind := map[string][]map[string]any{}
	for _, f := range files {
		for _, d := range yamlDocs(t, f) {
			kind, _ := d["kind"].(string)
			if d["apiVersion"] == nil || kind == "" || at(d, "metadata", "name") == nil {
				t.Fatalf("%s: a document lacks apiVersion, kind or metadata.name", f)
			}
			byKind[kind] = append(byKind[kind], d)
		}
	}
	for _, kind := range []string{"Deployment", "Service", "Secret", "ConfigMap", "StatefulSet"} {
		if len(byKind[kind]) == 0 {
			t.Errorf("no %s", kind)
		}
	}
	secret := byKind["Secret"][0]
	secretName := at(secret, "metadata", "name")
	secretKeys, _ := at(secret, "stringData").(map[string]any)
	configMap := byKind["ConfigMap"][0]

	dep := byKind["Deployment"][0]
	pod := at(dep, "spec", "template", "spec")
	if at(pod, "securityContext", "runAsNonRoot") != true {
		t.Error("the pod must run as non-root")
	}
	labels, _ := at(dep, "spec", "template", "metadata", "labels").(map[string]any)
	for _, svc := range byKind["Service"] {
		sel, _ := at(svc, "spec", "selector").(map[string]any)
		matches := len(sel) > 0
		for k, v := range sel {
			matches = matches && labels[k] == v
		}
		if !matches && at(svc, "metadata", "name") != "redis" {
			t.Errorf("service %v selects no pod of the Deployment", at(svc, "metadata", "name"))
		}
		if at(svc, "spec", "type") == "LoadBalancer" && at(svc, "spec", "externalTrafficPolicy") != "Local" {
			t.Error("the webhook LoadBalancer must keep client addresses (externalTrafficPolicy: Local) for allow_ips")
		}
	}
	var sidecar any
	containers, _ := at(pod, "containers").([]any)
	for _, c := range containers {
		if at(c, "name") == "qrphgate" {
			sidecar = c
		}
	}
	if sidecar == nil {
		t.Fatal("no qrphgate container")
	}
	ports := map[any]bool{}
	for _, p := range at(sidecar, "ports").([]any) {
		ports[at(p, "name")] = true
	}
	for _, probe := range []string{"readinessProbe", "livenessProbe"} {
		if port := at(sidecar, probe, "httpGet", "port"); !ports[port] {
			t.Errorf("%s uses port %v, which the container does not name", probe, port)
		}
	}
	// Readiness is modulus_health's report; liveness stays trivial.
	if at(sidecar, "readinessProbe", "httpGet", "path") != "/readyz" || at(sidecar, "livenessProbe", "httpGet", "path") != "/healthz" {
		t.Errorf("probes: readiness %v, liveness %v; want /readyz and /healthz",
			at(sidecar, "readinessProbe", "httpGet", "path"), at(sidecar, "livenessProbe", "httpGet", "path"))
	}
	if at(sidecar, "securityContext", "readOnlyRootFilesystem") != true || at(sidecar, "securityContext", "allowPrivilegeEscalation") != false {
		t.Error("the sidecar should have a read-only root and no privilege escalation")
	}
	if at(sidecar, "envFrom", 0, "secretRef", "name") != secretName {
		t.Error("the sidecar does not take its environment from the Secret")
	}
	// The preflight init container runs the sidecar's config with the
	// sidecar's image, environment and mounts.
	var pre any
	inits, _ := at(pod, "initContainers").([]any)
	for _, c := range inits {
		if at(c, "name") == "preflight" {
			pre = c
		}
	}
	if pre == nil {
		t.Fatal("no preflight init container")
	}
	sidecarArgs, _ := at(sidecar, "args").([]any)
	config := ""
	for i, a := range sidecarArgs {
		if a == "--config" && i+1 < len(sidecarArgs) {
			config, _ = sidecarArgs[i+1].(string)
		}
	}
	checkPreflightArgs(t, "the preflight init container", at(pre, "args"), config)
	for _, k := range []string{"image", "env", "envFrom", "volumeMounts"} {
		if fmt.Sprint(at(pre, k)) != fmt.Sprint(at(sidecar, k)) {
			t.Errorf("the preflight init container's %s differs from the sidecar's", k)
		}
	}
	if at(pre, "securityContext", "readOnlyRootFilesystem") != true || at(pre, "securityContext", "allowPrivilegeEscalation") != false {
		t.Error("the preflight init container should have a read-only root and no privilege escalation")
	}
	// Every secretKeyRef names a key of the Secret.
	for _, c := range containers {
		env, _ := at(c, "env").([]any)
		for _, e := range env {
			if ref := at(e, "valueFrom", "secretKeyRef"); ref != nil {
				if _, ok := secretKeys[at(ref, "key").(string)]; !ok || at(ref, "name") != secretName {
					t.Errorf("container %v: secretKeyRef %v is not in the Secret", at(c, "name"), ref)
				}
			}
		}
	}
	volumes, _ := at(pod, "volumes").([]any)
	var configMapUsed bool
	for _, v := range volumes {
		configMapUsed = configMapUsed || at(v, "configMap", "name") == at(configMap, "metadata", "name")
	}
	if !configMapUsed {
		t.Error("the ConfigMap is not mounted")
	}

	// Redis holds acknowledged webhooks: it must persist every write.
	args := fmt.Sprint(at(byKind["StatefulSet"][0], "spec", "template", "spec", "containers", 0, "args"))
	if !strings.Contains(args, "--appendonly yes") || !strings.Contains(args, "--appendfsync always") {
		t.Errorf("redis args %s: the spool needs appendonly yes and appendfsync always", args)
	}
	if at(byKind["StatefulSet"][0], "spec", "volumeClaimTemplates") == nil {
		t.Error("redis keeps its data on an emptyDir: it needs a persistent volume")
	}

	// The Caddyfile in the ConfigMap adapts, with the Deployment's env.
	caddyfile, _ := at(configMap, "data", "Caddyfile").(string)
	dir := t.TempDir()
	path := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(caddyfile), 0o600); err != nil {
		t.Fatal(err)
	}
	sidecarEnv, _ := at(sidecar, "env").([]any)
	for _, e := range sidecarEnv {
		if v, ok := at(e, "value").(string); ok {
			t.Setenv(at(e, "name").(string), v)
		}
	}
	out, err := e2e.Run(t, dir, "adapt", "--config", path, "--adapter", "caddyfile")
	if err != nil {
		t.Fatalf("the ConfigMap's Caddyfile does not adapt: %v\n%s", err, out)
	}
	for _, want := range []string{"{env.MODULUS_SECRET_KEY}", "{env.REDIS_PASSWORD}", "modulus_webhook", "modulus_api", `"handler":"modulus_health"`, `"read_header_timeout":10000000000`} {
		if !strings.Contains(out, want) {
			t.Errorf("adapted JSON lacks %s", want)
		}
	}
	// The replicas share one ledger: on the spool's Redis.
	ledger := regexp.MustCompile(`"ledger":"([^"]+)"`).FindStringSubmatch(out)
	spool := regexp.MustCompile(`"spool":"([^"]+)"`).FindStringSubmatch(out)
	if ledger == nil || spool == nil || ledger[1] != spool[1] {
		t.Errorf("the replicas' ledger %v is not on the spool's Redis %v", ledger, spool)
	}
}
