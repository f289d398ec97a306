package io.vllmsnap.operator;

import io.fabric8.kubernetes.api.model.ContainerStatusBuilder;
import io.fabric8.kubernetes.api.model.Event;
import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.PodConditionBuilder;
import io.fabric8.kubernetes.api.model.PodStatusBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.vllmsnap.api.ApiConstants;
import io.vllmsnap.api.SourceRef;
import io.vllmsnap.api.VllmRestore;
import io.vllmsnap.api.VllmRestoreSpec;
import io.vllmsnap.api.VllmSnapshot;
import io.vllmsnap.api.VllmSnapshotSpec;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

/** Builds the cluster objects the tests need and plays the parts of the scheduler and the kubelet. */
final class KubeFixtures {
    static final String CONTAINER = "vllm";
    static final String IMAGE_DIGEST = "sha256:0123456789abcdef";
    private static final AtomicInteger NAMESPACES = new AtomicInteger();

    private final KubernetesClient client;

    KubeFixtures(KubernetesClient client) {
        this.client = client;
    }

    String namespace() {
        String name = "test-" + NAMESPACES.incrementAndGet();
        client.namespaces().resource(new NamespaceBuilder().withNewMetadata().withName(name).endMetadata().build()).create();
        return name;
    }

    /** A vLLM source pod, scheduled on {@code node}, in pod phase {@code phase} (Running: container running too). */
    Pod sourcePod(String namespace, String name, String node, String phase) {
        Pod pod = new PodBuilder()
                .withNewMetadata().withName(name).withNamespace(namespace).addToLabels("app", "vllm").endMetadata()
                .withNewSpec().withNodeName(node)
                .addNewContainer().withName(CONTAINER).withImage("vllm/vllm-openai:v0.11.0")
                .withCommand("vllm", "serve").withArgs("Qwen/Qwen2-1.5B", "--port", "8000")
                .addNewVolumeMount().withName("kube-api-access-x1").withMountPath("/var/run/secrets").endVolumeMount()
                .addNewVolumeMount().withName("shm").withMountPath("/dev/shm").endVolumeMount()
                .withNewLivenessProbe().withNewHttpGet().withPath("/health").withNewPort(8000).endHttpGet().endLivenessProbe()
                .endContainer()
                .addNewVolume().withName("kube-api-access-x1").withNewProjected().endProjected().endVolume()
                .addNewVolume().withName("shm").withNewEmptyDir().withMedium("Memory").endEmptyDir().endVolume()
                .endSpec()
                .build();
        Pod created = client.pods().inNamespace(namespace).resource(pod).create();
        return setPhase(created, phase, false);
    }

    /** Plays the kubelet: the pod gets {@code phase}; Running also means its containers run. */
    Pod setPhase(Pod pod, String phase, boolean ready) {
        var status = new PodStatusBuilder().withPhase(phase);
        if ("Running".equals(phase)) {
            pod.getSpec().getContainers().forEach(c -> status.addToContainerStatuses(new ContainerStatusBuilder()
                    .withName(c.getName()).withImage(c.getImage())
                    .withImageID("docker.io/vllm/vllm-openai@" + IMAGE_DIGEST)
                    .withContainerID("containerd://" + pod.getMetadata().getUid().replace("-", ""))
                    .withNewState().withNewRunning().withStartedAt("2026-01-01T00:00:00Z").endRunning().endState()
                    .withReady(ready).withRestartCount(0)
                    .build()));
            status.addToConditions(new PodConditionBuilder().withType("Ready").withStatus(ready ? "True" : "False").build());
        }
        pod.setStatus(status.build());
        return client.pods().inNamespace(pod.getMetadata().getNamespace()).resource(pod).updateStatus();
    }

    /** Plays the scheduler and the kubelet for every pod of a restore that does not run yet. */
    List<Pod> runRestorePods(String namespace, String restore, String node) {
        List<Pod> pods = restorePods(namespace, restore);
        for (Pod pod : pods) {
            if (pod.getStatus() == null || pod.getStatus().getPhase() == null) {
                Pod scheduled = client.pods().inNamespace(namespace).withName(pod.getMetadata().getName())
                        .edit(p -> new PodBuilder(p).editSpec().withNodeName(node).endSpec().build());
                setPhase(scheduled, "Running", false);
            }
        }
        return restorePods(namespace, restore);
    }

    List<Pod> restorePods(String namespace, String restore) {
        return client.pods().inNamespace(namespace).withLabel(ApiConstants.RESTORE_LABEL, restore).list().getItems().stream()
                .filter(p -> p.getMetadata().getDeletionTimestamp() == null).toList();
    }

    VllmSnapshot snapshot(String namespace, String name, String pod) {
        VllmSnapshot snapshot = new VllmSnapshot();
        snapshot.getMetadata().setName(name);
        snapshot.getMetadata().setNamespace(namespace);
        snapshot.setSpec(new VllmSnapshotSpec(new SourceRef(pod, CONTAINER), 2));
        return client.resource(snapshot).create();
    }

    VllmRestore restore(String namespace, String name, String snapshot, int replicas) {
        return restore(namespace, name, new VllmRestoreSpec(snapshot, replicas));
    }

    VllmRestore restore(String namespace, String name, VllmRestoreSpec spec) {
        VllmRestore restore = new VllmRestore();
        restore.getMetadata().setName(name);
        restore.getMetadata().setNamespace(namespace);
        restore.setSpec(spec);
        return client.resource(restore).create();
    }

    VllmSnapshot getSnapshot(String namespace, String name) {
        return client.resources(VllmSnapshot.class).inNamespace(namespace).withName(name).get();
    }

    VllmRestore getRestore(String namespace, String name) {
        return client.resources(VllmRestore.class).inNamespace(namespace).withName(name).get();
    }

    /** Reasons of the Events recorded about an object. */
    List<String> eventReasons(String namespace, String involvedName) {
        return client.v1().events().inNamespace(namespace).list().getItems().stream()
                .filter(e -> involvedName.equals(e.getInvolvedObject().getName()))
                .map(Event::getReason).toList();
    }
}
