{{/* Chart name, possibly overridden. */}}
{{- define "vllmsnap.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Prefix of every object name. */}}
{{- define "vllmsnap.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "vllmsnap.operator.fullname" -}}{{ include "vllmsnap.fullname" . }}-operator{{- end -}}
{{- define "vllmsnap.agent.fullname" -}}{{ include "vllmsnap.fullname" . }}-agent{{- end -}}

{{/* Labels every object carries. */}}
{{- define "vllmsnap.labels" -}}
app.kubernetes.io/name: {{ include "vllmsnap.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: vllmsnap
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "vllmsnap.operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vllmsnap.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "vllmsnap.agent.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vllmsnap.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: agent
{{- end -}}

{{- define "vllmsnap.operator.labels" -}}
{{ include "vllmsnap.labels" . }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "vllmsnap.agent.labels" -}}
{{ include "vllmsnap.labels" . }}
app.kubernetes.io/component: agent
{{- end -}}

{{/* repository:tag or repository@digest. Argument: dict "image" .Values.x.image "context" $ */}}
{{- define "vllmsnap.image" -}}
{{- if .image.digest -}}
{{- printf "%s@%s" .image.repository .image.digest -}}
{{- else -}}
{{- printf "%s:%s" .image.repository (default .context.Chart.AppVersion .image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Name of the Secret with the agent's ca.crt, tls.crt, tls.key. */}}
{{- define "vllmsnap.agent.tlsSecretName" -}}
{{- if eq .Values.tls.mode "existingSecret" -}}
{{- required "tls.existingSecret must name a Secret when tls.mode is existingSecret" .Values.tls.existingSecret -}}
{{- else -}}
{{- include "vllmsnap.agent.fullname" . }}-tls
{{- end -}}
{{- end -}}

{{/* The host name the operator verifies in the agent's certificate; the operator connects to agent pod IPs. */}}
{{- define "vllmsnap.agent.tlsServerName" -}}
{{- printf "%s.%s.svc" (include "vllmsnap.agent.fullname" .) .Release.Namespace -}}
{{- end -}}

{{/*
The name the operator requires in an agent's certificate. With per-pod certificates (tls.mode certManagerCsi) it
holds {pod}, which the operator replaces by the name of the agent pod it dials: one agent's key cannot pass for
another's. Otherwise every agent shares the Service's name.
*/}}
{{- define "vllmsnap.agent.tlsExpectedName" -}}
{{- if eq .Values.tls.mode "certManagerCsi" -}}
{{- printf "{pod}.%s" (include "vllmsnap.agent.tlsServerName" .) -}}
{{- else -}}
{{- include "vllmsnap.agent.tlsServerName" . -}}
{{- end -}}
{{- end -}}

{{/* The Secret whose ca.crt the operator (and Prometheus) trust for agent certificates. */}}
{{- define "vllmsnap.agent.caSecretName" -}}
{{- if eq .Values.tls.mode "certManagerCsi" -}}
{{- if .Values.tls.certManager.issuerName -}}
{{- required "tls.certManagerCsi.caSecret must name a Secret with the issuer's ca.crt when tls.certManager.issuerName is set" .Values.tls.certManagerCsi.caSecret -}}
{{- else -}}
{{- include "vllmsnap.agent.fullname" . }}-ca
{{- end -}}
{{- else -}}
{{- include "vllmsnap.agent.tlsSecretName" . -}}
{{- end -}}
{{- end -}}

{{/* Service account identity the agent accepts (TokenReview username). */}}
{{- define "vllmsnap.operator.serviceAccountUser" -}}
{{- printf "system:serviceaccount:%s:%s" .Release.Namespace (include "vllmsnap.operator.fullname" .) -}}
{{- end -}}

{{/* Name of the agent PriorityClass, empty when none. */}}
{{- define "vllmsnap.agent.priorityClassName" -}}
{{- if .Values.agent.priorityClass.name -}}
{{- .Values.agent.priorityClass.name -}}
{{- else if .Values.agent.priorityClass.create -}}
{{- include "vllmsnap.agent.fullname" . -}}
{{- end -}}
{{- end -}}

{{/* Label whose value Prometheus uses as the job label, so alerts can name the job whatever scrapes it. */}}
{{- define "vllmsnap.metricsJobLabel" -}}vllmsnap.io/metrics-job{{- end -}}
