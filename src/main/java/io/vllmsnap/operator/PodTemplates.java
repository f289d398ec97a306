package io.vllmsnap.operator;

import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.ConfigMapBuilder;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.OwnerReference;
import io.fabric8.kubernetes.api.model.OwnerReferenceBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodSpec;
import io.fabric8.kubernetes.api.model.PodSpecBuilder;
import io.fabric8.kubernetes.api.model.PodTemplateSpec;
import io.fabric8.kubernetes.api.model.PodTemplateSpecBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import jakarta.enterprise.context.ApplicationScoped;
import java.util.Map;
import java.util.Optional;

/**
 * The source pod's template, recorded at snapshot time in a ConfigMap owned by the VllmSnapshot.
 *
 * <p>Why a ConfigMap and not the snapshot's status: status should hold what can be observed again, and a pod template
 * cannot be once the source pod is gone; a full PodSpec would also bloat the CRD schema and every status patch.
 * The ConfigMap is immutable, owned by the snapshot (garbage-collected with it) and read by every restore.
 */
@ApplicationScoped
public class PodTemplates {
    static final String KEY = "pod-template.json";
    /** Volumes the API server injects on its own (service account token); a copy would clash with the injected one. */
    private static final String INJECTED_VOLUME_PREFIX = "kube-api-access-";

    private final KubernetesClient client;

    public PodTemplates(KubernetesClient client) {
        this.client = client;
    }

    public static String configMapName(String snapshotName) {
        return snapshotName + "-pod-template";
    }

    /** Records the template of {@code pod} unless it is already recorded (repeated calls are harmless). */
    public String record(HasMetadata snapshot, Pod pod) {
        String name = configMapName(snapshot.getMetadata().getName());
        String namespace = snapshot.getMetadata().getNamespace();
        if (client.configMaps().inNamespace(namespace).withName(name).get() != null) {
            return name;
        }
        ConfigMap configMap = new ConfigMapBuilder()
                .withNewMetadata().withName(name).withNamespace(namespace)
                .withOwnerReferences(ownerReference(snapshot))
                .addToLabels("app.kubernetes.io/managed-by", "vllmsnap")
                .endMetadata()
                .withImmutable(true)
                .withData(Map.of(KEY, client.getKubernetesSerialization().asJson(templateOf(pod))))
                .build();
        try {
            client.configMaps().inNamespace(namespace).resource(configMap).create();
        } catch (KubernetesClientException e) {
            if (e.getCode() != 409) { // 409: recorded by an earlier attempt; the template of one pod UID never changes
                throw e;
            }
        }
        return name;
    }

    public Optional<PodTemplateSpec> load(String namespace, String configMapName) {
        ConfigMap configMap = configMapName == null ? null
                : client.configMaps().inNamespace(namespace).withName(configMapName).get();
        if (configMap == null || configMap.getData() == null || !configMap.getData().containsKey(KEY)) {
            return Optional.empty();
        }
        return Optional.of(client.getKubernetesSerialization().unmarshal(configMap.getData().get(KEY), PodTemplateSpec.class));
    }

    /** What a new pod needs of the source: its spec without what binds it to one node or one instance. */
    static PodTemplateSpec templateOf(Pod pod) {
        PodSpec copy = new PodSpecBuilder(pod.getSpec())
                .withNodeName(null)
                .withEphemeralContainers()
                .build();
        copy.getVolumes().removeIf(v -> v.getName() != null && v.getName().startsWith(INJECTED_VOLUME_PREFIX));
        for (Container c : copy.getContainers()) {
            c.getVolumeMounts().removeIf(m -> m.getName() != null && m.getName().startsWith(INJECTED_VOLUME_PREFIX));
        }
        return new PodTemplateSpecBuilder()
                .withNewMetadata().withLabels(pod.getMetadata().getLabels()).endMetadata()
                .withSpec(copy)
                .build();
    }

    public static OwnerReference ownerReference(HasMetadata owner) {
        return new OwnerReferenceBuilder()
                .withApiVersion(owner.getApiVersion()).withKind(owner.getKind())
                .withName(owner.getMetadata().getName()).withUid(owner.getMetadata().getUid())
                .withController(true).withBlockOwnerDeletion(true)
                .build();
    }
}
