{{/*
The policyd container and its volumes, shared by the standalone Deployment and the
sidecar templates. Volume names start with "policyd-" so they never clash with an
application's own volumes.
*/}}

{{- define "policyd.env" -}}
- name: POLICYD_LISTEN
  value: {{ include "policyd.listen" . | quote }}
- name: POLICYD_GRACE_S
  value: {{ .Values.daemon.grace | quote }}
{{- if not (eq (toString .Values.daemon.workers) "<nil>") }}
- name: POLICYD_WORKERS
  value: {{ .Values.daemon.workers | quote }}
{{- end }}
{{- if .Values.http.enabled }}
- name: POLICYD_HTTP_LISTEN
  value: {{ printf "%s:%d" (ternary "0.0.0.0" "127.0.0.1" (eq .Values.mode "standalone")) (int .Values.http.port) | quote }}
{{- end }}
- name: POLICYD_DATA_DIR
  value: {{ .Values.cache.mountPath | quote }}
{{- if include "policyd.configMapName" . }}
- name: POLICYD_CONFIG
  value: {{ printf "%s/%s" (trimSuffix "/" .Values.policy.mountPath) .Values.policy.key | quote }}
{{- end }}
{{- range $store, $var := dict "valkey" "POLICYD_VALKEY_URL" "postgres" "POLICYD_POSTGRES_DSN" }}
{{- $cfg := index $.Values.fleet $store }}
{{- $plain := ternary $cfg.url $cfg.dsn (eq $store "valkey") }}
{{- if $cfg.existingSecret.name }}
- name: {{ $var }}
  valueFrom:
    secretKeyRef:
      name: {{ $cfg.existingSecret.name | quote }}
      key: {{ $cfg.existingSecret.key | quote }}
{{- else if $plain }}
- name: {{ $var }}
  value: {{ $plain | quote }}
{{- end }}
{{- end }}
{{- range .Values.providerKeys.env }}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .secretName | quote }}
      key: {{ .key | quote }}
      {{- if hasKey . "optional" }}
      optional: {{ .optional }}
      {{- end }}
{{- end }}
{{- if or .Values.otel.enabled .Values.metrics.enabled }}
- name: POD_NAME
  valueFrom: {fieldRef: {fieldPath: metadata.name}}
- name: POD_NAMESPACE
  valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
- name: NODE_NAME
  valueFrom: {fieldRef: {fieldPath: spec.nodeName}}
- name: HOST_IP
  valueFrom: {fieldRef: {fieldPath: status.hostIP}}
- name: OTEL_SERVICE_NAME
  value: {{ default (include "policyd.fullname" .) .Values.otel.serviceName | quote }}
{{- $attrs := list "k8s.pod.name=$(POD_NAME)" "k8s.namespace.name=$(POD_NAMESPACE)" "k8s.node.name=$(NODE_NAME)" (printf "service.version=%s" .Chart.AppVersion) }}
{{- range $k, $v := .Values.otel.resourceAttributes }}
{{- $attrs = append $attrs (printf "%s=%s" $k $v) }}
{{- end }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ join "," $attrs | quote }}
{{- end }}
{{- if .Values.otel.enabled }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ .Values.otel.endpoint | quote }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: {{ .Values.otel.protocol | quote }}
- name: OTEL_TRACES_EXPORTER
  value: otlp
- name: OTEL_METRICS_EXPORTER
  value: {{ ternary "otlp,prometheus" "otlp" .Values.metrics.enabled | quote }}
- name: OTEL_TRACES_SAMPLER
  value: {{ .Values.otel.sampler | quote }}
{{- if .Values.otel.samplerArg }}
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ .Values.otel.samplerArg | quote }}
{{- end }}
{{- if .Values.otel.headersSecret.secretName }}
- name: OTEL_EXPORTER_OTLP_HEADERS
  valueFrom:
    secretKeyRef:
      name: {{ .Values.otel.headersSecret.secretName | quote }}
      key: {{ .Values.otel.headersSecret.key | quote }}
{{- end }}
{{- else if .Values.metrics.enabled }}
- name: OTEL_TRACES_EXPORTER
  value: none
- name: OTEL_METRICS_EXPORTER
  value: prometheus
{{- else }}
- name: OTEL_SDK_DISABLED
  value: "true"
{{- end }}
{{- if .Values.metrics.enabled }}
- name: OTEL_EXPORTER_PROMETHEUS_HOST
  value: 0.0.0.0
- name: OTEL_EXPORTER_PROMETHEUS_PORT
  value: {{ .Values.metrics.port | quote }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* One probe: native gRPC on the port (standalone) or `policyd-health` (sidecar). */}}
{{- define "policyd.probe" -}}
{{- $root := .root -}}
{{- if eq $root.Values.mode "standalone" -}}
grpc:
  port: {{ $root.Values.daemon.port }}
  service: {{ .service | quote }}
{{- else -}}
exec:
  command: [policyd-health, --service, {{ .service | quote }}, --timeout, {{ max 1 (sub (int .probe.timeoutSeconds) 1) | quote }}]
{{- end }}
{{- with .probe.initialDelaySeconds }}
initialDelaySeconds: {{ . }}
{{- end }}
periodSeconds: {{ .probe.periodSeconds }}
timeoutSeconds: {{ .probe.timeoutSeconds }}
failureThreshold: {{ .probe.failureThreshold }}
{{- end }}

{{- define "policyd.container" -}}
{{- include "policyd.validate" . -}}
- name: {{ ternary "policyd" .Values.sidecar.containerName (eq .Values.mode "standalone") }}
  image: {{ include "policyd.image" . | quote }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  {{- if and (eq .Values.mode "sidecar") .Values.sidecar.native }}
  restartPolicy: Always
  {{- end }}
  command: [policyd]
  args:
    - --log-level
    - {{ .Values.daemon.logLevel }}
    - serve
    {{- range .Values.daemon.extraArgs }}
    - {{ . | quote }}
    {{- end }}
  {{- if or (eq .Values.mode "standalone") .Values.metrics.enabled }}
  ports:
    {{- if eq .Values.mode "standalone" }}
    - name: grpc
      containerPort: {{ .Values.daemon.port }}
      protocol: TCP
    {{- if .Values.http.enabled }}
    - name: http
      containerPort: {{ .Values.http.port }}
      protocol: TCP
    {{- end }}
    {{- end }}
    {{- if .Values.metrics.enabled }}
    - name: metrics
      containerPort: {{ .Values.metrics.port }}
      protocol: TCP
    {{- end }}
  {{- end }}
  env:
    {{- include "policyd.env" . | nindent 4 }}
  {{- with .Values.extraEnvFrom }}
  envFrom:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if .Values.probes.startup.enabled }}
  startupProbe:
    {{- include "policyd.probe" (dict "root" . "probe" .Values.probes.startup "service" "") | nindent 4 }}
  {{- end }}
  {{- if .Values.probes.liveness.enabled }}
  livenessProbe:
    {{- include "policyd.probe" (dict "root" . "probe" .Values.probes.liveness "service" "") | nindent 4 }}
  {{- end }}
  {{- if .Values.probes.readiness.enabled }}
  readinessProbe:
    {{- include "policyd.probe" (dict "root" . "probe" .Values.probes.readiness "service" "policyd.v1.PolicyService") | nindent 4 }}
  {{- end }}
  {{- if gt (int .Values.daemon.preStopSleepSeconds) 0 }}
  lifecycle:
    preStop:
      exec:
        command: [sleep, {{ .Values.daemon.preStopSleepSeconds | quote }}]
  {{- end }}
  resources:
    {{- toYaml .Values.resources | nindent 4 }}
  securityContext:
    {{- toYaml .Values.securityContext | nindent 4 }}
  volumeMounts:
    {{- include "policyd.volumeMounts" . | nindent 4 }}
{{- end }}

{{- define "policyd.volumeMounts" -}}
- name: policyd-cache
  mountPath: {{ .Values.cache.mountPath }}
- name: policyd-tmp
  mountPath: /tmp
{{- if include "policyd.configMapName" . }}
- name: policyd-policy
  mountPath: {{ .Values.policy.mountPath }}
  readOnly: true
{{- end }}
{{- range $i, $f := .Values.providerKeys.files }}
- name: {{ printf "policyd-keys-%d" $i }}
  mountPath: {{ $f.mountPath }}
  readOnly: true
{{- end }}
{{- if and (eq .Values.mode "sidecar") .Values.sidecar.unixSocket.enabled }}
{{ include "policyd.socketVolumeMount" . }}
{{- end }}
{{- end }}

{{- define "policyd.volumes" -}}
- name: policyd-cache
  {{- if eq .Values.cache.type "persistentVolumeClaim" }}
  persistentVolumeClaim:
    claimName: {{ include "policyd.cacheClaimName" . }}
  {{- else }}
  emptyDir:
    sizeLimit: {{ .Values.cache.emptyDir.sizeLimit }}
    {{- with .Values.cache.emptyDir.medium }}
    medium: {{ . }}
    {{- end }}
  {{- end }}
- name: policyd-tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
{{- with include "policyd.configMapName" . }}
- name: policyd-policy
  configMap:
    name: {{ . }}
{{- end }}
{{- range $i, $f := .Values.providerKeys.files }}
- name: {{ printf "policyd-keys-%d" $i }}
  secret:
    secretName: {{ $f.secretName }}
    # Readable by the daemon's user whatever the pod's fsGroup (a sidecar's pod may set none).
    defaultMode: 0444
    {{- with $f.items }}
    items:
      {{- toYaml . | nindent 6 }}
    {{- end }}
{{- end }}
{{- if and (eq .Values.mode "sidecar") .Values.sidecar.unixSocket.enabled }}
- name: policyd-socket
  emptyDir: {}
{{- end }}
{{- end }}
