{{/* Names come from the release, so two releases never collide (fullnameOverride wins). */}}
{{- define "hubmirror.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains "hubmirror" .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-hubmirror" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Objects the Airflow subchart reads (its extraEnvFrom is templated in the subchart's context, which
cannot call this chart's helpers): named from the release alone, see values.yaml airflow.extraEnvFrom. */}}
{{- define "hubmirror.airflowEnvName" -}}{{ .Release.Name }}-hubmirror-airflow-env{{- end -}}

{{- define "hubmirror.selectorLabels" -}}
app.kubernetes.io/name: hubmirror
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "hubmirror.labels" -}}
{{ include "hubmirror.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | quote }}
{{- end -}}

{{- define "hubmirror.image" -}}
{{ printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) | quote }}
{{- end -}}

{{/* The bucket, from values.s3 only: rendered into serve's env, the format Job's env and the Airflow
connection, so the two sides can never disagree. Credentials come from Secrets, never from here. */}}
{{- define "hubmirror.s3env" -}}
- {name: HUBMIRROR_S3_ENDPOINT, value: {{ .Values.s3.endpoint | quote }}}
- {name: HUBMIRROR_S3_BUCKET, value: {{ .Values.s3.bucket | quote }}}
- {name: HUBMIRROR_S3_REGION, value: {{ .Values.s3.region | quote }}}
{{- with .Values.s3.publicEndpoint }}
- {name: HUBMIRROR_S3_PUBLIC_ENDPOINT, value: {{ . | quote }}}
{{- end }}
{{- end -}}

{{- define "hubmirror.s3connection" -}}
{{- $extra := dict "endpoint_url" .Values.s3.endpoint "region_name" .Values.s3.region "bucket" .Values.s3.bucket -}}
{{- with .Values.s3.publicEndpoint }}{{ $_ := set $extra "public_endpoint" . }}{{ end -}}
{{- dict "conn_type" "aws" "extra" $extra | toJson -}}
{{- end -}}

{{/* serve's Airflow REST API: the official chart's api-server Service of this release unless given
(named <release>-api-server, or <airflow fullname>-api-server with airflow.useStandardNaming). */}}
{{- define "hubmirror.airflowUrl" -}}
{{- $a := .Values.airflow -}}
{{- $prefix := .Release.Name -}}
{{- if $a.useStandardNaming -}}
{{- $name := default "airflow" $a.nameOverride -}}
{{- $prefix = $a.fullnameOverride | default (ternary .Release.Name (printf "%s-%s" .Release.Name $name) (contains $name .Release.Name)) -}}
{{- end -}}
{{- .Values.serve.ondemand.airflowUrl | default (printf "http://%s-api-server:8080" ($prefix | trunc 63 | trimSuffix "-")) -}}
{{- end -}}

{{- define "hubmirror.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 50000
runAsGroup: 0
fsGroup: 0
seccompProfile: {type: RuntimeDefault}
{{- end -}}

{{- define "hubmirror.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities: {drop: [ALL]}
{{- end -}}
