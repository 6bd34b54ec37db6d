{{- define "hubmirror.fullname" -}}{{ .Release.Name }}-hubmirror{{- end -}}
{{- define "hubmirror.labels" -}}
app.kubernetes.io/name: hubmirror
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}
{{- define "hubmirror.s3env" -}}
- {name: HUBMIRROR_S3_ENDPOINT, value: {{ .Values.s3.endpoint | quote }}}
- {name: HUBMIRROR_S3_BUCKET, value: {{ .Values.s3.bucket | quote }}}
- {name: HUBMIRROR_S3_REGION, value: {{ .Values.s3.region | quote }}}
{{- with .Values.s3.publicEndpoint }}
- {name: HUBMIRROR_S3_PUBLIC_ENDPOINT, value: {{ . | quote }}}
{{- end }}
{{- end -}}
