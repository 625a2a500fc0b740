{{/* Names, labels and images shared by the chart's templates. */}}

{{- define "pyresgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* <release>-pyresgate, or the release name when it already contains the chart name. */}}
{{- define "pyresgate.fullname" -}}
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

{{- define "pyresgate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "pyresgate.operatorName" -}}
{{- printf "%s-operator" (include "pyresgate.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "pyresgate.jaegerName" -}}
{{- printf "%s-jaeger" (include "pyresgate.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "pyresgate.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- default (include "pyresgate.operatorName" .) .Values.operator.serviceAccount.name }}
{{- else }}
{{- required "operator.serviceAccount.name is required when operator.serviceAccount.create is false" .Values.operator.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Name of the ResgateCluster (and of its client Service). */}}
{{- define "pyresgate.clusterName" -}}
{{- default (include "pyresgate.fullname" .) .Values.resgateCluster.name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels; call with (dict "ctx" $ "component" "operator"). Immutable in a workload. */}}
{{- define "pyresgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pyresgate.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Every object's labels; call with (dict "ctx" $ "component" "operator"). */}}
{{- define "pyresgate.labels" -}}
helm.sh/chart: {{ include "pyresgate.chart" .ctx }}
{{ include "pyresgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: pyresgate
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "pyresgate.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The gateways' default image (the operator's --gateway-image). */}}
{{- define "pyresgate.gatewayImage" -}}
{{- $repo := default .Values.image.repository .Values.gateway.image.repository }}
{{- $tag := default (default .Chart.AppVersion .Values.image.tag) .Values.gateway.image.tag }}
{{- printf "%s:%s" $repo $tag }}
{{- end }}

{{/* The ResgateCluster's spec: the values' spec, tracing pointed at the chart's Jaeger when it is on. */}}
{{- define "pyresgate.clusterSpec" -}}
{{- $spec := deepCopy .Values.resgateCluster.spec }}
{{- /* an empty urls list next to a serviceRef would break the CRD's "exactly one of" rule */}}
{{- if and $spec.nats (not $spec.nats.urls) }}
{{- $_ := unset $spec.nats "urls" }}
{{- end }}
{{- /* with autoscaling the HPA owns spec.replicas (scale subresource): Helm must not apply it, or the next
     upgrade conflicts with the HPA's field manager */}}
{{- if and $spec.autoscaling (ne (toString (dig "enabled" true $spec.autoscaling)) "false") }}
{{- $_ := unset $spec "replicas" }}
{{- end }}
{{- if .Values.jaeger.enabled }}
{{- $tracing := default (dict) $spec.tracing }}
{{- if not $tracing.otlpEndpoint }}
{{- $_ := set $tracing "otlpEndpoint" (printf "http://%s.%s.svc:4318" (include "pyresgate.jaegerName" .) .Release.Namespace) }}
{{- $_ := set $tracing "protocol" "http/protobuf" }}
{{- if not (hasKey $tracing "samplerRatio") }}
{{- $_ := set $tracing "samplerRatio" .Values.jaeger.samplerRatio }}
{{- end }}
{{- end }}
{{- $_ := set $spec "tracing" $tracing }}
{{- end }}
{{- toYaml $spec }}
{{- end }}

{{/* Client port of the gateways (spec.gateway.port, else the gateway's default 8080). */}}
{{- define "pyresgate.clusterPort" -}}
{{- $gateway := default (dict) .Values.resgateCluster.spec.gateway }}
{{- default 8080 $gateway.port }}
{{- end }}

{{/* Cross-field rules the JSON schema cannot say clearly. */}}
{{- define "pyresgate.validate" -}}
{{- if and (gt (int .Values.operator.replicas) 1) (not .Values.operator.peering.enabled) }}
{{- fail "operator.replicas > 1 needs operator.peering.enabled=true: two standalone operators would both act" }}
{{- end }}
{{- if and (or .Values.ingress.enabled .Values.httpRoute.enabled) (not .Values.resgateCluster.enabled) }}
{{- fail "ingress.enabled / httpRoute.enabled route to the release's ResgateCluster: set resgateCluster.enabled=true" }}
{{- end }}
{{- if .Values.resgateCluster.enabled }}
{{- $nats := default (dict) .Values.resgateCluster.spec.nats }}
{{- if eq (len (default (list) $nats.urls)) 0 | and (not $nats.serviceRef) }}
{{- fail "resgateCluster.spec.nats needs urls (e.g. [nats://nats.messaging:4222]) or serviceRef ({name: nats, namespace: messaging})" }}
{{- end }}
{{- if and .Values.operator.watchNamespaces (not (has .Release.Namespace .Values.operator.watchNamespaces)) }}
{{- fail (printf "resgateCluster is installed in the release namespace %s, which operator.watchNamespaces %v does not list: add it, or the operator never sees the ResgateCluster" .Release.Namespace .Values.operator.watchNamespaces) }}
{{- end }}
{{- if and $nats.serviceRef (gt (len (default (list) $nats.urls)) 0) }}
{{- fail "resgateCluster.spec.nats: set either urls or serviceRef, not both" }}
{{- end }}
{{- end }}
{{- end }}
