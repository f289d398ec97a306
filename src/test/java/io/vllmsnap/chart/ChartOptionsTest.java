package io.vllmsnap.chart;

import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.EnvVar;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.PodSpec;
import io.fabric8.kubernetes.api.model.Secret;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.Toleration;
import io.fabric8.kubernetes.api.model.Volume;
import io.fabric8.kubernetes.api.model.apps.DaemonSet;
import io.fabric8.kubernetes.api.model.rbac.ClusterRole;
import io.fabric8.kubernetes.api.model.rbac.PolicyRule;
import io.fabric8.kubernetes.api.model.rbac.Role;
import io.fabric8.kubernetes.api.model.scheduling.v1.PriorityClass;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayInputStream;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.Base64;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/** What each documented option changes in the rendered objects. */
class ChartOptionsTest {

    private static String env(Container c, String name) {
        return c.getEnv().stream().filter(e -> e.getName().equals(name)).map(EnvVar::getValue).findFirst()
                .orElseThrow(() -> new AssertionError("no env " + name + " in " + c.getName()));
    }

    private static Container operatorContainer(RenderedChart chart) {
        return chart.operator().getSpec().getTemplate().getSpec().getContainers().getFirst();
    }

    private static PodSpec agentPod(RenderedChart chart) {
        return chart.agentDaemonSet().getSpec().getTemplate().getSpec();
    }

    @Test
    void defaultsLetTheOperatorManageTheAgentFromAConfigMapItMayRead() {
        RenderedChart chart = Scenarios.defaults();
        assertThat(chart.all(DaemonSet.class)).isEmpty();
        ConfigMap desired = chart.get(ConfigMap.class, "vllmsnap-agent-daemonset");
        DaemonSet agent = chart.agentDaemonSet();
        assertThat(agent.getMetadata().getName()).isEqualTo("vllmsnap-agent");
        assertThat(agent.getMetadata().getNamespace()).isEqualTo("vllmsnap");
        assertThat(agent.getMetadata().getLabels()).containsEntry("app.kubernetes.io/managed-by", "vllmsnap-operator");
        assertThat(Scenarios.named("chart-agent-values.yaml").agentDaemonSet().getMetadata().getLabels())
                .containsEntry("app.kubernetes.io/managed-by", "Helm");

        Container operator = operatorContainer(chart);
        assertThat(env(operator, "VLLMSNAP_DAEMONSET_MANAGED_BY")).isEqualTo("operator");
        assertThat(env(operator, "VLLMSNAP_DAEMONSET_CONFIGMAP")).isEqualTo(desired.getMetadata().getName());
        assertThat(env(operator, "VLLMSNAP_DAEMONSET_NAME")).isEqualTo(agent.getMetadata().getName());
        // The selector the operator uses to find agent pods matches the pods the DaemonSet makes.
        Map<String, String> podLabels = agent.getSpec().getTemplate().getMetadata().getLabels();
        for (String pair : env(operator, "VLLMSNAP_AGENT_CLIENT_POD_SELECTOR").split(",")) {
            String[] kv = pair.split("=", 2);
            assertThat(podLabels).containsEntry(kv[0], kv[1]);
        }
        Role role = chart.get(Role.class, "vllmsnap-operator");
        // what io.vllmsnap.operator.AgentDaemonSetKeeper does: create, update (puts drift back); never delete
        assertThat(rule(role.getRules(), "apps", "daemonsets").getVerbs())
                .containsExactlyInAnyOrder("get", "list", "watch", "create", "update");
        assertThat(rule(role.getRules(), "", "configmaps").getVerbs()).containsExactlyInAnyOrder("get", "list", "watch");
    }

    @Test
    void defaultsPlaceTheAgentOnGpuNodesWithImagesOnTheHostAndTheNvidiaRuntime() {
        RenderedChart chart = Scenarios.defaults();
        PodSpec pod = agentPod(chart);
        assertThat(pod.getNodeSelector()).containsEntry("nvidia.com/gpu.present", "true");
        assertThat(pod.getTolerations()).extracting(Toleration::getKey).contains("nvidia.com/gpu");
        assertThat(pod.getRuntimeClassName()).isEqualTo("nvidia");
        assertThat(env(pod.getContainers().getFirst(), "NVIDIA_DRIVER_CAPABILITIES")).contains("compute");
        assertThat(env(pod.getContainers().getFirst(), "VLLMSNAP_MAP_FILL")).as("the fast path is the default").isEqualTo("on");
        assertThat(env(pod.getContainers().getFirst(), "VLLMSNAP_THP_FILL")).isEqualTo("auto");
        Volume images = volume(pod, "images");
        assertThat(images.getHostPath().getPath()).isEqualTo("/var/lib/vllmsnap");
        assertThat(images.getHostPath().getType()).isEqualTo("DirectoryOrCreate");
        assertThat(pod.getPriorityClassName()).isNull();
        assertThat(chart.all(PriorityClass.class)).isEmpty();
    }

    @Test
    void operatorMayHoldExactlyTheLeaseItsLeaderElectionUses() {
        RenderedChart ha = Scenarios.named("ha-values.yaml");
        assertThat(ha.operator().getSpec().getReplicas()).isEqualTo(2);
        Container operator = operatorContainer(ha);
        String lease = io.vllmsnap.operator.LeaderElection.LEASE_NAME;
        PolicyRule leases = ha.get(Role.class, "vllmsnap-operator").getRules().stream()
                .filter(r -> r.getResources().contains("leases") && r.getVerbs().contains("update")).findFirst().orElseThrow();
        assertThat(leases.getResourceNames()).containsExactly(lease);
        assertThat(operator.getImage()).isEqualTo(
                "vllmsnap/operator@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
        assertThat(env(operator, "_OPERATOR_QUARKUS_LOG_CONSOLE_JSON_ENABLED")).isEqualTo("false");
        assertThat(env(operator, "EXAMPLE")).isEqualTo("1");
        var pdb = ha.all(io.fabric8.kubernetes.api.model.policy.v1.PodDisruptionBudget.class).getFirst();
        assertThat(pdb.getSpec().getMinAvailable().getIntVal()).isEqualTo(1);
        assertThat(ha.operator().getSpec().getTemplate().getMetadata().getLabels())
                .containsAllEntriesOf(pdb.getSpec().getSelector().getMatchLabels());
        assertThat(Scenarios.defaults().all(io.fabric8.kubernetes.api.model.policy.v1.PodDisruptionBudget.class)).isEmpty();
    }

    @Test
    void watchedNamespacesGetARoleEachAndNoClusterWideWorkloadRights() {
        RenderedChart ha = Scenarios.named("ha-values.yaml");
        assertThat(env(operatorContainer(ha), "QUARKUS_OPERATOR_SDK_NAMESPACES")).isEqualTo("inference,staging");
        List<Role> workloadRoles = ha.all(Role.class).stream()
                .filter(r -> r.getMetadata().getName().equals("vllmsnap-operator-workloads")).toList();
        assertThat(workloadRoles).extracting(r -> r.getMetadata().getNamespace()).containsExactlyInAnyOrder("inference", "staging");
        assertThat(ha.find(ClusterRole.class, "vllmsnap-operator-workloads")).isEmpty();
        ClusterRole clusterWide = ha.get(ClusterRole.class, "vllmsnap-operator-cluster");
        assertThat(clusterWide.getRules()).flatExtracting(PolicyRule::getResources)
                .containsExactly("nodes");
        // read, and labelled with the node agent report (io.vllmsnap.operator.NodeAgentReporter)
        assertThat(clusterWide.getRules().getFirst().getVerbs()).containsExactlyInAnyOrder("get", "list", "watch", "patch");

        RenderedChart all = Scenarios.defaults();
        assertThat(env(operatorContainer(all), "QUARKUS_OPERATOR_SDK_NAMESPACES")).isEqualTo("JOSDK_ALL_NAMESPACES");
        ClusterRole workloads = all.get(ClusterRole.class, "vllmsnap-operator-workloads");
        assertThat(rule(workloads.getRules(), "vllmsnap.io", "vllmsnapshots/status").getVerbs()).contains("update", "patch");
        assertThat(rule(workloads.getRules(), "vllmsnap.io", "vllmrestores/finalizers").getVerbs()).containsExactly("update");
        assertThat(rule(workloads.getRules(), "", "pods").getVerbs()).contains("create", "delete");
        assertThat(rule(workloads.getRules(), "", "events").getVerbs()).containsExactlyInAnyOrder("create", "patch");
    }

    @Test
    void theAgentMayOnlyReviewTokens() {
        for (RenderedChart chart : Scenarios.all().toList()) {
            ClusterRole agent = chart.all(ClusterRole.class).stream()
                    .filter(r -> "agent".equals(r.getMetadata().getLabels().get("app.kubernetes.io/component")))
                    .findFirst().orElseThrow();
            assertThat(agent.getRules()).as(chart.scenario()).singleElement().satisfies(r -> {
                assertThat(r.getApiGroups()).containsExactly("authentication.k8s.io");
                assertThat(r.getResources()).containsExactly("tokenreviews");
                assertThat(r.getVerbs()).containsExactly("create");
            });
            assertThat(chart.all(Role.class)).as(chart.scenario())
                    .noneMatch(r -> "agent".equals(r.getMetadata().getLabels().get("app.kubernetes.io/component")));
        }
    }

    @Test
    void chartManagedAgentIsRenderedWithHostPathDriverAndItsOwnPriorityClass() {
        RenderedChart chart = Scenarios.named("chart-agent-values.yaml");
        assertThat(chart.all(DaemonSet.class)).hasSize(1);
        assertThat(chart.all(ConfigMap.class)).noneMatch(c -> c.getMetadata().getName().endsWith("-agent-daemonset"));
        assertThat(rule(chart.get(Role.class, "vllmsnap-operator").getRules(), "apps", "daemonsets").getVerbs())
                .containsExactlyInAnyOrder("get", "list", "watch");
        PodSpec pod = agentPod(chart);
        assertThat(pod.getRuntimeClassName()).isNull();
        assertThat(volume(pod, "nvidia-lib").getHostPath().getPath()).isEqualTo("/home/kubernetes/bin/nvidia/lib64");
        assertThat(pod.getContainers().getFirst().getCommand()).contains("-Dvllmsnap.libcuda=/host/nvidia/lib/libcuda.so.1");
        assertThat(pod.getContainers().getFirst().getVolumeMounts())
                .anySatisfy(m -> assertThat(m.getMountPath()).isEqualTo("/host/nvidia/lib"));
        assertThat(volume(pod, "images").getHostPath().getPath()).isEqualTo("/mnt/nvme/vllmsnap");
        assertThat(env(pod.getContainers().getFirst(), "VLLMSNAP_MAX_JOBS")).isEqualTo("4");
        assertThat(env(pod.getContainers().getFirst(), "VLLMSNAP_MAP_FILL")).isEqualTo("off");
        assertThat(pod.getNodeSelector()).containsExactlyEntriesOf(Map.of("node-role.example/gpu", "true"));
        assertThat(pod.getTolerations()).extracting(Toleration::getKey).containsExactly("dedicated");
        PriorityClass priority = chart.all(PriorityClass.class).getFirst();
        assertThat(priority.getValue()).isEqualTo(900000);
        assertThat(pod.getPriorityClassName()).isEqualTo(priority.getMetadata().getName());
        assertThat(chart.agentDaemonSet().getSpec().getUpdateStrategy().getRollingUpdate().getMaxUnavailable().getStrVal())
                .isEqualTo("25%");
    }

    @Test
    void generatedTlsSecretHoldsACaAndAServerCertificateForTheNameTheOperatorVerifies() throws Exception {
        RenderedChart chart = Scenarios.defaults();
        Secret tls = chart.get(Secret.class, "vllmsnap-agent-tls");
        assertThat(tls.getType()).isEqualTo("kubernetes.io/tls");
        CertificateFactory x509 = CertificateFactory.getInstance("X.509");
        X509Certificate ca = (X509Certificate) x509.generateCertificate(
                new ByteArrayInputStream(Base64.getDecoder().decode(tls.getData().get("ca.crt"))));
        X509Certificate server = (X509Certificate) x509.generateCertificate(
                new ByteArrayInputStream(Base64.getDecoder().decode(tls.getData().get("tls.crt"))));
        server.verify(ca.getPublicKey()); // signed by the CA the operator trusts
        assertThat(ca.getBasicConstraints()).isGreaterThanOrEqualTo(0);
        String serverName = env(operatorContainer(chart), "VLLMSNAP_AGENT_CLIENT_SERVER_NAME");
        assertThat(serverName).isEqualTo("vllmsnap-agent.vllmsnap.svc");
        assertThat(server.getSubjectAlternativeNames().stream().map(san -> String.valueOf(san.get(1))).toList()).contains(serverName);
        assertThat(new String(Base64.getDecoder().decode(tls.getData().get("tls.key")))).contains("PRIVATE KEY");
        // The operator mounts only the CA, never the agent's key.
        Volume caVolume = volume(chart.operator().getSpec().getTemplate().getSpec(), "agent-ca");
        assertThat(caVolume.getSecret().getItems()).extracting(i -> i.getKey()).containsExactly("ca.crt");
    }

    @Test
    void certManagerModeRendersACertificateInsteadOfASecret() {
        RenderedChart own = Scenarios.named("certmanager-values.yaml");
        assertThat(own.all(Secret.class)).isEmpty();
        List<GenericKubernetesResource> certificates = own.generic("cert-manager.io/v1", "Certificate");
        assertThat(certificates).hasSize(2); // the chart's CA and the agent's server certificate
        GenericKubernetesResource server = certificates.stream()
                .filter(c -> c.getMetadata().getName().equals("vllmsnap-agent")).findFirst().orElseThrow();
        assertThat(spec(server).get("secretName")).isEqualTo("vllmsnap-agent-tls");
        assertThat(String.valueOf(spec(server).get("dnsNames"))).contains("vllmsnap-agent.vllmsnap.svc");
        assertThat(own.generic("cert-manager.io/v1", "Issuer")).hasSize(2);

        RenderedChart cluster = Scenarios.named("certmanager-issuer-values.yaml");
        assertThat(cluster.generic("cert-manager.io/v1", "Issuer")).isEmpty();
        GenericKubernetesResource only = cluster.generic("cert-manager.io/v1", "Certificate").getFirst();
        assertThat(spec(only).get("issuerRef")).isEqualTo(Map.of("name", "cluster-ca", "kind", "ClusterIssuer", "group", "cert-manager.io"));
        assertThat(spec(only).get("duration")).isEqualTo("2160h");
    }

    @Test
    void existingSecretModeMountsTheNamedSecretAndOverridesNames() {
        RenderedChart chart = Scenarios.named("existing-secret-values.yaml");
        assertThat(chart.all(Secret.class)).isEmpty();
        assertThat(volume(agentPod(chart), "tls").getSecret().getSecretName()).isEqualTo("my-agent-tls");
        assertThat(chart.operator().getMetadata().getName()).isEqualTo("snap-operator");
        assertThat(agentPod(chart).getPriorityClassName()).isEqualTo("gpu-system");
        assertThat(chart.all(PriorityClass.class)).isEmpty();
        assertThat(agentPod(chart).getImagePullSecrets()).extracting(r -> r.getName()).containsExactly("regcred");
        assertThat(chart.objects()).allSatisfy(o -> assertThat(o.getMetadata().getLabels()).containsEntry("cost-center", "ml"));
    }

    @Test
    void monitoringObjectsAppearOnlyWhenAskedForAndScrapeTheServicesPorts() {
        RenderedChart off = Scenarios.defaults();
        assertThat(off.all(GenericKubernetesResource.class)).isEmpty();
        assertThat(off.all(ConfigMap.class)).anySatisfy(c ->
                assertThat(c.getMetadata().getLabels()).containsEntry("grafana_dashboard", "1"));

        RenderedChart on = Scenarios.named("certmanager-values.yaml");
        List<GenericKubernetesResource> serviceMonitors = on.generic("monitoring.coreos.com/v1", "ServiceMonitor");
        assertThat(serviceMonitors).hasSize(2);
        assertThat(on.generic("monitoring.coreos.com/v1", "PodMonitor")).hasSize(2);
        assertThat(on.generic("monitoring.coreos.com/v1", "PrometheusRule")).hasSize(1);
        for (GenericKubernetesResource monitor : serviceMonitors) {
            assertThat(monitor.getMetadata().getLabels()).containsEntry("release", "kube-prometheus-stack");
            @SuppressWarnings("unchecked")
            Map<String, String> selector = (Map<String, String>) ((Map<?, ?>) spec(monitor).get("selector")).get("matchLabels");
            String jobLabel = (String) spec(monitor).get("jobLabel");
            Service service = on.all(Service.class).stream()
                    .filter(s -> s.getMetadata().getLabels().entrySet().containsAll(selector.entrySet())).findFirst().orElseThrow();
            assertThat(service.getMetadata().getLabels()).containsKey(jobLabel);
        }
        ConfigMap dashboard = on.all(ConfigMap.class).stream()
                .filter(c -> c.getData().containsKey("vllmsnap.json")).findFirst().orElseThrow();
        assertThat(dashboard.getMetadata().getAnnotations()).containsEntry("grafana_folder", "vllmsnap");

        assertThat(Scenarios.named("certmanager-issuer-values.yaml").all(ConfigMap.class))
                .noneMatch(c -> c.getData().containsKey("vllmsnap.json"));
    }

    @Test
    void agentDownAlertNamesTheJobItsScrapeProduces() {
        RenderedChart on = Scenarios.named("certmanager-values.yaml");
        String rules = on.yaml();
        Service agentService = on.get(Service.class, "vllmsnap-agent");
        String job = agentService.getMetadata().getLabels().get("vllmsnap.io/metrics-job");
        assertThat(rules).contains("up{job=\"" + job + "\"} == 0");
        assertThat(rules).contains("> 5").contains("team: inference");
    }

    @Test
    void agentAcceptsExactlyTheOperatorsServiceAccountAndServesHttpsOnly() {
        for (RenderedChart chart : Scenarios.all().toList()) {
            Container agent = agentPod(chart).getContainers().getFirst();
            String user = "system:serviceaccount:" + env(agent, "OPERATOR_NAMESPACE") + ":" + env(agent, "OPERATOR_SERVICE_ACCOUNT");
            var operatorPod = chart.operator().getSpec().getTemplate().getSpec();
            assertThat(user).as(chart.scenario())
                    .isEqualTo("system:serviceaccount:" + chart.operator().getMetadata().getNamespace() + ":" + operatorPod.getServiceAccountName());
            // the API port and the management port (health, metrics; ChartSecurityTest), both HTTPS
            assertThat(agent.getPorts()).as(chart.scenario()).extracting(p -> p.getName()).containsExactlyInAnyOrder("api", "metrics");
            for (var probe : List.of(agent.getStartupProbe(), agent.getLivenessProbe(), agent.getReadinessProbe())) {
                assertThat(probe.getHttpGet().getScheme()).isEqualTo("HTTPS");
            }
            assertThat(env(agent, "_AGENT_QUARKUS_HTTP_SSL_PORT")).isEqualTo(String.valueOf(agent.getPorts().stream()
                    .filter(p -> p.getName().equals("api")).findFirst().orElseThrow().getContainerPort()));
        }
    }

    /** The paths and keys of the application's %agent./%operator. configuration are where the chart mounts things. */
    @Test
    void mountsAreWhereTheApplicationConfigurationLooks() throws Exception {
        java.util.Properties app = new java.util.Properties();
        try (var in = java.nio.file.Files.newInputStream(ChartFiles.ROOT.resolve("src/main/resources/application.properties"))) {
            app.load(in);
        }
        RenderedChart chart = Scenarios.defaults();
        Container agent = agentPod(chart).getContainers().getFirst();
        Container operator = operatorContainer(chart);
        Map<String, Container> byProfile = Map.of("%agent.", agent, "%operator.", operator);
        List<String> fileKeys = List.of("%agent.quarkus.tls.agent.key-store.pem.0.cert", "%agent.quarkus.tls.agent.key-store.pem.0.key",
                "%operator.vllmsnap.agent-client.ca-file", "%operator.vllmsnap.agent-client.token-file");
        for (String key : fileKeys) {
            String path = app.getProperty(key);
            if (path == null) {
                continue; // that component's configuration has not landed in this checkout
            }
            Container c = byProfile.get(key.substring(0, key.indexOf('.') + 1));
            assertThat(c.getVolumeMounts()).as(key + "=" + path + " is not under a mount of " + c.getName())
                    .anySatisfy(m -> assertThat(path).startsWith(m.getMountPath() + "/"));
        }
        String storage = app.getProperty("%agent.vllmsnap.agent.storage-root");
        if (storage != null) {
            assertThat(storage).contains("${VLLMSNAP_STORAGE");
            assertThat(agent.getVolumeMounts()).anySatisfy(m -> {
                assertThat(m.getName()).isEqualTo("images");
                assertThat(m.getMountPath()).isEqualTo(env(agent, "VLLMSNAP_STORAGE"));
            });
        }
    }

    /**
     * SmallRye Config looks up a profile's own key (%agent.x) before the plain one in any source, so an environment
     * variable for the plain key x would silently lose against application.properties' %agent.x. The chart must set
     * such keys through the profile-scoped variable (_AGENT_X).
     */
    @Test
    void environmentIsNotShadowedByProfileKeysOfTheApplicationConfiguration() throws Exception {
        java.util.Properties app = new java.util.Properties();
        try (var in = java.nio.file.Files.newInputStream(ChartFiles.ROOT.resolve("src/main/resources/application.properties"))) {
            app.load(in);
        }
        RenderedChart chart = Scenarios.defaults();
        Map<String, Container> byProfile = Map.of("agent", agentPod(chart).getContainers().getFirst(),
                "operator", operatorContainer(chart));
        byProfile.forEach((profile, container) -> {
            for (EnvVar e : container.getEnv()) {
                for (String key : app.stringPropertyNames()) {
                    if (key.startsWith("%" + profile + ".")) {
                        String plain = key.substring(profile.length() + 2);
                        assertThat(envName(plain)).as(profile + ": " + e.getName() + " is shadowed by " + key
                                + "; set _" + profile.toUpperCase() + "_" + e.getName() + " instead").isNotEqualTo(e.getName());
                    }
                }
            }
        });
    }

    /** The environment variable name SmallRye maps to a property name. */
    private static String envName(String property) {
        return property.replaceAll("[^a-zA-Z0-9]", "_").toUpperCase();
    }

    static Volume volume(PodSpec pod, String name) {
        return pod.getVolumes().stream().filter(v -> v.getName().equals(name)).findFirst()
                .orElseThrow(() -> new AssertionError("no volume " + name));
    }

    static PolicyRule rule(List<PolicyRule> rules, String group, String resource) {
        return rules.stream().filter(r -> r.getApiGroups().contains(group) && r.getResources().contains(resource))
                .findFirst().orElseThrow(() -> new AssertionError("no rule for " + group + "/" + resource));
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> spec(GenericKubernetesResource r) {
        return (Map<String, Object>) r.getAdditionalProperties().get("spec");
    }
}
