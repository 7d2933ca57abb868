{{/*
Sidecar mode: what an application's chart includes to run policyd in its own pods.
Call each with this chart's scope, `.Subcharts.policyd` (the dependency's name), e.g.

  spec:
    terminationGracePeriodSeconds: {{ include "policyd.terminationGracePeriodSeconds" .Subcharts.policyd }}
    containers:
      - name: app
        env:
          - name: POLICYD_ADDRESS
            value: {{ include "policyd.address" .Subcharts.policyd | quote }}
      {{- include "policyd.sidecarContainer" .Subcharts.policyd | nindent 6 }}
    volumes:
      {{- include "policyd.sidecarVolumes" .Subcharts.policyd | nindent 6 }}

docs/deploy.md walks through it; the chart's sidecar test renders exactly that.
*/}}

{{/* The policyd container (a one-item YAML list). */}}
{{- define "policyd.sidecarContainer" -}}
{{- if ne .Values.mode "sidecar" -}}
{{- fail "policyd.sidecarContainer: set policyd's mode to sidecar (mode=standalone would also deploy a Deployment and a Service)" }}
{{- end }}
{{- include "policyd.container" . }}
{{- end }}

{{/* The volumes the sidecar mounts (a YAML list to append to the pod's volumes). */}}
{{- define "policyd.sidecarVolumes" -}}
{{- if ne .Values.mode "sidecar" -}}
{{- fail "policyd.sidecarVolumes: set policyd's mode to sidecar" }}
{{- end }}
{{- include "policyd.volumes" . }}
{{- end }}

{{/* The application container's mount of the shared socket directory (unixSocket.enabled). */}}
{{- define "policyd.socketVolumeMount" -}}
{{- if not .Values.sidecar.unixSocket.enabled -}}
{{- fail "policyd.socketVolumeMount: set sidecar.unixSocket.enabled" }}
{{- end -}}
- name: policyd-socket
  mountPath: {{ .Values.sidecar.unixSocket.dir }}
{{- end }}
