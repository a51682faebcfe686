{{/* The chart name, or nameOverride. */}}
{{- define "pushservice.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* release-chart, or fullnameOverride; cut to 63 characters as DNS names must be. */}}
{{- define "pushservice.fullname" -}}
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

{{/* Labels of every object but the bundled Redis's. */}}
{{- define "pushservice.labels" -}}
{{ include "pushservice.commonLabels" . }}
app.kubernetes.io/component: gateway
{{- end }}

{{- define "pushservice.commonLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "pushservice.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "pushservice.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pushservice.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: gateway
{{- end }}

{{- define "pushservice.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "pushservice.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Seconds as a .NET TimeSpan (d.hh:mm:ss): a bare number would be read as days. */}}
{{- define "pushservice.timespan" -}}
{{- $s := int64 . -}}
{{- printf "%d.%02d:%02d:%02d" (div $s 86400) (mod (div $s 3600) 24) (mod (div $s 60) 60) (mod $s 60) -}}
{{- end }}

{{/* A scalar as configuration reads it: whole numbers without an exponent (YAML numbers arrive as floats). */}}
{{- define "pushservice.scalar" -}}
{{- if kindIs "float64" . -}}
{{- if eq . (floor .) -}}{{ int64 . }}{{- else -}}{{ . }}{{- end -}}
{{- else -}}
{{- toString . -}}
{{- end -}}
{{- end }}

{{/*
The option tree as environment variables: {Limits: {MaxConnections: 5}} under prefix PushService becomes
PushService__Limits__MaxConnections: "5"; list items are numbered, as .NET configuration binds them.
*/}}
{{- define "pushservice.flatten" -}}
{{- $prefix := .prefix -}}
{{- if kindIs "map" .value -}}
{{- range $key, $value := .value -}}
{{- include "pushservice.flatten" (dict "prefix" (printf "%s__%s" $prefix $key) "value" $value) -}}
{{- end -}}
{{- else if kindIs "slice" .value -}}
{{- range $index, $value := .value -}}
{{- include "pushservice.flatten" (dict "prefix" (printf "%s__%d" $prefix $index) "value" $value) -}}
{{- end -}}
{{- else if not (kindIs "invalid" .value) -}}
{{ $prefix }}: {{ include "pushservice.scalar" .value | quote }}
{{ end -}}
{{- end }}

{{/* The StackExchange.Redis configuration string the gateways get (the password joins it from $(REDIS_PASSWORD)). */}}
{{- define "pushservice.redisConfiguration" -}}
{{- $redis := .Values.redis -}}
{{- $modes := 0 -}}
{{- if $redis.configuration }}{{ $modes = add1 $modes }}{{ end -}}
{{- if $redis.sentinel.enabled }}{{ $modes = add1 $modes }}{{ end -}}
{{- if $redis.standalone.enabled }}{{ $modes = add1 $modes }}{{ end -}}
{{- if ne (int $modes) 1 -}}
{{- fail "Set exactly one of redis.configuration, redis.sentinel.enabled (with redis.sentinel.endpoints) and redis.standalone.enabled." -}}
{{- end -}}
{{- $parts := list -}}
{{- if $redis.standalone.enabled -}}
{{- $parts = append $parts (printf "%s-redis:6379" (include "pushservice.fullname" .)) -}}
{{- else if $redis.sentinel.enabled -}}
{{- if not $redis.sentinel.endpoints }}{{ fail "redis.sentinel.endpoints: list the Sentinels (host:26379)." }}{{ end -}}
{{- $parts = concat $parts $redis.sentinel.endpoints (list (printf "serviceName=%s" (required "redis.sentinel.serviceName is required" $redis.sentinel.serviceName))) -}}
{{- else -}}
{{- $parts = append $parts $redis.configuration -}}
{{- end -}}
{{- if include "pushservice.redisPasswordSet" . -}}
{{- $parts = append $parts "password=$(REDIS_PASSWORD)" -}}
{{- end -}}
{{- join "," $parts -}}
{{- end }}

{{- define "pushservice.redisPasswordSet" -}}
{{- if or .Values.redis.password .Values.redis.existingSecret }}true{{ end -}}
{{- end }}

{{/* The Secret holding the gateway's own secrets: the release's, or auth.existingSecret. */}}
{{- define "pushservice.secretName" -}}
{{- default (printf "%s-secrets" (include "pushservice.fullname" .)) .Values.auth.existingSecret }}
{{- end }}

{{/* Whether the release renders its own Secret. */}}
{{- define "pushservice.ownSecret" -}}
{{- if and (not .Values.auth.existingSecret) (or .Values.auth.jwtSecret .Values.auth.previousJwtSecrets .Values.apiKeys .Values.redis.password) }}true{{ end -}}
{{- end }}

{{/* Seconds Kubernetes waits before SIGKILL: preStop, then the whole drain, then what the server needs after it. */}}
{{- define "pushservice.terminationGracePeriodSeconds" -}}
{{- $d := .Values.drain -}}
{{- add (int $d.preStopSeconds) (int $d.delaySeconds) (int $d.windowSeconds) (int $d.closeTimeoutSeconds) 15 -}}
{{- end }}
