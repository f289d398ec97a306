package io.vllmsnap.operator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.fabric8.kubernetes.api.model.ConfigMapBuilder;
import io.fabric8.kubernetes.api.model.apps.DaemonSetBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import io.vllmsnap.agent.client.AgentClientConfig;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/** The loops around the keeper: only the leader writes, watches bring drift back at once, stopping deletes nothing. */
@EnableKubernetesMockClient(crud = true)
class AgentSupervisorTest {
    static final String NS = AgentDaemonSetKeeperTest.NS;

    KubernetesClient client;

    static AgentDaemonSetSettings settings() {
        return new AgentDaemonSetSettings() {
            public ManagedBy managedBy() {
                return ManagedBy.OPERATOR;
            }

            public String name() {
                return AgentDaemonSetKeeperTest.NAME;
            }

            public String configmap() {
                return AgentDaemonSetKeeperTest.CONFIGMAP;
            }

            public String namespace() {
                return NS;
            }

            public Duration resyncInterval() {
                return Duration.ofMinutes(10); // so that only the watches can explain a quick repair
            }

            public Duration reportInterval() {
                return Duration.ofMinutes(10);
            }
        };
    }

    static AgentClientConfig agentClient() {
        return new AgentClientConfig() {
            public Path caFile() {
                return Path.of("ca.crt");
            }

            public Path tokenFile() {
                return Path.of("token");
            }

            public String serverName() {
                return "vllmsnap-agent";
            }

            public String namespace() {
                return NS;
            }

            public String podSelector() {
                return "app.kubernetes.io/component=agent";
            }

            public int port() {
                return 8443;
            }

            public Duration connectTimeout() {
                return Duration.ofSeconds(1);
            }

            public Duration requestTimeout() {
                return Duration.ofSeconds(1);
            }
        };
    }

    @Test
    void onlyTheLeaderWritesDriftIsRepairedOnItsWatchEventAndStoppingLeavesTheAgentsRunning() throws Exception {
        client.configMaps().inNamespace(NS).resource(new ConfigMapBuilder().withNewMetadata()
                .withName(AgentDaemonSetKeeperTest.CONFIGMAP).withNamespace(NS).endMetadata()
                .addToData(AgentDaemonSetKeeper.DESIRED_KEY, AgentDaemonSetKeeperTest.DESIRED).build()).create();
        Leadership leadership = new Leadership(true);
        var supervisor = new AgentSupervisor(client, settings(), agentClient(), new FakeNodeAgents(), new EventRecorder(client),
                leadership, new ObjectMapper());
        var daemonSet = client.apps().daemonSets().inNamespace(NS).withName(AgentDaemonSetKeeperTest.NAME);
        supervisor.start();
        try {
            Thread.sleep(1500); // passes ran (at start) and must not have written: another replica leads
            assertThat(daemonSet.get()).isNull();

            leadership.started();
            await().atMost(Duration.ofSeconds(10)).until(() -> daemonSet.get() != null);

            daemonSet.edit(ds -> new DaemonSetBuilder(ds).editSpec().editTemplate().editSpec().editFirstContainer()
                    .withImage("someone/else").endContainer().endSpec().endTemplate().endSpec().build());
            await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> assertThat(
                    daemonSet.get().getSpec().getTemplate().getSpec().getContainers().getFirst().getImage())
                    .isEqualTo("vllmsnap-agent:0.1.0"));
        } finally {
            supervisor.stop();
        }
        assertThat(daemonSet.get()).as("agents outlive the operator").isNotNull();
    }
}
