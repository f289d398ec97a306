package io.vllmsnap.chart;

import com.fasterxml.jackson.databind.JsonNode;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.EnvVar;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.PodSpec;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.apiextensions.v1.CustomResourceDefinition;
import io.fabric8.kubernetes.api.model.apiextensions.v1.JSONSchemaProps;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.autoscaling.v2.HorizontalPodAutoscaler;
import io.fabric8.kubernetes.client.utils.Serialization;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.assertj.core.api.Assertions.assertThat;

/** deploy/examples: valid objects that fit together and carry what a snapshot-friendly vLLM server needs. */
class ExamplesTest {

    static final Set<String> KNOWN_CUSTOM_KINDS = Set.of("vllmsnap.io/v1alpha1/VllmSnapshot",
            "vllmsnap.io/v1alpha1/VllmRestore", "keda.sh/v1alpha1/ScaledObject");

    static HasMetadata load(String file) throws IOException {
        HasMetadata object = Serialization.unmarshal(Files.readString(ChartFiles.DEPLOY_EXAMPLES.resolve(file)));
        if (object instanceof GenericKubernetesResource g) {
            assertThat(KNOWN_CUSTOM_KINDS).as(file).contains(g.getApiVersion() + "/" + g.getKind());
        } else {
            assertThat(UnknownFields.in(object)).as(file + " has fields its kind does not know").isEmpty();
        }
        return object;
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> spec(HasMetadata o) {
        return (Map<String, Object>) ((GenericKubernetesResource) o).getAdditionalProperties().get("spec");
    }

    @Test
    void vllmDeploymentIsPreparedForSnapshots() throws IOException {
        Deployment deployment = (Deployment) load("vllm-deployment.yaml");
        PodSpec pod = deployment.getSpec().getTemplate().getSpec();
        Container vllm = pod.getContainers().getFirst();
        assertThat(vllm.getArgs()).contains("--enable-sleep-mode");
        Map<String, String> env = new java.util.HashMap<>();
        for (EnvVar e : vllm.getEnv()) {
            env.put(e.getName(), e.getValue());
        }
        assertThat(env).containsEntry("VLLM_SERVER_DEV_MODE", "1").containsEntry("VLLM_WORKER_MULTIPROC_METHOD", "spawn")
                .containsEntry("HF_HUB_OFFLINE", "1");
        String shmVolume = vllm.getVolumeMounts().stream().filter(m -> m.getMountPath().equals("/dev/shm")).findFirst()
                .orElseThrow(() -> new AssertionError("no /dev/shm mount")).getName();
        assertThat(pod.getVolumes()).anySatisfy(v -> {
            assertThat(v.getName()).isEqualTo(shmVolume);
            assertThat(v.getEmptyDir()).isNotNull();
        });
        var seccomp = pod.getSecurityContext().getSeccompProfile();
        assertThat(seccomp.getType()).isEqualTo("Localhost");
        String profileFile = seccomp.getLocalhostProfile().substring(seccomp.getLocalhostProfile().lastIndexOf('/') + 1);
        JsonNode profile = RenderedChart.YAML.readTree(Files.readString(ChartFiles.DEPLOY_EXAMPLES.resolve("seccomp/" + profileFile)));
        List<String> refused = new ArrayList<>();
        profile.path("syscalls").forEach(rule -> {
            if (rule.path("action").asText().equals("SCMP_ACT_ERRNO")) {
                rule.path("names").forEach(n -> refused.add(n.asText()));
            }
        });
        assertThat(refused).contains("io_uring_setup", "io_uring_enter", "io_uring_register");
        assertThat(vllm.getResources().getLimits()).containsKey("nvidia.com/gpu");
    }

    @Test
    void snapshotRestoreServiceAndAutoscalersReferToEachOther() throws IOException {
        Deployment deployment = (Deployment) load("vllm-deployment.yaml");
        HasMetadata snapshot = load("vllmsnapshot.yaml");
        HasMetadata restore = load("vllmrestore.yaml");
        Service service = (Service) load("service.yaml");
        HorizontalPodAutoscaler hpa = (HorizontalPodAutoscaler) load("hpa.yaml");
        HasMetadata keda = load("keda-scaledobject.yaml");
        String namespace = deployment.getMetadata().getNamespace();
        for (HasMetadata o : List.of(snapshot, restore, service, hpa, keda)) {
            assertThat(o.getMetadata().getNamespace()).as(o.getKind()).isEqualTo(namespace);
        }
        @SuppressWarnings("unchecked")
        Map<String, Object> source = (Map<String, Object>) spec(snapshot).get("source");
        assertThat(source.get("container")).isEqualTo(deployment.getSpec().getTemplate().getSpec().getContainers().getFirst().getName());
        assertThat(spec(restore).get("snapshotName")).isEqualTo(snapshot.getMetadata().getName());
        @SuppressWarnings("unchecked")
        Map<String, String> restoredLabels = (Map<String, String>) spec(restore).get("labels");
        assertThat(restoredLabels).containsAllEntriesOf(service.getSpec().getSelector());
        // Traffic must not also reach the source pod through this Service.
        assertThat(deployment.getSpec().getTemplate().getMetadata().getLabels().entrySet())
                .doesNotContainAnyElementsOf(service.getSpec().getSelector().entrySet());
        assertThat(hpa.getSpec().getScaleTargetRef().getKind()).isEqualTo("VllmRestore");
        assertThat(hpa.getSpec().getScaleTargetRef().getApiVersion()).isEqualTo(restore.getApiVersion());
        assertThat(hpa.getSpec().getScaleTargetRef().getName()).isEqualTo(restore.getMetadata().getName());
        assertThat(spec(keda).get("scaleTargetRef")).isEqualTo(Map.of("apiVersion", restore.getApiVersion(),
                "kind", "VllmRestore", "name", restore.getMetadata().getName()));
    }

    /** Once the CRDs are in the chart, every field the example custom resources set must exist in their schema. */
    @Test
    void exampleCustomResourcesUseOnlyFieldsTheCrdsDefine() throws IOException {
        for (String file : CrdSyncTest.manifests(ChartFiles.CHART_CRDS).values()) {
            CustomResourceDefinition crd = Serialization.unmarshal(file, CustomResourceDefinition.class);
            String kind = crd.getSpec().getNames().getKind();
            String example = switch (kind) {
                case "VllmSnapshot" -> "vllmsnapshot.yaml";
                case "VllmRestore" -> "vllmrestore.yaml";
                default -> null;
            };
            if (example == null) {
                continue;
            }
            HasMetadata cr = load(example);
            JSONSchemaProps schema = crd.getSpec().getVersions().stream()
                    .filter(v -> cr.getApiVersion().endsWith("/" + v.getName())).findFirst()
                    .orElseThrow(() -> new AssertionError(example + ": CRD serves no version " + cr.getApiVersion()))
                    .getSchema().getOpenAPIV3Schema().getProperties().get("spec");
            assertFieldsDefined(example + ": spec", spec(cr), schema);
        }
    }

    @SuppressWarnings("unchecked")
    private static void assertFieldsDefined(String path, Object value, JSONSchemaProps schema) {
        if (!(value instanceof Map<?, ?> map) || schema.getProperties() == null || schema.getProperties().isEmpty()) {
            return; // leaf, or a free-form map (labels, nodeSelector)
        }
        for (Map.Entry<String, Object> e : ((Map<String, Object>) map).entrySet()) {
            assertThat(schema.getProperties()).as(path + " has no field " + e.getKey()).containsKey(e.getKey());
            assertFieldsDefined(path + "." + e.getKey(), e.getValue(), schema.getProperties().get(e.getKey()));
        }
    }
}
