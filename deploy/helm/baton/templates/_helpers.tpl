{{- define "baton.fullname" -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "baton.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{- define "baton.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Settings shared by every Baton container; secrets only as files (NAME_FILE). */}}
{{- define "baton.env" -}}
- name: SECRET_KEY_FILE
  value: /run/secrets/baton/{{ .Values.secretKeys.secretKey }}
- name: DATABASE_URL_FILE
  value: /run/secrets/baton/{{ .Values.secretKeys.databaseUrl }}
- name: CELERY_BROKER_URL_FILE
  value: /run/secrets/baton/{{ .Values.secretKeys.brokerUrl }}
- name: ALLOWED_HOSTS
  value: {{ .Values.host | quote }}
- name: CSRF_TRUSTED_ORIGINS
  value: {{ printf "https://%s" .Values.host | quote }}
- name: BATON_BASE_URL
  value: {{ printf "https://%s" .Values.host | quote }}
- name: BATON_PROXY_SSL_HEADER
  value: {{ .Values.proxySslHeader | quote }}
- name: LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
{{- range $name, $value := .Values.extraEnv }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end -}}

{{- define "baton.volumeMounts" -}}
- name: secrets
  mountPath: /run/secrets/baton
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- end -}}

{{- define "baton.volumes" -}}
- name: secrets
  secret:
    secretName: {{ .Values.existingSecret }}
- name: tmp
  emptyDir: {}
{{- end -}}

{{/* Pod-level fields shared by every Baton pod. */}}
{{- define "baton.podSpec" -}}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
volumes:
  {{- include "baton.volumes" . | nindent 2 }}
{{- end -}}
