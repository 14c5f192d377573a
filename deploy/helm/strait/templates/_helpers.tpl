{{/*
The release's name prefix: the release name, with "-strait" unless the
release name already says strait. Release "strait" gives strait-producer
and strait-consumer, the names of deploy/k8s.
*/}}
{{- define "strait.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "strait.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/part-of: strait
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
The labels that select one binary's pods. Argument: dict "root" $ "name"
"producer" or "consumer".
*/}}
{{- define "strait.selectorLabels" -}}
app.kubernetes.io/name: strait-{{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{/* The image of a binary: dict "root" $ "name" "producer"|"consumer". */}}
{{- define "strait.image" -}}
{{- $v := .root.Values -}}
{{- $repo := (index $v .name).image.repository -}}
{{- with $v.image.registry }}{{ $repo = printf "%s/%s" (trimSuffix "/" .) $repo }}{{ end -}}
{{- printf "%s:%s" $repo ($v.image.tag | default .root.Chart.AppVersion | toString) -}}
{{- end -}}

{{/*
Where a file of a binary's `files` is mounted: a directory per
configuration key, holding the one entry. Argument: the configuration key.
*/}}
{{- define "strait.fileDir" -}}
/var/run/strait/{{ . | replace "." "-" | replace "_" "-" }}
{{- end -}}

{{/*
strait.setPath sets the dotted path of map to value, making the maps on
the way. Argument: dict "map" m "path" "a.b.c" "value" v.
*/}}
{{- define "strait.setPath" -}}
{{- $m := .map -}}
{{- $parts := splitList "." .path -}}
{{- range initial $parts -}}
{{- if not (kindIs "map" (get $m .)) -}}
{{- $_ := set $m . dict -}}
{{- end -}}
{{- $m = get $m . -}}
{{- end -}}
{{- $_ := set $m (last $parts) .value -}}
{{- end -}}

{{/*
The configuration file of a binary: its `config` values, with http_addr on
its port and every key of `files` naming its mounted file. Argument: dict
"root" $ "name" "producer"|"consumer".
*/}}
{{- define "strait.config" -}}
{{- $b := index .root.Values .name -}}
{{- $cfg := deepCopy ($b.config | default dict) -}}
{{- $_ := set $cfg "http_addr" (printf ":%v" $b.port) -}}
{{- range $key, $f := $b.files -}}
{{- if $f -}}
{{- include "strait.setPath" (dict "map" $cfg "path" $key "value" (printf "%s/%s" (include "strait.fileDir" $key) $f.key)) -}}
{{- end -}}
{{- end -}}
{{- if and (eq .name "producer") $b.caBundle -}}
{{- include "strait.setPath" (dict "map" $cfg "path" "source.tls.ca_file" "value" "/etc/strait/ca/ca-bundle.pem") -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/*
The pod template of a binary. Argument: dict "root" $ "name"
"producer"|"consumer".
*/}}
{{- define "strait.podTemplate" -}}
{{- $root := .root -}}
{{- $name := .name -}}
{{- $b := index $root.Values $name -}}
{{- $full := include "strait.fullname" $root -}}
metadata:
  labels:
    {{- include "strait.labels" $root | nindent 4 }}
    {{- include "strait.selectorLabels" . | nindent 4 }}
  annotations:
    prometheus.io/scrape: "true"
    prometheus.io/port: {{ $b.port | quote }}
    prometheus.io/path: /metrics
    # A configuration change rolls the pods.
    checksum/config: {{ include "strait.config" . | sha256sum }}
    {{- with $root.Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  {{- if eq $name "consumer" }}
  serviceAccountName: {{ if $b.serviceAccount.create }}{{ $full }}-consumer{{ else }}{{ $b.serviceAccount.name | default "default" }}{{ end }}
  {{- else }}
  automountServiceAccountToken: false
  {{- end }}
  terminationGracePeriodSeconds: {{ $b.terminationGracePeriodSeconds }}
  securityContext:
    {{- toYaml $root.Values.podSecurityContext | nindent 4 }}
  {{- with $root.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  containers:
    - name: {{ $name }}
      image: {{ include "strait.image" . | quote }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      args: ["run", "-config", "/etc/strait/{{ $name }}.yaml"]
      {{- with $b.env }}
      env:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      ports:
        - name: http
          containerPort: {{ $b.port }}
      livenessProbe:
        httpGet:
          path: /healthz
          port: http
        periodSeconds: 10
        failureThreshold: 6
      readinessProbe:
        httpGet:
          path: /readyz
          port: http
        periodSeconds: 5
      resources:
        {{- toYaml $b.resources | nindent 8 }}
      securityContext:
        {{- toYaml $root.Values.securityContext | nindent 8 }}
      volumeMounts:
        - name: config
          mountPath: /etc/strait
          readOnly: true
        {{- if and (eq $name "producer") $b.caBundle }}
        - name: ca
          mountPath: /etc/strait/ca
          readOnly: true
        {{- end }}
        {{- range $key, $f := $b.files }}
        {{- if $f }}
        - name: {{ include "strait.fileDir" $key | base | printf "file-%s" | trunc 63 | trimSuffix "-" }}
          mountPath: {{ include "strait.fileDir" $key }}
          readOnly: true
        {{- end }}
        {{- end }}
  volumes:
    - name: config
      configMap:
        name: {{ $full }}-{{ $name }}
    {{- if and (eq $name "producer") $b.caBundle }}
    - name: ca
      configMap:
        name: {{ $full }}-producer-ca
    {{- end }}
    {{- range $key, $f := $b.files }}
    {{- if $f }}
    - name: {{ include "strait.fileDir" $key | base | printf "file-%s" | trunc 63 | trimSuffix "-" }}
      {{- if $f.existingSecret }}
      secret:
        secretName: {{ $f.existingSecret }}
      {{- else if $f.existingConfigMap }}
      configMap:
        name: {{ $f.existingConfigMap }}
      {{- else }}
      {{- fail (printf "%s.files.%s: set existingSecret or existingConfigMap" $name $key) }}
      {{- end }}
        items:
          - key: {{ required (printf "%s.files.%s.key: the entry of the Secret or ConfigMap" $name $key) $f.key }}
            path: {{ $f.key }}
    {{- end }}
    {{- end }}
  {{- with $b.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $b.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $b.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
