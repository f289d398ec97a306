package io.vllmsnap.chart;

import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.ContainerPort;
import io.fabric8.kubernetes.api.model.EnvVar;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.PodSpec;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.ServiceAccountTokenProjection;
import io.fabric8.kubernetes.api.model.Volume;
import io.fabric8.kubernetes.api.model.VolumeProjection;
import io.fabric8.kubernetes.api.model.networking.v1.NetworkPolicy;
import io.fabric8.kubernetes.api.model.networking.v1.NetworkPolicyIngressRule;
import io.fabric8.kubernetes.api.model.networking.v1.NetworkPolicyPeer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.InputStream;
import java.nio.file.Files;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * What the chart does for issue 16: the operator's credential towards agents, who may reach the agents, where
 * health and metrics are served, and per-pod agent certificates.
 */
class ChartSecurityTest {

    static Stream<RenderedChart> scenarios() {
        return Scenarios.all();
    }

    private static String env(Container c, String name) {
        return c.getEnv().stream().filter(e -> e.getName().equals(name)).map(EnvVar::getValue).findFirst()
                .orElseThrow(() -> new AssertionError("no env " + name + " in " + c.getName()));
    }

    private static Container agent(RenderedChart chart) {
        return chart.agentDaemonSet().getSpec().getTemplate().getSpec().getContainers().getFirst();
    }

    private static Container operator(RenderedChart chart) {
        return chart.operator().getSpec().getTemplate().getSpec().getContainers().getFirst();
    }

    private static int port(Container c, String name) {
        return c.getPorts().stream().filter(p -> name.equals(p.getName())).map(ContainerPort::getContainerPort).findFirst()
                .orElseThrow(() -> new AssertionError(c.getName() + " has no port " + name));
    }

    static Properties applicationProperties() throws Exception {
        Properties app = new Properties();
        try (InputStream in = Files.newInputStream(ChartFiles.ROOT.resolve("src/main/resources/application.properties"))) {
            app.load(in);
        }
        return app;
    }

    /**
     * main sent the operator's own service-account token (a credential for the API server) to every agent. The
     * operator's pod now carries a projected token for the agents' audience, where its client reads it, and the
     * agents accept exactly that audience and the operator's account.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("scenarios")
    void theOperatorShowsAgentsAProjectedTokenOfTheirOwnAudience(RenderedChart chart) throws Exception {
        PodSpec pod = chart.operator().getSpec().getTemplate().getSpec();
        Volume volume = ChartOptionsTest.volume(pod, "agent-token");
        List<VolumeProjection> sources = volume.getProjected().getSources();
        assertThat(sources).as(chart.scenario() + ": only the token, nothing else").singleElement()
                .satisfies(s -> assertThat(s.getServiceAccountToken()).isNotNull());
        ServiceAccountTokenProjection token = sources.getFirst().getServiceAccountToken();
        String audience = env(agent(chart), "VLLMSNAP_TOKEN_AUDIENCE");
        assertThat(token.getAudience()).as(chart.scenario()).isEqualTo(audience).isNotBlank()
                .doesNotContain("kubernetes.default.svc");
        assertThat(token.getExpirationSeconds()).isBetween(600L, 3600L);
        assertThat(token.getAudience()).isEqualTo(chart.values("agent", "auth", "tokenAudience"));

        String tokenFile = applicationProperties().getProperty("%operator.vllmsnap.agent-client.token-file");
        var mount = operator(chart).getVolumeMounts().stream().filter(m -> m.getName().equals("agent-token")).findFirst().orElseThrow();
        assertThat(tokenFile).isEqualTo(mount.getMountPath() + "/" + token.getPath());
        assertThat(tokenFile).doesNotStartWith("/var/run/secrets/kubernetes.io/serviceaccount");
        // the agent reads its audience from that variable
        assertThat(applicationProperties().getProperty("%agent.vllmsnap.agent.token-audience")).contains("${VLLMSNAP_TOKEN_AUDIENCE");
    }

    /** main had no NetworkPolicy: anyone in the cluster could reach the agents' API and try tokens. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("scenarios")
    void onlyTheOperatorReachesTheAgentApiAndTheMetricsPortIsOpenToWhomItSays(RenderedChart chart) {
        List<NetworkPolicy> policies = chart.all(NetworkPolicy.class);
        if (Boolean.FALSE.equals(chart.values("networkPolicy", "enabled"))) {
            assertThat(policies).as(chart.scenario()).isEmpty();
            return;
        }
        assertThat(policies).as(chart.scenario()).hasSize(1);
        NetworkPolicy policy = policies.getFirst();
        Map<String, String> agentLabels = chart.agentDaemonSet().getSpec().getTemplate().getMetadata().getLabels();
        Map<String, String> operatorLabels = chart.operator().getSpec().getTemplate().getMetadata().getLabels();
        assertThat(agentLabels).containsAllEntriesOf(policy.getSpec().getPodSelector().getMatchLabels());
        assertThat(operatorLabels).as("the policy must not select the operator")
                .doesNotContainEntry("app.kubernetes.io/component", agentLabels.get("app.kubernetes.io/component"));
        assertThat(policy.getSpec().getPolicyTypes()).containsExactly("Ingress");
        assertThat(policy.getMetadata().getNamespace()).isEqualTo(chart.agentDaemonSet().getMetadata().getNamespace());

        int api = port(agent(chart), "api");
        int metrics = port(agent(chart), "metrics");
        List<NetworkPolicyIngressRule> rules = policy.getSpec().getIngress();
        assertThat(rules).hasSize(2);
        List<NetworkPolicyIngressRule> toApi = rules.stream()
                .filter(r -> r.getPorts().stream().anyMatch(p -> p.getPort().getIntVal() == api)).toList();
        assertThat(toApi).singleElement().satisfies(r -> {
            assertThat(r.getPorts()).singleElement().satisfies(p -> assertThat(p.getProtocol()).isEqualTo("TCP"));
            assertThat(r.getFrom()).singleElement().satisfies(peer -> {
                assertThat(peer.getNamespaceSelector()).as("same namespace only").isNull();
                assertThat(peer.getIpBlock()).isNull();
                assertThat(operatorLabels).containsAllEntriesOf(peer.getPodSelector().getMatchLabels());
                assertThat(agentLabels).as("agents are not peers of each other")
                        .doesNotContainEntry("app.kubernetes.io/component", peer.getPodSelector().getMatchLabels().get("app.kubernetes.io/component"));
            });
        });
        NetworkPolicyIngressRule toMetrics = rules.stream().filter(r -> !toApi.contains(r)).findFirst().orElseThrow();
        assertThat(toMetrics.getPorts()).singleElement().satisfies(p -> assertThat(p.getPort().getIntVal()).isEqualTo(metrics));
        @SuppressWarnings("unchecked")
        List<Object> metricsFrom = (List<Object>) chart.values("networkPolicy", "metricsFrom");
        if (metricsFrom == null || metricsFrom.isEmpty()) {
            assertThat(toMetrics.getFrom()).isNullOrEmpty();
        } else {
            assertThat(toMetrics.getFrom()).extracting(NetworkPolicyPeer::getNamespaceSelector).doesNotContainNull();
            assertThat(toMetrics.getFrom()).hasSameSizeAs(metricsFrom);
        }
    }

    /** main served health and metrics on the API port; both components now serve them on "metrics". */
    @ParameterizedTest(name = "{0}")
    @MethodSource("scenarios")
    void healthAndMetricsAreServedOnTheManagementPort(RenderedChart chart) {
        Container agent = agent(chart);
        assertThat(agent.getPorts()).extracting(ContainerPort::getName).containsExactlyInAnyOrder("api", "metrics");
        assertThat(port(agent, "metrics")).isNotEqualTo(port(agent, "api"));
        assertThat(env(agent, "QUARKUS_MANAGEMENT_PORT")).isEqualTo(String.valueOf(port(agent, "metrics")));
        assertThat(port(agent, "metrics")).isEqualTo(chart.values("agent", "metricsPort"));
        for (var probe : List.of(agent.getStartupProbe(), agent.getLivenessProbe(), agent.getReadinessProbe())) {
            assertThat(probe.getHttpGet().getPort().getStrVal()).isEqualTo("metrics");
            assertThat(probe.getHttpGet().getScheme()).isEqualTo("HTTPS");
        }
        Container operator = operator(chart);
        assertThat(env(operator, "QUARKUS_MANAGEMENT_PORT")).isEqualTo(String.valueOf(port(operator, "metrics")));
        for (var probe : List.of(operator.getStartupProbe(), operator.getLivenessProbe(), operator.getReadinessProbe())) {
            assertThat(probe.getHttpGet().getPort().getStrVal()).isEqualTo("metrics");
        }
        for (Service s : chart.all(Service.class)) {
            assertThat(s.getSpec().getPorts()).as(s.getMetadata().getName()).anySatisfy(p -> {
                assertThat(p.getName()).isEqualTo("metrics");
                assertThat(p.getTargetPort().getStrVal()).isEqualTo("metrics");
            });
        }
        List<GenericKubernetesResource> monitors = new java.util.ArrayList<>(chart.generic("monitoring.coreos.com/v1", "ServiceMonitor"));
        monitors.addAll(chart.generic("monitoring.coreos.com/v1", "PodMonitor"));
        for (GenericKubernetesResource monitor : monitors) {
            Map<String, Object> spec = ChartOptionsTest.spec(monitor);
            @SuppressWarnings("unchecked")
            List<Map<String, Object>> endpoints = (List<Map<String, Object>>) spec.getOrDefault("endpoints", spec.get("podMetricsEndpoints"));
            assertThat(endpoints).allSatisfy(e -> assertThat(e.get("port")).isEqualTo("metrics"));
        }
        // both components read the port from this one key (the management interface)
        assertThat(chart.yaml()).doesNotContain("_AGENT_QUARKUS_MANAGEMENT_PORT");
    }

    /** main gave every agent one key: one node's agent could pass for any other. */
    @Test
    void perPodCertificatesNameTheirPodAndTheOperatorRequiresIt() {
        RenderedChart chart = Scenarios.named("per-pod-certs-values.yaml");
        Volume tls = ChartOptionsTest.volume(chart.agentDaemonSet().getSpec().getTemplate().getSpec(), "tls");
        assertThat(tls.getSecret()).isNull();
        assertThat(tls.getCsi().getDriver()).isEqualTo("csi.cert-manager.io");
        assertThat(tls.getCsi().getReadOnly()).isTrue();
        Map<String, String> attributes = tls.getCsi().getVolumeAttributes();
        assertThat(attributes.get("csi.cert-manager.io/dns-names"))
                .isEqualTo("${POD_NAME}.vllmsnap-agent.vllmsnap.svc,vllmsnap-agent.vllmsnap.svc");
        assertThat(attributes).containsEntry("csi.cert-manager.io/issuer-name", "vllmsnap-agent-ca")
                .containsEntry("csi.cert-manager.io/issuer-kind", "Issuer")
                .containsEntry("csi.cert-manager.io/duration", "12h")
                .containsEntry("csi.cert-manager.io/renew-before", "4h");
        assertThat(attributes.get("csi.cert-manager.io/key-usages")).contains("server auth");
        // the operator requires the dialled pod's own name; the CA it trusts is the issuer's
        assertThat(env(operator(chart), "VLLMSNAP_AGENT_CLIENT_SERVER_NAME"))
                .isEqualTo(io.vllmsnap.agent.client.AgentTls.POD_PLACEHOLDER + ".vllmsnap-agent.vllmsnap.svc");
        Volume ca = ChartOptionsTest.volume(chart.operator().getSpec().getTemplate().getSpec(), "agent-ca");
        assertThat(ca.getSecret().getSecretName()).isEqualTo("vllmsnap-agent-ca");
        assertThat(ca.getSecret().getItems()).extracting(i -> i.getKey()).containsExactly("ca.crt");
        List<GenericKubernetesResource> certificates = chart.generic("cert-manager.io/v1", "Certificate");
        assertThat(certificates).as("only the CA: agent certificates come from the CSI driver").singleElement()
                .satisfies(c -> assertThat(ChartOptionsTest.spec(c)).containsEntry("isCA", true).containsEntry("secretName", "vllmsnap-agent-ca"));
        assertThat(chart.generic("cert-manager.io/v1", "Issuer")).extracting(i -> i.getMetadata().getName())
                .contains("vllmsnap-agent-ca");

        RenderedChart own = Scenarios.named("per-pod-certs-issuer-values.yaml");
        Map<String, String> ownAttributes = ChartOptionsTest.volume(own.agentDaemonSet().getSpec().getTemplate().getSpec(), "tls")
                .getCsi().getVolumeAttributes();
        assertThat(ownAttributes).containsEntry("csi.cert-manager.io/issuer-name", "gpu-ca")
                .containsEntry("csi.cert-manager.io/issuer-kind", "ClusterIssuer");
        assertThat(ChartOptionsTest.volume(own.operator().getSpec().getTemplate().getSpec(), "agent-ca").getSecret().getSecretName())
                .isEqualTo("gpu-ca-bundle");
        assertThat(own.generic("cert-manager.io/v1", "Certificate")).isEmpty();
        assertThat(own.generic("cert-manager.io/v1", "Issuer")).isEmpty();

        // every other mode: one name for all agents, no placeholder
        assertThat(env(operator(Scenarios.defaults()), "VLLMSNAP_AGENT_CLIENT_SERVER_NAME")).isEqualTo("vllmsnap-agent.vllmsnap.svc");
    }

    @Test
    void theAgentsBudgetAndAudienceComeFromValues() {
        RenderedChart chart = Scenarios.named("per-pod-certs-values.yaml");
        Container agent = agent(chart);
        assertThat(env(agent, "VLLMSNAP_TOKEN_AUDIENCE")).isEqualTo("gpu-node-agents");
        assertThat(env(agent, "VLLMSNAP_AGENT_CLIENT_REQUESTS_PER_SECOND")).isEqualTo("2.5");
        assertThat(env(agent, "VLLMSNAP_AGENT_CLIENT_BURST")).isEqualTo("8");
        Volume token = ChartOptionsTest.volume(chart.operator().getSpec().getTemplate().getSpec(), "agent-token");
        assertThat(token.getProjected().getSources().getFirst().getServiceAccountToken().getExpirationSeconds()).isEqualTo(900L);
        assertThat(port(agent, "metrics")).isEqualTo(9443);
        assertThat(port(operator(chart), "metrics")).isEqualTo(9100);
    }

    @Test
    void unsafeOrIncompleteSecuritySettingsAreRefused(@org.junit.jupiter.api.io.TempDir java.nio.file.Path tmp) throws Exception {
        Map<String, String> refused = Map.of(
                "agent:\n  auth:\n    tokenExpirationSeconds: 300\n", "tokenExpirationSeconds",
                "agent:\n  auth:\n    tokenAudience: \"a b\"\n", "tokenAudience",
                "agent:\n  auth:\n    clientBurst: 0\n", "clientBurst",
                "networkPolicy:\n  allowAll: true\n", "allowAll",
                "tls:\n  mode: certManagerCsi\n  certManager:\n    issuerName: gpu-ca\n", "tls.certManagerCsi.caSecret");
        int i = 0;
        for (var e : refused.entrySet()) {
            java.nio.file.Path file = Files.writeString(tmp.resolve("bad-" + i++ + ".yaml"), e.getKey());
            org.assertj.core.api.Assertions.assertThatThrownBy(() -> RenderedChart.render(file)).as(e.getKey())
                    .hasMessageContaining(e.getValue());
        }
    }
}
