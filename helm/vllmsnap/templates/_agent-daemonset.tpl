{{/*
The agent DaemonSet, defined once. Rendered as an object when agent.managedBy=chart, and into the ConfigMap
<fullname>-agent-daemonset (key daemonset.yaml) when agent.managedBy=operator, where the operator reads it
as the desired state of its dependent DaemonSet.
*/}}
{{- define "vllmsnap.agent.daemonset" -}}
{{- $ag := .Values.agent -}}
{{- $nv := $ag.nvidia -}}
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: {{ include "vllmsnap.agent.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- $labels := include "vllmsnap.agent.labels" . }}
    {{- if eq $ag.managedBy "operator" }}
    {{- $labels = $labels | replace (printf "app.kubernetes.io/managed-by: %s" .Release.Service) "app.kubernetes.io/managed-by: vllmsnap-operator" }}
    {{- end }}
    {{- $labels | nindent 4 }}
spec:
  revisionHistoryLimit: 3
  selector:
    matchLabels:
      {{- include "vllmsnap.agent.selectorLabels" . | nindent 6 }}
  updateStrategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: {{ $ag.maxUnavailable }}
  template:
    metadata:
      # Only labels that change with the pod itself, so a chart version bump alone does not restart every agent.
      labels:
        {{- include "vllmsnap.agent.selectorLabels" . | nindent 8 }}
        app.kubernetes.io/part-of: vllmsnap
        {{ include "vllmsnap.metricsJobLabel" . }}: {{ include "vllmsnap.agent.fullname" . }}
      {{- with $ag.podAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      serviceAccountName: {{ include "vllmsnap.agent.fullname" . }}
      automountServiceAccountToken: true
      # The agent sees every process of the node: it finds a pod's container processes and runs CRIU on them.
      hostPID: true
      {{- with .Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with (include "vllmsnap.agent.priorityClassName" .) }}
      priorityClassName: {{ . }}
      {{- end }}
      {{- if eq $nv.mode "runtimeClass" }}
      runtimeClassName: {{ $nv.runtimeClassName }}
      {{- end }}
      # Jobs in flight finish or are recorded before the agent stops; images are never left half-written.
      terminationGracePeriodSeconds: 120
      containers:
        - name: agent
          image: {{ include "vllmsnap.image" (dict "image" $ag.image "context" $) | quote }}
          imagePullPolicy: {{ $ag.image.pullPolicy }}
          command:
            - java
            - -Dquarkus.profile=agent
            {{- if eq $nv.mode "hostPath" }}
            # The GPU checkpoint code loads exactly this file (never the node's whole library directory).
            - -Dvllmsnap.libcuda=/host/nvidia/lib/libcuda.so.1
            {{- end }}
            {{- range (splitList " " $ag.javaOptions) }}
            {{- if . }}
            - {{ . | quote }}
            {{- end }}
            {{- end }}
            - -jar
            - /opt/vllmsnap/quarkus-run.jar
          # Read by the %agent. profile of application.properties (docs/agent.md): node name, storage, the one
          # identity allowed to call (TokenReview user system:serviceaccount:OPERATOR_NAMESPACE:OPERATOR_SERVICE_ACCOUNT).
          env:
            - name: NODE_NAME
              valueFrom:
                fieldRef:
                  fieldPath: spec.nodeName
            - name: POD_NAMESPACE
              valueFrom:
                fieldRef:
                  fieldPath: metadata.namespace
            - name: VLLMSNAP_STORAGE
              value: /var/lib/vllmsnap
            - name: VLLMSNAP_MAX_JOBS
              value: {{ $ag.maxConcurrentJobs | quote }}
            - name: VLLMSNAP_THP_FILL
              value: {{ $ag.hugePageFill | quote }}
            - name: VLLMSNAP_MAP_FILL
              value: {{ ternary "on" "off" $ag.mapFill | quote }}
            - name: OPERATOR_NAMESPACE
              value: {{ .Release.Namespace | quote }}
            - name: OPERATOR_SERVICE_ACCOUNT
              value: {{ include "vllmsnap.operator.fullname" . | quote }}
            # The audience the operator's token must be bound to, and the budget of callers without an approved token.
            - name: VLLMSNAP_TOKEN_AUDIENCE
              value: {{ $ag.auth.tokenAudience | quote }}
            - name: VLLMSNAP_AGENT_CLIENT_REQUESTS_PER_SECOND
              value: {{ $ag.auth.clientRequestsPerSecond | quote }}
            - name: VLLMSNAP_AGENT_CLIENT_BURST
              value: {{ $ag.auth.clientBurst | quote }}
            # The node's cgroup tree (profile-scoped key, so it wins over application.properties' %agent. value).
            - name: _AGENT_VLLMSNAP_AGENT_CGROUP_ROOT
              value: /host/sys/fs/cgroup
            - name: _AGENT_QUARKUS_HTTP_SSL_PORT
              value: {{ $ag.apiPort | quote }}
            - name: QUARKUS_MANAGEMENT_PORT
              value: {{ $ag.metricsPort | quote }}
            - name: QUARKUS_LOG_CATEGORY__IO_VLLMSNAP__LEVEL
              value: {{ $ag.logLevel | quote }}
            - name: QUARKUS_LOG_CONSOLE_JSON_ENABLED
              value: {{ eq $ag.logFormat "json" | quote }}
            {{- if eq $nv.mode "runtimeClass" }}
            # The NVIDIA container toolkit mounts the driver libraries (libcuda.so.1) and the GPU device files.
            - name: NVIDIA_VISIBLE_DEVICES
              value: all
            - name: NVIDIA_DRIVER_CAPABILITIES
              value: {{ $nv.driverCapabilities | quote }}
            {{- end }}
            {{- with $ag.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          # HTTPS only: the API under /api/v1 on "api" (every request needs the operator's token), /q/health and
          # /q/metrics on "metrics" (the management interface).
          ports:
            - name: api
              containerPort: {{ $ag.apiPort }}
              protocol: TCP
            - name: metrics
              containerPort: {{ $ag.metricsPort }}
              protocol: TCP
          startupProbe:
            httpGet:
              path: /q/health/started
              port: metrics
              scheme: HTTPS
            periodSeconds: 2
            failureThreshold: 90
          livenessProbe:
            httpGet:
              path: /q/health/live
              port: metrics
              scheme: HTTPS
            periodSeconds: 10
            timeoutSeconds: 5
            failureThreshold: 6
          readinessProbe:
            httpGet:
              path: /q/health/ready
              port: metrics
              scheme: HTTPS
            periodSeconds: 5
            timeoutSeconds: 3
            failureThreshold: 3
          resources:
            {{- toYaml $ag.resources | nindent 12 }}
          # CRIU needs the full set of capabilities, ptrace of every process and the node's namespaces.
          securityContext:
            privileged: true
            runAsUser: 0
            runAsNonRoot: false
            allowPrivilegeEscalation: true
          volumeMounts:
            - name: images
              mountPath: /var/lib/vllmsnap
            # The node's cgroup tree: finding a container's processes, and placing a restored tree into its
            # placeholder pod's cgroup (writes cgroup.procs), which the agent's own cgroup namespace cannot reach.
            - name: cgroup
              mountPath: /host/sys/fs/cgroup
            - name: tls
              mountPath: /etc/vllmsnap/agent-tls
              readOnly: true
            - name: tmp
              mountPath: /tmp
            {{- if eq $nv.mode "hostPath" }}
            - name: nvidia-lib
              mountPath: /host/nvidia/lib
              readOnly: true
            {{- end }}
      volumes:
        - name: images
          hostPath:
            path: {{ $ag.imageDir }}
            type: DirectoryOrCreate
        - name: cgroup
          hostPath:
            path: /sys/fs/cgroup
            type: Directory
        {{- if eq .Values.tls.mode "certManagerCsi" }}
        # A key and certificate of this pod's own, made on this node by cert-manager's CSI driver and renewed by it
        # (the agent reloads them). The operator requires the pod's name in it.
        - name: tls
          csi:
            driver: {{ .Values.tls.certManagerCsi.driver }}
            readOnly: true
            volumeAttributes:
              {{- $cm := .Values.tls.certManager }}
              csi.cert-manager.io/issuer-name: {{ default (printf "%s-ca" (include "vllmsnap.agent.fullname" .)) $cm.issuerName | quote }}
              csi.cert-manager.io/issuer-kind: {{ ternary $cm.issuerKind "Issuer" (ne $cm.issuerName "") | quote }}
              csi.cert-manager.io/issuer-group: cert-manager.io
              csi.cert-manager.io/dns-names: {{ printf "${POD_NAME}.%s,%s" (include "vllmsnap.agent.tlsServerName" .) (include "vllmsnap.agent.tlsServerName" .) | quote }}
              csi.cert-manager.io/duration: {{ .Values.tls.certManagerCsi.duration | quote }}
              csi.cert-manager.io/renew-before: {{ .Values.tls.certManagerCsi.renewBefore | quote }}
              csi.cert-manager.io/key-usages: "digital signature,server auth"
        {{- else }}
        - name: tls
          secret:
            secretName: {{ include "vllmsnap.agent.tlsSecretName" . }}
            defaultMode: 0400
        {{- end }}
        - name: tmp
          emptyDir: {}
        {{- if eq $nv.mode "hostPath" }}
        - name: nvidia-lib
          hostPath:
            path: {{ $nv.hostLibDir }}
            type: Directory
        {{- end }}
      {{- with $ag.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $ag.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $ag.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end -}}
