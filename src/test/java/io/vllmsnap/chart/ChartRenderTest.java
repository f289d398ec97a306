package io.vllmsnap.chart;

import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.Namespaced;
import io.fabric8.kubernetes.api.model.PodSpec;
import io.fabric8.kubernetes.api.model.Secret;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.ServiceAccount;
import io.fabric8.kubernetes.api.model.Volume;
import io.fabric8.kubernetes.api.model.apps.DaemonSet;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.rbac.ClusterRole;
import io.fabric8.kubernetes.api.model.rbac.ClusterRoleBinding;
import io.fabric8.kubernetes.api.model.rbac.PolicyRule;
import io.fabric8.kubernetes.api.model.rbac.Role;
import io.fabric8.kubernetes.api.model.rbac.RoleBinding;
import io.fabric8.kubernetes.api.model.rbac.RoleRef;
import io.fabric8.kubernetes.api.model.rbac.Subject;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/** Properties every rendering of the chart must have, whatever the values. */
class ChartRenderTest {

    /** Custom resources of other projects the chart may render; Fabric8 has no typed class for them here. */
    static final Set<String> KNOWN_CUSTOM_KINDS = Set.of(
            "monitoring.coreos.com/v1/ServiceMonitor",
            "monitoring.coreos.com/v1/PodMonitor",
            "monitoring.coreos.com/v1/PrometheusRule",
            "cert-manager.io/v1/Certificate",
            "cert-manager.io/v1/Issuer");

    static Stream<RenderedChart> scenarios() {
        return Scenarios.all();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("scenarios")
    void everyObjectParsesAsItsKindWithoutUnknownFields(RenderedChart chart) {
        assertThat(chart.objects()).isNotEmpty();
        for (HasMetadata object : chart.objects()) {
            String id = chart.scenario() + ": " + object.getKind() + "/" + object.getMetadata().getName();
            if (object instanceof GenericKubernetesResource generic) {
                assertThat(KNOWN_CUSTOM_KINDS).as(id + " has no typed class and is not a known custom kind")
                        .contains(generic.getApiVersion() + "/" + generic.getKind());
                assertThat(generic.getAdditionalProperties()).as(id).containsKey("spec");
            } else {
                assertThat(UnknownFields.in(object)).as(id + " has fields its kind does not know").isEmpty();
            }
            assertThat(object.getMetadata().getName()).as(id).matches("[a-z0-9]([-a-z0-9.]*[a-z0-9])?");
            assertThat(object.getMetadata().getLabels()).as(id).containsEntry("app.kubernetes.io/part-of", "vllmsnap");
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("scenarios")
    void namesAreUniquePerKindAndNamespace(RenderedChart chart) {
        Set<String> seen = new HashSet<>();
        for (HasMetadata o : chart.objects()) {
            String key = o.getApiVersion() + "/" + o.getKind() + "/" + o.getMetadata().getNamespace() + "/"
                    + o.getMetadata().getName();
            assertThat(seen.add(key)).as(chart.scenario() + ": duplicate " + key).isTrue();
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("scenarios")
    void namespacedObjectsCarryANamespaceAndClusterObjectsNone(RenderedChart chart) {
        for (HasMetadata o : chart.objects()) {
            boolean namespaced = o instanceof Namespaced || o instanceof GenericKubernetesResource;
            if (namespaced) {
                assertThat(o.getMetadata().getNamespace()).as(chart.scenario() + ": " + o.getKind()).isNotBlank();
            } else {
                assertThat(o.getMetadata().getNamespace()).as(chart.scenario() + ": " + o.getKind()).isNull();
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("scenarios")
    void rbacHasNoWildcard(RenderedChart chart) {
        List<PolicyRule> rules = new ArrayList<>();
        chart.all(Role.class).forEach(r -> rules.addAll(r.getRules()));
        chart.all(ClusterRole.class).forEach(r -> rules.addAll(r.getRules()));
        assertThat(rules).isNotEmpty();
        for (PolicyRule rule : rules) {
            List<String> every = new ArrayList<>();
            every.addAll(rule.getApiGroups());
            every.addAll(rule.getResources());
            every.addAll(rule.getVerbs());
            every.addAll(rule.getResourceNames());
            every.addAll(rule.getNonResourceURLs());
            assertThat(every).as(chart.scenario() + ": " + rule).noneMatch(s -> s.contains("*"));
            assertThat(rule.getVerbs()).as(chart.scenario() + ": escalation verbs in " + rule)
                    .doesNotContain("escalate", "bind", "impersonate");
            assertThat(rule.getResources()).as(chart.scenario() + ": " + rule)
                    .doesNotContain("secrets", "roles", "clusterroles", "rolebindings", "clusterrolebindings");
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("scenarios")
    void bindingsTieRenderedRolesToRenderedServiceAccounts(RenderedChart chart) {
        Set<String> accounts = new HashSet<>();
        chart.all(ServiceAccount.class).forEach(sa -> accounts.add(sa.getMetadata().getNamespace() + "/" + sa.getMetadata().getName()));
        List<Map.Entry<RoleRef, List<Subject>>> bindings = new ArrayList<>();
        chart.all(RoleBinding.class).forEach(b -> {
            bindings.add(Map.entry(b.getRoleRef(), b.getSubjects()));
            if (b.getRoleRef().getKind().equals("Role")) {
                assertThat(chart.all(Role.class)).as(chart.scenario() + ": role of " + b.getMetadata().getName())
                        .anyMatch(r -> r.getMetadata().getName().equals(b.getRoleRef().getName())
                                && r.getMetadata().getNamespace().equals(b.getMetadata().getNamespace()));
            }
        });
        chart.all(ClusterRoleBinding.class).forEach(b -> {
            bindings.add(Map.entry(b.getRoleRef(), b.getSubjects()));
            assertThat(chart.find(ClusterRole.class, b.getRoleRef().getName())).as(chart.scenario()).isPresent();
        });
        assertThat(bindings).isNotEmpty();
        for (var binding : bindings) {
            assertThat(binding.getValue()).isNotEmpty().allSatisfy(subject -> {
                assertThat(subject.getKind()).isEqualTo("ServiceAccount");
                assertThat(accounts).contains(subject.getNamespace() + "/" + subject.getName());
            });
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("scenarios")
    void agentIsPrivilegedWithHostPidAndOperatorIsRestricted(RenderedChart chart) {
        DaemonSet agent = chart.agentDaemonSet();
        PodSpec agentPod = agent.getSpec().getTemplate().getSpec();
        assertThat(agentPod.getHostPID()).isTrue();
        Container agentContainer = agentPod.getContainers().getFirst();
        assertThat(agentContainer.getSecurityContext().getPrivileged()).isTrue();
        assertThat(agentContainer.getCommand()).contains("-Dquarkus.profile=agent");

        PodSpec operatorPod = chart.operator().getSpec().getTemplate().getSpec();
        assertThat(operatorPod.getHostPID()).isNotEqualTo(Boolean.TRUE);
        assertThat(operatorPod.getHostNetwork()).isNotEqualTo(Boolean.TRUE);
        assertThat(operatorPod.getSecurityContext().getRunAsNonRoot()).isTrue();
        assertThat(operatorPod.getSecurityContext().getRunAsUser()).isPositive();
        assertThat(operatorPod.getSecurityContext().getSeccompProfile().getType()).isEqualTo("RuntimeDefault");
        assertThat(operatorPod.getVolumes()).noneMatch(v -> v.getHostPath() != null);
        for (Container c : operatorPod.getContainers()) {
            var sc = c.getSecurityContext();
            assertThat(sc.getPrivileged()).isNotEqualTo(Boolean.TRUE);
            assertThat(sc.getAllowPrivilegeEscalation()).isFalse();
            assertThat(sc.getReadOnlyRootFilesystem()).isTrue();
            assertThat(sc.getCapabilities().getDrop()).containsExactly("ALL");
            assertThat(sc.getCapabilities().getAdd()).isNullOrEmpty();
            assertThat(c.getCommand()).contains("-Dquarkus.profile=operator");
            assertThat(c.getLivenessProbe().getHttpGet().getPath()).isEqualTo("/q/health/live");
            assertThat(c.getReadinessProbe().getHttpGet().getPath()).isEqualTo("/q/health/ready");
            assertThat(c.getResources().getRequests()).containsKeys("cpu", "memory");
        }
        assertThat(agentContainer.getLivenessProbe().getHttpGet().getPath()).isEqualTo("/q/health/live");
        assertThat(agentContainer.getReadinessProbe().getHttpGet().getPath()).isEqualTo("/q/health/ready");
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("scenarios")
    void everyMountedSecretIsRenderedOrNamedByValuesOrMadeByCertManager(RenderedChart chart) {
        Set<String> available = new HashSet<>();
        chart.all(Secret.class).forEach(s -> available.add(s.getMetadata().getName()));
        chart.generic("cert-manager.io/v1", "Certificate")
                .forEach(c -> available.add((String) ((Map<?, ?>) c.getAdditionalProperties().get("spec")).get("secretName")));
        if ("existingSecret".equals(chart.values("tls", "mode"))) {
            available.add((String) chart.values("tls", "existingSecret"));
        }
        if ("certManagerCsi".equals(chart.values("tls", "mode"))) {
            available.add((String) chart.values("tls", "certManagerCsi", "caSecret")); // the CA of the user's own issuer
        }
        List<Volume> volumes = new ArrayList<>(chart.operator().getSpec().getTemplate().getSpec().getVolumes());
        volumes.addAll(chart.agentDaemonSet().getSpec().getTemplate().getSpec().getVolumes());
        List<String> mounted = volumes.stream().filter(v -> v.getSecret() != null).map(v -> v.getSecret().getSecretName()).toList();
        assertThat(mounted).as(chart.scenario()).isNotEmpty();
        assertThat(available).as(chart.scenario()).containsAll(mounted);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("scenarios")
    void servicesSelectTheComponentPods(RenderedChart chart) {
        Map<String, String> operatorLabels = chart.operator().getSpec().getTemplate().getMetadata().getLabels();
        Map<String, String> agentLabels = chart.agentDaemonSet().getSpec().getTemplate().getMetadata().getLabels();
        List<Service> services = chart.all(Service.class);
        assertThat(services).hasSize(2);
        assertThat(services).anySatisfy(s -> assertThat(operatorLabels).containsAllEntriesOf(s.getSpec().getSelector()));
        assertThat(services).anySatisfy(s -> assertThat(agentLabels).containsAllEntriesOf(s.getSpec().getSelector()));
        for (Service s : services) {
            // The port the monitors scrape: the management port of each (plain HTTP on the operator, HTTPS on the agent).
            assertThat(s.getSpec().getPorts()).anySatisfy(p -> assertThat(p.getName()).isEqualTo("metrics"));
        }
        assertThat(chart.operator().getSpec().getSelector().getMatchLabels())
                .isNotEqualTo(chart.agentDaemonSet().getSpec().getSelector().getMatchLabels());
    }
}
