{{/* Names, labels and the operator's RBAC rules, shared by every template. */}}

{{- define "webapp-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The object name prefix: the release name, plus the chart name unless the release name already
contains it (so `helm install webapp-operator ...` gives plain `webapp-operator`).
*/}}
{{- define "webapp-operator.fullname" -}}
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

{{- define "webapp-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels: stable for the life of a release. Never `app.kubernetes.io/managed-by:
webapp-operator`: that value marks the objects the operator itself renders and watches.
*/}}
{{- define "webapp-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "webapp-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "webapp-operator.labels" -}}
helm.sh/chart: {{ include "webapp-operator.chart" . }}
{{ include "webapp-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: webapp-operator
{{- end }}

{{- define "webapp-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "webapp-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "webapp-operator.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion }}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/*
The operator's permissions in every namespace it watches, derived from what the code calls
(tests/chart/test_chart_rbac.py holds the table; test_chart_cluster.py the evidence):
- Kopf lists and watches WebApps, the managed Secrets, the operator's Deployments, ReplicaSets,
  Services, Ingresses, HorizontalPodAutoscalers, PodDisruptionBudgets and migration Jobs (its
  indexes and event handlers); the operator patches WebApp status only;
- Secrets: revision and environment snapshots and app-owned Secrets are created, their
  annotations and data merge-patched, pruned ones deleted;
- Deployments, Services, Ingresses, HorizontalPodAutoscalers, PodDisruptionBudgets and Jobs
  are written by server-side apply (PATCH; creating through apply needs `create` too, as does
  the dry-run create that first checks a name is free), obsolete ones deleted;
- Events are created (core/v1).
`get` only where the watches cannot say enough (`list` already reads as much): a Secret that
holds a name the operator meant to create (its own, or a squatter's to name), a Deployment whose
pod template someone changed (to name the fields and put them back).
*/}}
{{- define "webapp-operator.namespacedRules" -}}
- apiGroups: ["twelvefactor.dev"]
  resources: ["webapps"]
  verbs: ["list", "watch"]
- apiGroups: ["twelvefactor.dev"]
  resources: ["webapps/status"]
  verbs: ["patch"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["apps"]
  resources: ["replicasets"]
  verbs: ["list", "watch", "delete"]
- apiGroups: [""]
  resources: ["services"]
  verbs: ["list", "watch", "create", "patch"]
- apiGroups: ["networking.k8s.io"]
  resources: ["ingresses"]
  verbs: ["list", "watch", "create", "patch", "delete"]
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["list", "watch", "create", "patch", "delete"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["list", "watch", "create", "patch", "delete"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
# A WebApp's spec.serviceAccountName is read to check that the account grants the app.
- apiGroups: [""]
  resources: ["serviceaccounts"]
  verbs: ["get"]
{{- end }}

{{/*
Leader election is on with several replicas, or when asked for: "true" or "".
*/}}
{{- define "webapp-operator.leaderElection" -}}
{{- if or (gt (int .Values.replicas) 1) .Values.leaderElection.enabled -}}true{{- end -}}
{{- end }}
