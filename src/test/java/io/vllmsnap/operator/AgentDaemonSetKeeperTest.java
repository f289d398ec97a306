package io.vllmsnap.operator;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.ConfigMapBuilder;
import io.fabric8.kubernetes.api.model.EnvVarBuilder;
import io.fabric8.kubernetes.api.model.Event;
import io.fabric8.kubernetes.api.model.apps.DaemonSet;
import io.fabric8.kubernetes.api.model.apps.DaemonSetBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import io.vllmsnap.operator.AgentDaemonSetKeeper.State;
import io.vllmsnap.operator.AgentDaemonSetSettings.ManagedBy;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The agent DaemonSet kept from the chart's ConfigMap, on the Fabric8 mock server (no Quarkus needed). */
@EnableKubernetesMockClient(crud = true)
class AgentDaemonSetKeeperTest {
    static final String NS = "vllmsnap";
    static final String NAME = "vllmsnap-agent";
    static final String CONFIGMAP = "vllmsnap-agent-daemonset";

    KubernetesClient client;

    /** A DaemonSet as the chart's _agent-daemonset.tpl renders it (shortened). */
    static final String DESIRED = """
            apiVersion: apps/v1
            kind: DaemonSet
            metadata:
              name: vllmsnap-agent
              namespace: vllmsnap
              labels:
                app.kubernetes.io/component: agent
            spec:
              selector:
                matchLabels:
                  app.kubernetes.io/component: agent
              template:
                metadata:
                  labels:
                    app.kubernetes.io/component: agent
                spec:
                  hostPID: true
                  nodeSelector:
                    nvidia.com/gpu.present: "true"
                  containers:
                    - name: agent
                      image: vllmsnap-agent:0.1.0
                      env:
                        - name: VLLMSNAP_MAX_JOBS
                          value: "2"
                      securityContext:
                        privileged: true
            """;

    AgentDaemonSetKeeper keeper(ManagedBy managedBy) {
        return new AgentDaemonSetKeeper(client, new EventRecorder(client), managedBy, NS, NAME, CONFIGMAP);
    }

    ConfigMap configMap(String yaml) {
        var builder = new ConfigMapBuilder().withNewMetadata().withName(CONFIGMAP).withNamespace(NS).endMetadata();
        if (yaml != null) {
            builder.addToData(AgentDaemonSetKeeper.DESIRED_KEY, yaml);
        }
        return client.configMaps().inNamespace(NS).resource(builder.build()).createOr(c -> c.update());
    }

    DaemonSet live() {
        return client.apps().daemonSets().inNamespace(NS).withName(NAME).get();
    }

    List<Event> events() {
        return client.v1().events().inNamespace(NS).list().getItems();
    }

    @Test
    void createsTheDaemonSetFromTheConfigMapOwnedByItAndThenLeavesItAlone() {
        ConfigMap cm = configMap(DESIRED);
        var keeper = keeper(ManagedBy.OPERATOR);

        assertThat(keeper.keep().state()).isEqualTo(State.CREATED);
        DaemonSet ds = live();
        var container = ds.getSpec().getTemplate().getSpec().getContainers().getFirst();
        assertThat(container.getImage()).isEqualTo("vllmsnap-agent:0.1.0");
        assertThat(container.getSecurityContext().getPrivileged()).isTrue();
        assertThat(ds.getSpec().getTemplate().getSpec().getHostPID()).isTrue();
        assertThat(ds.getMetadata().getAnnotations()).containsKey(AgentDaemonSetKeeper.HASH_ANNOTATION);
        assertThat(ds.getMetadata().getOwnerReferences()).singleElement()
                .satisfies(o -> assertThat(o.getUid()).isEqualTo(cm.getMetadata().getUid()));
        assertThat(events()).anySatisfy(e -> assertThat(e.getReason()).isEqualTo("AgentDaemonSetCreated"));

        String version = live().getMetadata().getResourceVersion();
        assertThat(keeper.keep().state()).isEqualTo(State.IN_SYNC);
        // a fresh operator (restart) compares field by field and finds nothing to write either
        assertThat(keeper(ManagedBy.OPERATOR).keep().state()).isEqualTo(State.IN_SYNC);
        assertThat(live().getMetadata().getResourceVersion()).isEqualTo(version);
    }

    @Test
    void serverFilledFieldsAreNoDriftButAHandEditIsPutBack() {
        configMap(DESIRED);
        keeper(ManagedBy.OPERATOR).keep();
        // what the API server and the DaemonSet controller add: defaults and status
        DaemonSet defaulted = new DaemonSetBuilder(live()).editSpec().withRevisionHistoryLimit(10)
                .editTemplate().editSpec().withRestartPolicy("Always").withDnsPolicy("ClusterFirst").endSpec().endTemplate()
                .endSpec().build();
        client.apps().daemonSets().inNamespace(NS).resource(defaulted).update();
        assertThat(keeper(ManagedBy.OPERATOR).keep().state()).isEqualTo(State.IN_SYNC);

        // someone edits the agent by hand: other image, privileged off, an extra variable
        client.apps().daemonSets().inNamespace(NS).withName(NAME).edit(ds -> new DaemonSetBuilder(ds).editSpec().editTemplate()
                .editSpec().editFirstContainer().withImage("someone/else:latest").editSecurityContext().withPrivileged(false)
                .endSecurityContext().addToEnv(new EnvVarBuilder().withName("EXTRA").withValue("1").build())
                .endContainer().endSpec().endTemplate().endSpec().build());
        var keeper = keeper(ManagedBy.OPERATOR);
        var outcome = keeper.keep();

        assertThat(outcome.state()).isEqualTo(State.RESTORED);
        assertThat(outcome.message()).contains("spec.template.spec.containers[0]");
        var container = live().getSpec().getTemplate().getSpec().getContainers().getFirst();
        assertThat(container.getImage()).isEqualTo("vllmsnap-agent:0.1.0");
        assertThat(container.getSecurityContext().getPrivileged()).isTrue();
        assertThat(container.getEnv()).extracting("name").containsExactly("VLLMSNAP_MAX_JOBS");
        assertThat(events()).anySatisfy(e -> assertThat(e.getReason()).isEqualTo("AgentDaemonSetRestored"));
        assertThat(keeper.keep().state()).isEqualTo(State.IN_SYNC);
    }

    @Test
    void aChangedConfigMapIsAppliedAndADeletedDaemonSetComesBack() {
        configMap(DESIRED);
        var keeper = keeper(ManagedBy.OPERATOR);
        keeper.keep();

        configMap(DESIRED.replace("vllmsnap-agent:0.1.0", "vllmsnap-agent:0.2.0"));
        assertThat(keeper.keep().state()).isEqualTo(State.RESTORED);
        assertThat(live().getSpec().getTemplate().getSpec().getContainers().getFirst().getImage()).isEqualTo("vllmsnap-agent:0.2.0");

        client.apps().daemonSets().inNamespace(NS).withName(NAME).delete();
        assertThat(keeper.keep().state()).isEqualTo(State.CREATED);
        assertThat(live()).isNotNull();
    }

    @Test
    void managedByChartOnlyReads() {
        configMap(DESIRED);
        var keeper = keeper(ManagedBy.CHART);

        assertThat(keeper.keep().state()).isEqualTo(State.ABSENT);
        assertThat(live()).as("the chart creates it, not the operator").isNull();
        assertThat(events()).anySatisfy(e -> assertThat(e.getReason()).isEqualTo("AgentDaemonSetAbsent"));

        DaemonSet byChart = client.getKubernetesSerialization().unmarshal(DESIRED.replace("0.1.0", "chart"), DaemonSet.class);
        client.apps().daemonSets().inNamespace(NS).resource(byChart).create();
        var outcome = keeper.keep();
        assertThat(outcome.state()).isEqualTo(State.OBSERVED);
        assertThat(live().getSpec().getTemplate().getSpec().getContainers().getFirst().getImage())
                .as("not replaced by the ConfigMap's state").isEqualTo("vllmsnap-agent:chart");
        assertThat(live().getMetadata().getAnnotations()).doesNotContainKey(AgentDaemonSetKeeper.HASH_ANNOTATION);
    }

    @Test
    void aMissingOrBadConfigMapIsReportedOnceAndNothingIsWritten() {
        var keeper = keeper(ManagedBy.OPERATOR);

        var missing = keeper.keep();
        assertThat(missing.state()).isEqualTo(State.DESIRED_STATE_MISSING);
        assertThat(missing.message()).contains("ConfigMap vllmsnap/vllmsnap-agent-daemonset", "not found");
        keeper.keep();
        assertThat(events()).filteredOn(e -> e.getReason().equals("AgentDaemonSetDesiredStateMissing")).hasSize(1)
                .allSatisfy(e -> {
                    assertThat(e.getType()).isEqualTo("Warning");
                    assertThat(e.getInvolvedObject().getKind()).isEqualTo("ConfigMap");
                    assertThat(e.getInvolvedObject().getName()).isEqualTo(CONFIGMAP);
                });

        configMap(null);
        assertThat(keeper.keep().message()).contains("has no key daemonset.yaml");

        configMap("apiVersion: v1\nkind: Service\nmetadata:\n  name: x\n");
        var wrongKind = keeper.keep();
        assertThat(wrongKind.state()).isEqualTo(State.DESIRED_STATE_INVALID);
        assertThat(wrongKind.message()).contains("expected kind DaemonSet", "Service");

        configMap("spec: [unclosed");
        assertThat(keeper.keep().state()).isEqualTo(State.DESIRED_STATE_INVALID);
        assertThat(events()).anySatisfy(e -> assertThat(e.getReason()).isEqualTo("AgentDaemonSetDesiredStateInvalid"));
        assertThat(live()).isNull();

        configMap(DESIRED);
        assertThat(keeper.keep().state()).isEqualTo(State.CREATED);
    }
}
