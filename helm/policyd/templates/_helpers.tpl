{{/*
Names, labels and cross-value checks. Every helper takes the chart's root scope, so an
application chart that depends on this one can call them with `.Subcharts.policyd`.
*/}}

{{- define "policyd.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "policyd.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "policyd.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "policyd.selectorLabels" -}}
app.kubernetes.io/name: {{ include "policyd.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "policyd.labels" -}}
helm.sh/chart: {{ include "policyd.chart" . }}
{{ include "policyd.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: {{ .Values.mode }}
{{- end }}

{{- define "policyd.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "policyd.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "policyd.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The ConfigMap holding the policy file, or "" for the bundled offline default. */}}
{{- define "policyd.configMapName" -}}
{{- if .Values.policy.existingConfigMap }}
{{- .Values.policy.existingConfigMap }}
{{- else if .Values.policy.inline }}
{{- printf "%s-policy" (include "policyd.fullname" .) }}
{{- end }}
{{- end }}

{{- define "policyd.cacheClaimName" -}}
{{- default (printf "%s-cache" (include "policyd.fullname" .)) .Values.cache.persistentVolumeClaim.existingClaim }}
{{- end }}

{{/* The daemon's listen address (POLICYD_LISTEN) in the current mode. */}}
{{- define "policyd.listen" -}}
{{- if eq .Values.mode "standalone" }}
{{- printf "0.0.0.0:%d" (int .Values.daemon.port) }}
{{- else if .Values.sidecar.unixSocket.enabled }}
{{- printf "unix://%s/%s" (trimSuffix "/" .Values.sidecar.unixSocket.dir) .Values.sidecar.unixSocket.name }}
{{- else }}
{{- printf "127.0.0.1:%d" (int .Values.daemon.port) }}
{{- end }}
{{- end }}

{{/* What a client in the same pod dials (sidecar mode): 127.0.0.1:PORT or unix:///path. */}}
{{- define "policyd.address" -}}
{{- if and (eq .Values.mode "sidecar") .Values.sidecar.unixSocket.enabled }}
{{- include "policyd.listen" . }}
{{- else }}
{{- printf "127.0.0.1:%d" (int .Values.daemon.port) }}
{{- end }}
{{- end }}

{{/* Pod annotations that roll the pods when the inline policy changes. */}}
{{- define "policyd.podAnnotations" -}}
{{- if and .Values.policy.inline (not .Values.policy.existingConfigMap) -}}
checksum/policyd-policy: {{ printf "%s\n%s" .Values.policy.key .Values.policy.inline | sha256sum }}
{{- end }}
{{- end }}

{{/* terminationGracePeriodSeconds for a pod running policyd (checked against the drain grace). */}}
{{- define "policyd.terminationGracePeriodSeconds" -}}
{{- include "policyd.validate" . }}
{{- .Values.terminationGracePeriodSeconds }}
{{- end }}

{{/*
Checks that span several values (the schema covers each value alone). Renders nothing;
fails the render with a message naming the values to change.
*/}}
{{- define "policyd.validate" -}}
{{- $drain := add (int .Values.daemon.preStopSleepSeconds) (int .Values.daemon.grace) }}
{{- if le (int .Values.terminationGracePeriodSeconds) (int $drain) }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must be greater than daemon.preStopSleepSeconds + daemon.grace (%d + %d = %d), or the kubelet kills policyd while it drains" (int .Values.terminationGracePeriodSeconds) (int .Values.daemon.preStopSleepSeconds) (int .Values.daemon.grace) (int $drain)) }}
{{- end }}
{{- if and (eq .Values.cache.type "persistentVolumeClaim") (not .Values.cache.persistentVolumeClaim.existingClaim) (eq .Values.mode "standalone") (or .Values.autoscaling.enabled (gt (int .Values.replicaCount) 1)) (not (has "ReadWriteMany" .Values.cache.persistentVolumeClaim.accessModes)) }}
{{- fail "cache.type=persistentVolumeClaim: one ReadWriteOnce claim cannot serve several replicas; use replicaCount: 1 without autoscaling, a ReadWriteMany access mode, or cache.type=emptyDir" }}
{{- end }}
{{- if and .Values.serviceMonitor.enabled (not .Values.metrics.enabled) }}
{{- fail "serviceMonitor.enabled needs metrics.enabled: the ServiceMonitor scrapes the metrics port" }}
{{- end }}
{{- if and .Values.podDisruptionBudget.enabled (eq (toString .Values.podDisruptionBudget.minAvailable) "<nil>") (eq (toString .Values.podDisruptionBudget.maxUnavailable) "<nil>") }}
{{- fail "podDisruptionBudget: set one of minAvailable and maxUnavailable" }}
{{- end }}
{{- if and .Values.podDisruptionBudget.enabled (ne (toString .Values.podDisruptionBudget.minAvailable) "<nil>") (ne (toString .Values.podDisruptionBudget.maxUnavailable) "<nil>") }}
{{- fail "podDisruptionBudget: set only one of minAvailable and maxUnavailable (set the other to null)" }}
{{- end }}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) }}
{{- fail (printf "autoscaling.minReplicas (%d) must not exceed autoscaling.maxReplicas (%d)" (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) }}
{{- end }}
{{- if and .Values.autoscaling.enabled (not .Values.autoscaling.targetCPUUtilizationPercentage) (not .Values.autoscaling.targetMemoryUtilizationPercentage) }}
{{- fail "autoscaling.enabled needs targetCPUUtilizationPercentage or targetMemoryUtilizationPercentage" }}
{{- end }}
{{- if and (eq .Values.mode "standalone") .Values.sidecar.unixSocket.enabled }}
{{- fail "sidecar.unixSocket.enabled applies to mode=sidecar only (a standalone Service needs a TCP port)" }}
{{- end }}
{{- if and (eq .Values.mode "sidecar") .Values.sidecar.unixSocket.enabled (gt (int (default 1 .Values.daemon.workers)) 1) }}
{{- fail (printf "daemon.workers (%d) must be 1 or null with sidecar.unixSocket.enabled: workers share a TCP port, never a Unix socket (docs/workers.md)" (int .Values.daemon.workers)) }}
{{- end }}
{{- end }}
