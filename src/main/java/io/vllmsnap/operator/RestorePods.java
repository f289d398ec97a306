package io.vllmsnap.operator;

import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.ContainerStatus;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.PodSpec;
import io.fabric8.kubernetes.api.model.PodTemplateSpec;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.vllmsnap.api.ApiConstants;
import io.vllmsnap.api.RestorePath;
import io.vllmsnap.api.VllmRestore;
import io.vllmsnap.api.VllmSnapshot;
import jakarta.enterprise.context.ApplicationScoped;
import java.security.SecureRandom;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/** Creates and inspects the pods of a VllmRestore. */
@ApplicationScoped
public class RestorePods {
    /** Longest VllmRestore name whose pod names ({@code <name>-xxxxx}) are still DNS labels. */
    public static final int MAX_RESTORE_NAME = 57;
    private static final String SUFFIX_CHARS = "bcdfghjklmnpqrstvwxz2456789";
    private static final SecureRandom RANDOM = new SecureRandom();

    private final KubernetesClient client;
    private final OperatorSettings settings;

    public RestorePods(KubernetesClient client, OperatorSettings settings) {
        this.client = client;
        this.settings = settings;
    }

    public static String selector(VllmRestore restore) {
        return ApiConstants.RESTORE_LABEL + "=" + restore.getMetadata().getName();
    }

    public List<Pod> list(VllmRestore restore) {
        return client.pods().inNamespace(restore.getMetadata().getNamespace())
                .withLabel(ApiConstants.RESTORE_LABEL, restore.getMetadata().getName())
                .list().getItems().stream()
                .filter(p -> p.getMetadata().getDeletionTimestamp() == null)
                .toList();
    }

    /**
     * Creates a pod from the snapshot's recorded template. A {@link RestorePath#Restore} pod is a placeholder: its vLLM
     * container only sleeps until the agent restores the process tree into it, it has no liveness or startup probe
     * (they would kill it before the restore) and it is never restarted in place (an empty placeholder is useless; a
     * failed pod is replaced). A {@link RestorePath#ColdStart} pod runs the original command.
     */
    public Pod create(VllmRestore restore, VllmSnapshot snapshot, PodTemplateSpec template, RestorePath path) {
        // A deep copy: the template is shared by every pod created in this reconciliation.
        PodSpec spec = client.getKubernetesSerialization().clone(template.getSpec());
        Map<String, String> nodeSelector = new LinkedHashMap<>();
        if (spec.getNodeSelector() != null) {
            nodeSelector.putAll(spec.getNodeSelector());
        }
        if (restore.getSpec().nodeSelector != null) {
            nodeSelector.putAll(restore.getSpec().nodeSelector);
        }
        spec.setNodeSelector(nodeSelector.isEmpty() ? null : nodeSelector);
        if (path == RestorePath.Restore) {
            Container container = container(spec, snapshot.getSpec().source.container).orElseThrow();
            container.setCommand(settings.placeholderCommand());
            container.setArgs(List.of());
            container.setLivenessProbe(null);
            container.setStartupProbe(null);
            spec.setRestartPolicy("Never");
        }
        Map<String, String> labels = new LinkedHashMap<>();
        if (restore.getSpec().labels != null) {
            labels.putAll(restore.getSpec().labels);
        }
        labels.put(ApiConstants.RESTORE_LABEL, restore.getMetadata().getName());
        labels.put(ApiConstants.SNAPSHOT_LABEL, snapshot.getMetadata().getName());
        labels.put(ApiConstants.PATH_LABEL, path.name());
        Pod pod = new PodBuilder()
                .withNewMetadata()
                .withName(restore.getMetadata().getName() + "-" + suffix())
                .withNamespace(restore.getMetadata().getNamespace())
                .withLabels(labels)
                .withOwnerReferences(PodTemplates.ownerReference(restore))
                .endMetadata()
                .withSpec(spec)
                .build();
        return client.pods().inNamespace(restore.getMetadata().getNamespace()).resource(pod).create();
    }

    public void delete(VllmRestore restore, String podName) {
        client.pods().inNamespace(restore.getMetadata().getNamespace()).withName(podName).delete();
    }

    static Optional<Container> container(PodSpec spec, String name) {
        return spec.getContainers().stream().filter(c -> name.equals(c.getName())).findFirst();
    }

    static Optional<ContainerStatus> containerStatus(Pod pod, String name) {
        if (pod.getStatus() == null) {
            return Optional.empty();
        }
        return pod.getStatus().getContainerStatuses().stream().filter(c -> name.equals(c.getName())).findFirst();
    }

    static boolean isRunning(Pod pod, String container) {
        return pod.getStatus() != null && "Running".equals(pod.getStatus().getPhase())
                && containerStatus(pod, container)
                        .filter(cs -> cs.getContainerID() != null && cs.getState() != null && cs.getState().getRunning() != null)
                        .isPresent();
    }

    static boolean isTerminated(Pod pod) {
        String phase = pod.getStatus() == null ? null : pod.getStatus().getPhase();
        return "Failed".equals(phase) || "Succeeded".equals(phase);
    }

    static boolean isReady(Pod pod) {
        return pod.getStatus() != null && pod.getStatus().getConditions().stream()
                .anyMatch(c -> "Ready".equals(c.getType()) && "True".equals(c.getStatus()));
    }

    private static String suffix() {
        StringBuilder s = new StringBuilder(5);
        for (int i = 0; i < 5; i++) {
            s.append(SUFFIX_CHARS.charAt(RANDOM.nextInt(SUFFIX_CHARS.length())));
        }
        return s.toString();
    }
}
