package io.vllmsnap.chart;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.ConfigMapBuilder;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.EnvVar;
import io.fabric8.kubernetes.api.model.apps.DaemonSet;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import io.smallrye.config.EnvConfigSource;
import io.smallrye.config.SmallRyeConfig;
import io.smallrye.config.SmallRyeConfigBuilder;
import io.vllmsnap.operator.AgentDaemonSetKeeper;
import io.vllmsnap.operator.AgentDaemonSetKeeper.State;
import io.vllmsnap.operator.AgentDaemonSetSettings;
import io.vllmsnap.operator.AgentDaemonSetSettings.ManagedBy;
import io.vllmsnap.operator.EventRecorder;
import io.quarkus.runtime.configuration.DurationConverter;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Both sides agree: the variables the chart gives the operator are the keys it reads, and the DaemonSet the chart
 * renders into its ConfigMap is one the operator creates and then finds in order (no endless "drift").
 */
@EnableKubernetesMockClient(crud = true)
class OperatorKeepsChartAgentTest {

    KubernetesClient client;

    /** The operator's settings as Quarkus would read them from the rendered container's environment. */
    static AgentDaemonSetSettings settingsFrom(RenderedChart chart) {
        Container operator = chart.operator().getSpec().getTemplate().getSpec().getContainers().getFirst();
        Map<String, String> env = new HashMap<>();
        for (EnvVar e : operator.getEnv()) {
            env.put(e.getName(), e.getValue() != null ? e.getValue() : "vllmsnap"); // fieldRef: the release namespace
        }
        SmallRyeConfig config = new SmallRyeConfigBuilder().withMapping(AgentDaemonSetSettings.class)
                .addDefaultInterceptors() // ${...} expressions, as in application.properties
                .withSources(new EnvConfigSource(env, 300))
                .withConverter(Duration.class, 100, DurationConverter::parseDuration) // "60s", as Quarkus reads it
                .withDefaultValue("vllmsnap.daemonset.namespace", "${POD_NAMESPACE}")
                .build();
        return config.getConfigMapping(AgentDaemonSetSettings.class);
    }

    @Test
    void theOperatorCreatesTheChartsAgentFromItsConfigMapAndFindsItInOrder() {
        RenderedChart chart = Scenarios.defaults();
        AgentDaemonSetSettings settings = settingsFrom(chart);
        assertThat(settings.managedBy()).isEqualTo(ManagedBy.OPERATOR);
        ConfigMap rendered = chart.get(ConfigMap.class, settings.configmap());
        assertThat(rendered.getMetadata().getNamespace()).isEqualTo(settings.namespace());
        client.configMaps().inNamespace(settings.namespace()).resource(new ConfigMapBuilder(rendered).build()).create();
        var keeper = new AgentDaemonSetKeeper(client, new EventRecorder(client), settings.managedBy(), settings.namespace(),
                settings.name(), settings.configmap());

        assertThat(keeper.keep().state()).isEqualTo(State.CREATED);
        DaemonSet agent = client.apps().daemonSets().inNamespace(settings.namespace()).withName(settings.name()).get();
        DaemonSet desired = chart.agentDaemonSet();
        assertThat(agent.getSpec()).isEqualTo(desired.getSpec());
        assertThat(agent.getMetadata().getLabels()).isEqualTo(desired.getMetadata().getLabels());
        assertThat(keeper.keep().state()).isEqualTo(State.IN_SYNC);
        // a restarted operator compares field by field: every field the chart renders must compare equal
        assertThat(new AgentDaemonSetKeeper(client, new EventRecorder(client), settings.managedBy(), settings.namespace(),
                settings.name(), settings.configmap()).keep().state()).isEqualTo(State.IN_SYNC);
    }

    @Test
    void withManagedByChartTheOperatorOnlyReadsTheChartsAgent() {
        RenderedChart chart = Scenarios.named("chart-agent-values.yaml");
        AgentDaemonSetSettings settings = settingsFrom(chart);
        assertThat(settings.managedBy()).isEqualTo(ManagedBy.CHART);
        DaemonSet byChart = chart.agentDaemonSet();
        assertThat(byChart.getMetadata().getName()).isEqualTo(settings.name());
        client.apps().daemonSets().inNamespace(settings.namespace()).resource(byChart).create();

        var keeper = new AgentDaemonSetKeeper(client, new EventRecorder(client), settings.managedBy(), settings.namespace(),
                settings.name(), settings.configmap());
        assertThat(keeper.keep().state()).isEqualTo(State.OBSERVED);
    }
}
