{{/* Names and labels. */}}
{{- define "mongars.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "mongars.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "mongars.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mongars.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "mongars.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "mongars.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "mongars.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "mongars.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "mongars.secretName" -}}
{{- default (printf "%s-env" (include "mongars.fullname" .)) .Values.secrets.existingSecret -}}
{{- end -}}

{{- define "mongars.image" -}}
{{ printf "%s:%s" .Values.image.repository (toString .Values.image.tag) }}
{{- end -}}

{{- define "mongars.rayServiceName" -}}
{{- printf "%s-ray" (include "mongars.fullname" .) | trunc 50 | trimSuffix "-" -}}
{{- end -}}

{{/* The Serve proxies' Service that KubeRay creates for the RayService. */}}
{{- define "mongars.rayServeUrl" -}}
{{- printf "http://%s-serve-svc.%s.svc:8000" (include "mongars.rayServiceName" .) .Release.Namespace -}}
{{- end -}}

{{- define "mongars.vaultAgent" -}}
{{- if and .Values.vault.enabled (or (eq .Values.vault.mode "agent") .Values.vault.agentToken) -}}
true
{{- end -}}
{{- end -}}

{{- define "mongars.vaultKvPath" -}}
{{- printf "%s/data/%s" .Values.vault.mount .Values.vault.path -}}
{{- end -}}

{{/* Pod annotations: the Vault Agent Injector, then podAnnotations. Called with the root
     context merged with prePopulateOnly (true for the Job: a sidecar would keep it alive). */}}
{{- define "mongars.podAnnotations" -}}
{{- if include "mongars.vaultAgent" . }}
vault.hashicorp.com/agent-inject: "true"
vault.hashicorp.com/role: {{ .Values.vault.role | quote }}
{{- with .Values.vault.address }}
vault.hashicorp.com/service: {{ . | quote }}
{{- end }}
{{- with .Values.vault.agentImage }}
vault.hashicorp.com/agent-image: {{ . | quote }}
{{- end }}
{{- if eq .Values.vault.mode "agent" }}
vault.hashicorp.com/agent-pre-populate-only: "true"
vault.hashicorp.com/agent-inject-secret-mongars.env: {{ include "mongars.vaultKvPath" . | quote }}
vault.hashicorp.com/agent-inject-template-mongars.env: |
  {{`{{- with secret "`}}{{ include "mongars.vaultKvPath" . }}{{`" -}}
  export MONGARS_SECRET_KEY={{ .Data.data.secret_key | toJSON }}
  {{- with .Data.data.llm_api_key }}
  export MONGARS_LLM__API_KEY={{ . | toJSON }}
  {{- end }}`}}
  {{- with .Values.externalPostgresql }}
  {{- if and .host (not .passwordSecret.name) }}
  {{`export MONGARS_DATABASE_URL={{ printf "`}}{{ include "mongars.databaseUrl" (dict "pg" . "password" "%s") }}{{`" (.Data.data.database_password | urlquery) | toJSON }}`}}
  {{- end }}
  {{- end }}
  {{`{{- end }}`}}
{{- else }}
vault.hashicorp.com/agent-pre-populate-only: {{ .prePopulateOnly | quote }}
vault.hashicorp.com/agent-inject-token: "true"
{{- end }}
{{- end }}
{{- with .podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* postgresql+asyncpg://user[:password]@host:port/db[?query] */}}
{{- define "mongars.databaseUrl" -}}
{{- $auth := ternary (printf "%s:%s" .pg.user .password) .pg.user (ne .password "") -}}
{{- printf "postgresql+asyncpg://%s@%s:%v/%s" $auth .pg.host .pg.port .pg.database -}}
{{- if .pg.query }}?{{ .pg.query }}{{ end -}}
{{- end -}}

{{/* The command: with the Vault agent, source the rendered env file first. */}}
{{- define "mongars.command" -}}
{{- if and .root.Values.vault.enabled (eq .root.Values.vault.mode "agent") }}
- sh
- -c
- . /vault/secrets/mongars.env && exec {{ join " " .args }}
{{- else }}
{{- toYaml .args }}
{{- end }}
{{- end -}}

{{/* Environment shared by the API and the migration Job. */}}
{{- define "mongars.env" -}}
- name: MONGARS_ENV
  value: production
- name: MONGARS_HOST
  value: 0.0.0.0
- name: MONGARS_PORT
  value: "8000"
- name: MONGARS_DATA_DIR
  value: /data
- name: MONGARS_DB_AUTO_UPGRADE
  value: "false"
- name: HOME
  value: /tmp
- name: MLFLOW_DISABLE_TELEMETRY
  value: "true"
- name: HF_HUB_OFFLINE
  value: "1"
{{- with .Values.externalPostgresql }}
{{- if .host }}
{{- if .passwordSecret.name }}
- name: MONGARS_PG_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .passwordSecret.name }}
      key: {{ .passwordSecret.key }}
- name: MONGARS_DATABASE_URL
  value: {{ include "mongars.databaseUrl" (dict "pg" . "password" "$(MONGARS_PG_PASSWORD)") | quote }}
{{- else if and $.Values.vault.enabled (eq $.Values.vault.mode "native") }}
{{- /* monGARS adds the entry's database_password itself */}}
- name: MONGARS_DATABASE_URL
  value: {{ include "mongars.databaseUrl" (dict "pg" . "password" "") | quote }}
{{- else if not $.Values.vault.enabled }}
{{- fail "externalPostgresql.host needs externalPostgresql.passwordSecret.name, or Vault" }}
{{- end }}
{{- end }}
{{- end }}
{{- with .Values.externalRedis }}
{{- if .host }}
{{- if .passwordSecret.name }}
- name: MONGARS_REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .passwordSecret.name }}
      key: {{ .passwordSecret.key }}
- name: MONGARS_REDIS_URL
  value: {{ printf "%s://:$(MONGARS_REDIS_PASSWORD)@%s:%v/%v" .scheme .host .port .db | quote }}
{{- else }}
- name: MONGARS_REDIS_URL
  value: {{ printf "%s://%s:%v/%v" .scheme .host .port .db | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- if .Values.rayService.enabled }}
- name: MONGARS_LLM__PROVIDER
  value: ray
- name: MONGARS_LLM__BASE_URLS
  value: {{ include "mongars.rayServeUrl" . | quote }}
{{- end }}
{{- if and .Values.vault.enabled (eq .Values.vault.mode "native") }}
- name: MONGARS_SECRETS__BACKEND
  value: vault
- name: MONGARS_SECRETS__VAULT_ADDR
  value: {{ required "vault.address is required with vault.enabled" .Values.vault.address | quote }}
- name: MONGARS_SECRETS__VAULT_MOUNT
  value: {{ .Values.vault.mount | quote }}
- name: MONGARS_SECRETS__VAULT_PATH
  value: {{ .Values.vault.path | quote }}
{{- if .Values.vault.agentToken }}
- name: MONGARS_SECRETS__VAULT_AUTH
  value: token
- name: MONGARS_SECRETS__VAULT_TOKEN_FILE
  value: /vault/secrets/token
{{- end }}
{{- end }}
{{- range $name, $value := .Values.config }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end -}}

{{- define "mongars.envFrom" -}}
- secretRef:
    name: {{ include "mongars.secretName" . }}
    optional: {{ and .Values.vault.enabled (not .Values.secrets.create) (not .Values.secrets.existingSecret) }}
{{- end -}}

{{/* Ray pods (rayservice.yaml). */}}
{{- define "mongars.rayEnv" -}}
- name: RAY_USAGE_STATS_ENABLED
  value: "0"
- name: RAY_DISABLE_DOCKER_CPU_WARNING
  value: "1"
- name: RAY_SERVE_ENABLE_TASK_EVENTS
  value: "0"
- name: HF_HUB_OFFLINE
  value: "1"
- name: MONGARS_DATA_DIR
  value: /data
{{- end -}}

{{- define "mongars.rayMounts" -}}
- name: data
  mountPath: /data
- name: tmp
  mountPath: /tmp/ray
{{- end -}}

{{- define "mongars.rayVolumes" -}}
- name: data
  emptyDir: {}
- name: tmp
  emptyDir: {}
{{- end -}}
