#!/usr/bin/env bash
# Validates deploy/k8s/ offline.
#
# 1. `kubectl apply --dry-run=client --validate=false -f deploy/k8s/`. Even a client-side dry
#    run asks an API server for discovery (which kinds exist) and for the live objects (create
#    or patch?), so the command runs against a stub on a loopback port that serves only the
#    discovery documents of v1, apps/v1 and policy/v1 and answers 404 to everything else
#    (= nothing exists yet). The stub does no validation; kubectl parses every manifest,
#    maps every kind and builds every object.
# 2. Consistency checks kubectl cannot do (python3 + PyYAML): selectors match pod labels,
#    probes hit /readyz and /livez on a declared port, the grace period covers preStop +
#    HILANDER_DRAIN_SECONDS, resources are set, Redis keeps its data on a volume with AOF on.
#
# kubectl comes from Debian's kubernetes-client when missing (as root); without it step 1 is
# skipped with a message and only step 2 runs. Exit 0 when everything that ran passed.
set -uo pipefail
dir=$(cd "$(dirname "$0")" && pwd)
fails=0

if ! command -v kubectl >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends kubernetes-client \
    >/dev/null 2>&1 || true
fi

if command -v kubectl >/dev/null 2>&1; then
  tmp=$(mktemp -d /tmp/hl-k8s-validate.XXXXXX)
  python3 - "$tmp/port" >"$tmp/stub.log" 2>&1 <<'EOF' &
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

def res(name, kind, namespaced=True, short=()):
    return {"name": name, "singularName": kind.lower(), "namespaced": namespaced, "kind": kind,
            "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
            "shortNames": list(short)}

DOCS = {
    "/api": {"kind": "APIVersions", "versions": ["v1"],
             "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]},
    "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
        {"name": g, "versions": [{"groupVersion": g + "/v1", "version": "v1"}],
         "preferredVersion": {"groupVersion": g + "/v1", "version": "v1"}} for g in ("apps", "policy")]},
    "/api/v1": {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
        res("configmaps", "ConfigMap", short=["cm"]), res("services", "Service", short=["svc"]),
        res("namespaces", "Namespace", False, ["ns"]), res("persistentvolumeclaims", "PersistentVolumeClaim")]},
    "/apis/apps/v1": {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "apps/v1", "resources": [
        res("deployments", "Deployment", short=["deploy"]), res("statefulsets", "StatefulSet", short=["sts"])]},
    "/apis/policy/v1": {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "policy/v1",
                        "resources": [res("poddisruptionbudgets", "PodDisruptionBudget", short=["pdb"])]},
}

class H(BaseHTTPRequestHandler):
    def do_GET(self):
        path = self.path.split("?")[0].rstrip("/") or "/"
        doc = DOCS.get(path)
        code = 200 if doc is not None else 404
        if doc is None:
            doc = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
                   "code": 404, "message": "not found (stub API server)"}
        body = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, fmt, *args):
        sys.stderr.write("stub: " + (fmt % args) + "\n")

srv = HTTPServer(("127.0.0.1", 0), H)
open(sys.argv[1], "w").write(str(srv.server_address[1]))
srv.timeout = 1
import time
end = time.time() + 120   # bounded: the stub never outlives the check
while time.time() < end:
    srv.handle_request()
EOF
  stub=$!
  for _ in $(seq 50); do [ -s "$tmp/port" ] && break; sleep 0.1; done
  cat >"$tmp/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: stub, cluster: {server: "http://127.0.0.1:$(cat "$tmp/port")"}}]
users: [{name: stub, user: {}}]
contexts: [{name: stub, context: {cluster: stub, user: stub, namespace: default}}]
current-context: stub
EOF
  echo "k8s: $(kubectl version --client 2>/dev/null | head -1), against a loopback discovery stub"
  if KUBECONFIG="$tmp/kubeconfig" kubectl --cache-dir "$tmp/cache" apply --dry-run=client \
       --validate=false -f "$dir/" >"$tmp/out" 2>&1; then
    sed 's/^/  /' "$tmp/out"
    echo "ok   kubectl apply --dry-run=client --validate=false -f deploy/k8s/"
  else
    sed 's/^/  /' "$tmp/out"
    echo "FAIL kubectl apply --dry-run=client --validate=false -f deploy/k8s/"
    fails=$((fails + 1))
  fi
  kill "$stub" 2>/dev/null
  wait "$stub" 2>/dev/null
  rm -rf "$tmp"
else
  echo "k8s: kubectl is not installed (and kubernetes-client could not be installed): skipping the kubectl dry run"
fi

python3 - "$dir" <<'EOF' || fails=$((fails + 1))
import glob, os, sys
import yaml

docs = []
for f in sorted(glob.glob(os.path.join(sys.argv[1], "*.yaml"))):
    with open(f) as fh:
        docs += [(os.path.basename(f), d) for d in yaml.safe_load_all(fh) if d]
fails = 0
def check(cond, what):
    global fails
    print(("ok   " if cond else "FAIL ") + what)
    fails += 0 if cond else 1
def one(kind, name):
    hits = [d for _, d in docs if d.get("kind") == kind and d["metadata"]["name"] == name]
    check(len(hits) == 1, f"{kind}/{name} defined once")
    return hits[0] if hits else {}
for f, d in docs:
    check(all(k in d for k in ("apiVersion", "kind", "metadata")) and d["metadata"].get("name"),
          f"{f}: {d.get('kind')}/{d.get('metadata', {}).get('name')} has apiVersion, kind, metadata.name")

cm = one("ConfigMap", "hilanderd").get("data", {})
check(all(isinstance(v, str) for v in cm.values()), "ConfigMap values are strings")
check(cm.get("HILANDER_LISTEN") == "0.0.0.0", "replicas listen on 0.0.0.0")
dep = one("Deployment", "hilanderd")
spec = dep.get("spec", {})
pod = spec.get("template", {}).get("spec", {})
labels = spec.get("template", {}).get("metadata", {}).get("labels", {})
check(spec.get("replicas") == 2, "Deployment: 2 replicas")
check(all(labels.get(k) == v for k, v in spec.get("selector", {}).get("matchLabels", {}).items()),
      "Deployment: selector matches the pod labels")
c = (pod.get("containers") or [{}])[0]
ports = {p.get("name"): p.get("containerPort") for p in c.get("ports", [])}
check(ports.get("http") == int(cm.get("HILANDER_PORT", "0")), "container port http = HILANDER_PORT")
rp, lp = c.get("readinessProbe", {}).get("httpGet", {}), c.get("livenessProbe", {}).get("httpGet", {})
check(rp.get("path") == "/readyz" and rp.get("port") in ports, "readinessProbe GET /readyz on a declared port")
check(lp.get("path") == "/livez" and lp.get("port") in ports, "livenessProbe GET /livez on a declared port")
check(any(e.get("configMapRef", {}).get("name") == "hilanderd" for e in c.get("envFrom", [])),
      "container reads the ConfigMap")
pre = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
sleep = int(pre[1]) if len(pre) == 2 and pre[0] == "sleep" else -1
drain = int(cm.get("HILANDER_DRAIN_SECONDS", "30"))
grace = pod.get("terminationGracePeriodSeconds", 30)
check(sleep > 0, f"preStop sleeps ({sleep} s)")
check(grace > sleep + drain, f"terminationGracePeriodSeconds {grace} > preStop {sleep} + drain {drain}")
r = c.get("resources", {})
check(all(k in r.get("requests", {}) and k in r.get("limits", {}) for k in ("cpu", "memory")),
      "requests and limits for cpu and memory")
check(pod.get("securityContext", {}).get("runAsNonRoot") is True, "runs as non-root")
svc = one("Service", "hilanderd").get("spec", {})
check(all(labels.get(k) == v for k, v in svc.get("selector", {}).items()) and svc.get("selector"),
      "Service selects the hilanderd pods")
check(all(p.get("targetPort") in ports or p.get("targetPort") in ports.values() for p in svc.get("ports", [])),
      "Service targets a declared port")
sts = one("StatefulSet", "hilander-redis").get("spec", {})
rc = (sts.get("template", {}).get("spec", {}).get("containers") or [{}])[0]
check("--appendonly" in rc.get("args", []) and rc["args"][rc["args"].index("--appendonly") + 1] == "yes",
      "Redis runs with appendonly yes")
vct = [v["metadata"]["name"] for v in sts.get("volumeClaimTemplates", [])]
check(any(m.get("name") in vct and m.get("mountPath") == "/data" for m in rc.get("volumeMounts", [])),
      "Redis keeps /data on a persistent volume claim")
rsvc = one("Service", "hilander-redis")
check(cm.get("HILANDER_REDIS", "").startswith("redis://" + rsvc.get("metadata", {}).get("name", "?") + ":"),
      "HILANDER_REDIS points at the Redis Service")
print(f"k8s consistency: {fails} failed")
sys.exit(1 if fails else 0)
EOF
echo "validate: $([ "$fails" -eq 0 ] && echo passed || echo "$fails step(s) failed")"
[ "$fails" -eq 0 ]
