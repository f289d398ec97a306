package io.vllmsnap.operator;

import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.EnvVar;
import io.fabric8.kubernetes.api.model.PodSpec;
import io.fabric8.kubernetes.api.model.Volume;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * What the operator can see, before a snapshot, of the source pod shape that restores cleanly (learnt from systems in
 * production). These are warnings: the snapshot still goes ahead, and the agent is the judge of the live process.
 */
public final class SourcePodChecks {
    private SourcePodChecks() {
    }

    /** @return one sentence per problem, saying what to change; empty when nothing is wrong */
    public static List<String> warnings(PodSpec pod, Container container) {
        List<String> warnings = new ArrayList<>();
        boolean shmIsEmptyDir = container.getVolumeMounts().stream()
                .filter(m -> "/dev/shm".equals(m.getMountPath()))
                .map(m -> volume(pod, m.getName()))
                .anyMatch(v -> v != null && v.getEmptyDir() != null);
        if (!shmIsEmptyDir) {
            warnings.add("/dev/shm is not an emptyDir volume: CRIU needs one to restore vLLM's POSIX semaphores");
        }
        if (!"spawn".equals(env(container, "VLLM_WORKER_MULTIPROC_METHOD"))) {
            warnings.add("VLLM_WORKER_MULTIPROC_METHOD is not 'spawn': set it so workers hold no state inherited by fork");
        }
        if (!"1".equals(env(container, "HF_HUB_OFFLINE"))) {
            warnings.add("HF_HUB_OFFLINE is not '1': set it so no model hub connection is open at checkpoint time");
        }
        return warnings;
    }

    private static Volume volume(PodSpec pod, String name) {
        return pod.getVolumes().stream().filter(v -> Objects.equals(name, v.getName())).findFirst().orElse(null);
    }

    private static String env(Container container, String name) {
        return container.getEnv().stream().filter(e -> name.equals(e.getName())).map(EnvVar::getValue)
                .filter(Objects::nonNull).findFirst().orElse(null);
    }
}
