#!/usr/bin/env bash
# deploy/ as a platform team uses it. The kustomize base and the example overlay are rendered by
# tests/deploy/render.mjs (kustomize is not a Debian 12 package; where kubectl is installed its
# `kubectl kustomize` output must equal the renderer's) and every object is validated against
# the Kubernetes and prometheus-operator schemas (npm's kubernetes-models, pinned); a broken
# object and an unsupported kustomize feature are refused. The overlay's ConfigMaps and Secret,
# laid out as the pod mounts them, pass `sluice check`, and sluice started on them (Kafka and the
# port swapped for the test's) answers every probe path on the port the probes name and serves
# the ServiceMonitor's path; every sluice_*/process_* metric the PrometheusRule (and the Grafana
# dashboard) names is one it exports. promtool checks and unit-tests the alerts. The systemd unit
# passes systemd-analyze verify, and the image's entrypoint contract (ENTRYPOINT sluice, CMD run,
# SLUICE_CONFIG) holds for the binary.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sluice_lib.sh"
lib_init

DEPLOY=$SLUICE_SOURCE_DIR/deploy
RENDER=$SLUICE_SOURCE_DIR/tests/deploy/render.mjs
command -v node >/dev/null || lib_fail "node is needed: bash tools/setup.sh"
[ -d "$SLUICE_SOURCE_DIR/tests/deploy/node_modules/kubernetes-models" ] ||
    lib_fail "tests/deploy/node_modules is missing: bash tools/setup.sh (npm ci there)"

# render NAME DIR: renders and validates DIR into $WORK/NAME/objects.json; compared with
# kubectl kustomize when kubectl is installed.
render() {
    local name=$1 dir=$2 reference=()
    mkdir -p "$WORK/$name"
    if command -v kubectl >/dev/null; then
        kubectl kustomize "$dir" >"$WORK/$name/kubectl.yaml" || lib_fail "kubectl kustomize $dir failed"
        reference=("$WORK/$name/kubectl.yaml")
    fi
    node "$RENDER" "$dir" "$WORK/$name" "${reference[@]}" >"$WORK/$name/render.out" 2>&1 ||
        lib_fail "$name: $(cat "$WORK/$name/render.out")"
    if [ ${#reference[@]} = 1 ]; then
        grep -q '^equal to ' "$WORK/$name/render.out" || lib_fail "$name: not compared with kubectl kustomize"
    fi
}
objects() {   # NAME JQ: a query over the rendered objects of NAME
    jq -r "$2" "$WORK/$1/objects.json"
}

SLUICE_EXTERNAL_SECRETS=sluice-secrets render base "$DEPLOY/kustomize/base"
render overlay "$DEPLOY/kustomize/overlays/example"
compared=$(if command -v kubectl >/dev/null; then echo "equal to kubectl kustomize's"; else echo "kubectl absent: not compared"; fi)
lib_pass "base ($(grep -c '^valid:' "$WORK/base/render.out") objects) and example overlay ($(grep -c '^valid:' "$WORK/overlay/render.out") objects) valid against the schemas; $compared"

# The validation refuses what it should: a port that is not a number, an unknown kustomize key.
mkdir -p "$WORK/broken"
cat >"$WORK/broken/kustomization.yaml" <<YAML
resources:
  - $DEPLOY/kustomize/overlays/example
patches:
  - path: patch.yaml
YAML
cat >"$WORK/broken/patch.yaml" <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: sluice
spec:
  template:
    spec:
      containers:
        - name: sluice
          ports:
            - name: health
              containerPort: "9645"
YAML
mkdir -p "$WORK/broken.out"
! node "$RENDER" "$WORK/broken" "$WORK/broken.out" >"$WORK/broken.log" 2>&1 || lib_fail "a string containerPort was accepted"
grep -q 'containerPort must be integer' "$WORK/broken.log" || lib_fail "no reason for the bad port: $(cat "$WORK/broken.log")"
printf 'commonLabels:\n  team: x\n' >>"$WORK/broken/kustomization.yaml"
sed -i 's/containerPort: "9645"/containerPort: 9645/' "$WORK/broken/patch.yaml"
! node "$RENDER" "$WORK/broken" "$WORK/broken.out" >"$WORK/broken.log" 2>&1 || lib_fail "an unsupported kustomize key was ignored"
grep -q 'commonLabels is not supported' "$WORK/broken.log" || lib_fail "no reason for commonLabels: $(cat "$WORK/broken.log")"
lib_pass "the renderer refuses a schema violation (containerPort \"9645\") and a kustomize key it does not implement"

# What the issue asks of the manifests.
DEP='.[] | select(.kind == "Deployment")'
[ "$(objects overlay "$DEP | .spec.replicas")" = 4 ] || lib_fail "the overlay's replicas are not 4"
[ "$(objects base "$DEP | .spec.template.spec.containers[0].livenessProbe.httpGet.path")" = /healthz ] || lib_fail "no liveness probe on /healthz"
[ "$(objects base "$DEP | .spec.template.spec.containers[0].readinessProbe.httpGet.path")" = /readyz ] || lib_fail "no readiness probe on /readyz"
[ "$(objects base "$DEP | .spec.template.spec.containers[0].resources.requests.memory")" = 96Mi ] || lib_fail "no memory request"
[ "$(objects overlay "$DEP | .spec.template.spec.containers[0].envFrom[0].secretRef.name" | grep -c '^sluice-secrets-')" = 1 ] ||
    lib_fail "the secrets do not come from the generated Secret"
for kind in PodDisruptionBudget ServiceMonitor PrometheusRule Service; do
    [ "$(objects overlay "[.[] | select(.kind == \"$kind\")] | length")" = 1 ] || lib_fail "no $kind"
done
# A changed ConfigMap is a changed pod template (its hashed name), hence a rollout.
cp -r "$DEPLOY/kustomize" "$WORK/kustomize.changed"
jq '.commit_interval_ms = 2000' "$DEPLOY/kustomize/overlays/example/sluice.json" >"$WORK/kustomize.changed/overlays/example/sluice.json"
mkdir -p "$WORK/changed"
node "$RENDER" "$WORK/kustomize.changed/overlays/example" "$WORK/changed" >/dev/null || lib_fail "the changed overlay does not render"
before=$(objects overlay "$DEP | .spec.template.spec.volumes[] | select(.name == \"config\") | .configMap.name")
after=$(objects changed "$DEP | .spec.template.spec.volumes[] | select(.name == \"config\") | .configMap.name")
[ "$before" != "$after" ] && [ "${after%-*}" = sluice-config ] || lib_fail "a changed sluice.json left the pod template as it was ($before, $after)"
lib_pass "4 replicas, probes, requests, PDB, ServiceMonitor, PrometheusRule; a changed sluice.json renames its ConfigMap ($before -> $after), so the pods roll"

# The configuration as the pod sees it: /etc/sluice/conf/sluice.json, /etc/sluice/sinks.d/*, the
# Secret as environment. lay_out NAME: writes NAME's under $WORK/pod.NAME/etc/sluice.
lay_out() {
    local name=$1 dir=$WORK/pod.$1/etc/sluice config_map cm key
    mkdir -p "$dir/conf" "$dir/sinks.d"
    [ "$(objects "$name" "$DEP | .spec.template.spec.containers[0].args | join(\" \")")" = "run -c /etc/sluice/conf/sluice.json" ] ||
        lib_fail "the container's args changed: adjust this test's layout"
    config_map=$(objects "$name" "$DEP | .spec.template.spec.volumes[] | select(.name == \"config\") | .configMap.name")
    objects "$name" ".[] | select(.kind == \"ConfigMap\" and .metadata.name == \"$config_map\") | .data[\"sluice.json\"]" >"$dir/conf/sluice.json"
    for cm in $(objects "$name" "$DEP | .spec.template.spec.volumes[] | select(.name == \"sinks\") | .projected.sources[].configMap.name"); do
        for key in $(objects "$name" ".[] | select(.kind == \"ConfigMap\" and .metadata.name == \"$cm\") | .data | keys[]"); do
            [ ! -e "$dir/sinks.d/$key" ] || lib_fail "two teams' ConfigMaps both have $key"
            objects "$name" ".[] | select(.kind == \"ConfigMap\" and .metadata.name == \"$cm\") | .data[\"$key\"]" >"$dir/sinks.d/$key"
        done
    done
}
lay_out base
lay_out overlay
POD=$WORK/pod.overlay/etc/sluice
while IFS='=' read -r name value; do
    export "$name=$value"
done < <(objects overlay '.[] | select(.kind == "Secret") | .data | to_entries[] | "\(.key)=\(.value | @base64d)"')
export POD_NAME=sluice-7d9f-abcde POD_IP=10.1.2.3
"$SLUICE_BUILD_DIR/sluice" check -c "$POD/conf/sluice.json" >"$WORK/check.out" 2>&1 || lib_fail "sluice check: $(cat "$WORK/check.out")"
grep -q 'ok (2 sinks)' "$WORK/check.out" || lib_fail "sluice check: $(cat "$WORK/check.out")"
"$SLUICE_BUILD_DIR/sluice" check -c "$WORK/pod.base/etc/sluice/conf/sluice.json" >"$WORK/check-base.out" 2>&1 ||
    lib_fail "sluice check of the base: $(cat "$WORK/check-base.out")"
grep -q 'ok (1 sink)' "$WORK/check-base.out" || lib_fail "sluice check of the base: $(cat "$WORK/check-base.out")"
SLUICE_CONFIG=$POD/conf/sluice.json "$SLUICE_BUILD_DIR/sluice" check >"$WORK/check-env.out" 2>&1 ||
    lib_fail "sluice check with SLUICE_CONFIG (the image's 'docker run sluice check'): $(cat "$WORK/check-env.out")"
lib_pass "the overlay's ConfigMaps and Secret, mounted as the pod mounts them, pass sluice check (2 sinks), also through SLUICE_CONFIG; the base's too (1 sink)"

# The ports: the probes' named port is the health listener's port in the configuration.
probe_port=$(objects overlay "$DEP | .spec.template.spec.containers[0] | .livenessProbe.httpGet.port as \$p | .ports[] | select(.name == \$p) | .containerPort")
config_port=$(jq -r '.health.listen | split(":") | last' "$POD/conf/sluice.json")
[ -n "$probe_port" ] && [ "$probe_port" = "$config_port" ] || lib_fail "the probes use port $probe_port, health.listen is on $config_port"
grep -qx "EXPOSE $config_port" "$SLUICE_SOURCE_DIR/Dockerfile" || lib_fail "the Dockerfile does not EXPOSE $config_port"
# sluice ctl reaches each replica where it announces itself: the pod's IP and the admin port.
admin_port=$(objects overlay "$DEP | .spec.template.spec.containers[0].ports[] | select(.name == \"admin\") | .containerPort")
[ "$(jq -r '.control.advertise' "$POD/conf/sluice.json")" = '${POD_IP}:'"$admin_port" ] &&
    [ "$(jq -r '.admin.listen' "$POD/conf/sluice.json")" = "0.0.0.0:$admin_port" ] ||
    lib_fail "control.advertise / admin.listen do not match the admin port $admin_port"
[ "$(objects overlay "$DEP | .spec.template.spec.containers[0].env[] | select(.name == \"POD_IP\") | .valueFrom.fieldRef.fieldPath")" = status.podIP ] ||
    lib_fail "POD_IP does not come from status.podIP"

# sluice on that configuration, Kafka and the listening port swapped for the test's own.
lib_start_kafka orders.v1:2 accounts.v1:2 sluice.dlq:1 sluice.control:1
HEALTH_PORT=$(lib_free_port)
jq --arg b "$KAFKA_BROKERS" --arg h "127.0.0.1:$HEALTH_PORT" \
    '.kafka["bootstrap.servers"] = $b | .health.listen = $h | .admin.listen = "127.0.0.1:0" | .log.format = "logfmt"' \
    "$POD/conf/sluice.json" >"$POD/conf/test.json"
sluice_start "$POD/conf/test.json"
healthz() {
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HEALTH_PORT/healthz")" = 200 ]
}
TIMEOUT=30 lib_wait_for healthz
for probe in livenessProbe readinessProbe; do
    path=$(objects overlay "$DEP | .spec.template.spec.containers[0].$probe.httpGet.path")
    code=$(curl -s -o "$WORK/probe.body" -w '%{http_code}' "http://127.0.0.1:$HEALTH_PORT$path")
    case $probe:$code in
        livenessProbe:200 | readinessProbe:200 | readinessProbe:503) ;;
        *) lib_fail "$probe $path answered $code: $(cat "$WORK/probe.body")" ;;
    esac
done
ready() {
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HEALTH_PORT$(objects overlay "$DEP | .spec.template.spec.containers[0].readinessProbe.httpGet.path")")" = 200 ]
}
TIMEOUT=30 lib_wait_for ready
metrics_path=$(objects overlay '.[] | select(.kind == "ServiceMonitor") | .spec.endpoints[0].path')
curl -sS -f "http://127.0.0.1:$HEALTH_PORT$metrics_path" >"$WORK/metrics" || lib_fail "GET $metrics_path failed"
promtool check metrics <"$WORK/metrics" || lib_fail "promtool rejects $metrics_path"
lib_pass "sluice on the overlay's configuration: the liveness and readiness paths answer 200 on the port the probes name ($probe_port), $metrics_path passes promtool"

# Every metric the alerts and the dashboard name is exported.
objects overlay '.[] | select(.kind == "PrometheusRule") | .spec.groups[].rules[].expr' |
    grep -oE '\b(sluice|process)_[a-z_]+' | sed -E 's/_(bucket|sum|count)$//' | sort -u >"$WORK/rule.metrics"
[ "$(wc -l <"$WORK/rule.metrics")" -ge 8 ] || lib_fail "too few metrics found in the rules: $(cat "$WORK/rule.metrics")"
jq -r '.. | .expr? // empty' "$SLUICE_SOURCE_DIR/config/grafana/sluice-dashboard.json" |
    grep -oE '\b(sluice|process)_[a-z_]+' | sed -E 's/_(bucket|sum|count)$//' | sort -u >"$WORK/dashboard.metrics"
while read -r name; do
    grep -q "^# TYPE $name " "$WORK/metrics" || lib_fail "the PrometheusRule names $name, which /metrics does not export"
done <"$WORK/rule.metrics"
while read -r name; do
    grep -q "^# TYPE $name " "$WORK/metrics" || lib_fail "the dashboard queries $name, which /metrics does not export"
done <"$WORK/dashboard.metrics"
sluice_stop
lib_pass "every metric the alerts ($(wc -l <"$WORK/rule.metrics")) and the dashboard ($(wc -l <"$WORK/dashboard.metrics")) name is exported"

# promtool on the alerts: the PrometheusRule's spec is a rules file (JSON is YAML).
mkdir -p "$WORK/rules"
objects overlay '.[] | select(.kind == "PrometheusRule") | .spec' >"$WORK/rules/sluice-alerts.rules.yml"
cp "$DEPLOY/prometheus/sluice-alerts.test.yml" "$WORK/rules/"
promtool check rules "$WORK/rules/sluice-alerts.rules.yml" >"$WORK/rules/check.out" 2>&1 ||
    lib_fail "promtool check rules: $(cat "$WORK/rules/check.out")"
(cd "$WORK/rules" && promtool test rules sluice-alerts.test.yml) >"$WORK/rules/test.out" 2>&1 ||
    lib_fail "promtool test rules: $(cat "$WORK/rules/test.out")"
alerts=$(objects overlay '[.[] | select(.kind == "PrometheusRule") | .spec.groups[].rules[] | select(.alert)] | length')
tested=$(grep -c 'alertname:' "$DEPLOY/prometheus/sluice-alerts.test.yml" || true)
for a in $(objects overlay '.[] | select(.kind == "PrometheusRule") | .spec.groups[].rules[].alert'); do
    grep -q "alertname: $a\$" "$DEPLOY/prometheus/sluice-alerts.test.yml" || lib_fail "alert $a has no promtool test"
done
lib_pass "promtool check rules and test rules pass: $alerts alerts, each tested ($tested evaluations)"

# The systemd unit (verified with its binary path pointed at this build) and the image's contract.
if command -v systemd-analyze >/dev/null; then
    sed "s#/usr/local/bin/sluice#$SLUICE_BUILD_DIR/sluice#g" "$DEPLOY/systemd/sluice.service" >"$WORK/sluice.service"
    systemd-analyze verify "$WORK/sluice.service" >"$WORK/verify.out" 2>&1 || lib_fail "systemd-analyze verify: $(cat "$WORK/verify.out")"
    verified="systemd-analyze verify passes"
else
    verified="systemd-analyze absent: not verified"
fi
grep -q '^ExecReload=/bin/kill -HUP \$MAINPID$' "$DEPLOY/systemd/sluice.service" || lib_fail "the unit has no ExecReload by SIGHUP"
grep -qx 'ENTRYPOINT \["sluice"\]' "$SLUICE_SOURCE_DIR/Dockerfile" || lib_fail "ENTRYPOINT is not [\"sluice\"]"
grep -qx 'CMD \["run"\]' "$SLUICE_SOURCE_DIR/Dockerfile" || lib_fail "CMD is not [\"run\"]"
! grep -q '^HEALTHCHECK' "$SLUICE_SOURCE_DIR/Dockerfile" || lib_fail "the image has a HEALTHCHECK"
grep -q 'org.opencontainers.image.version=' "$SLUICE_SOURCE_DIR/Dockerfile" || lib_fail "no OCI labels"
lib_pass "$verified (ExecReload sends SIGHUP); the Dockerfile has ENTRYPOINT [\"sluice\"], CMD [\"run\"], EXPOSE $config_port, OCI labels, no HEALTHCHECK"

lib_summary
