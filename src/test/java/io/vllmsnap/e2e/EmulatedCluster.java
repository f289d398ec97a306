package io.vllmsnap.e2e;

import com.fasterxml.jackson.databind.JsonNode;
import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.vllmsnap.agent.container.EmulatedNode;
import io.vllmsnap.agent.store.ImageStore;
import io.vllmsnap.api.ApiConstants;
import io.vllmsnap.api.SourceRef;
import io.vllmsnap.api.VllmRestore;
import io.vllmsnap.api.VllmRestoreSpec;
import io.vllmsnap.api.VllmRestoreStatus;
import io.vllmsnap.api.VllmSnapshot;
import io.vllmsnap.api.VllmSnapshotSpec;
import io.vllmsnap.api.VllmSnapshotStatus;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Predicate;

import static org.awaitility.Awaitility.await;

/**
 * One namespace of the mock API server with emulated nodes, each with a real in-process agent, and the kubelet
 * emulator playing scheduler and kubelet for them. Made per test, closed after it.
 */
final class EmulatedCluster implements AutoCloseable {
    static final Path WORK = Path.of("target/e2e").toAbsolutePath();
    static final Path STANDIN = Path.of("src/main/python/vllmsnap_standin/server.py").toAbsolutePath();
    static final String CONTAINER = "vllm";
    /** Small state keeps the suite quick: 32 MiB of weights, 32 MiB of KV pool, two compile rounds. */
    static final String WEIGHTS_SIZE = "32MiB";
    static final String KV_SIZE = "32MiB";
    private static final AtomicInteger NAMESPACES = new AtomicInteger();

    final KubernetesClient client;
    final String namespace;
    final Map<String, EmulatedNode> nodes = new LinkedHashMap<>();
    final Map<String, InProcessAgent> agents = new LinkedHashMap<>();
    private final E2eNodeAgents registry;
    final KubeletEmulator kubelet;
    final Path storage;

    /**
     * @param sharedImages when true the nodes' agents keep images in one directory, as on a PVC every node mounts
     */
    EmulatedCluster(KubernetesClient client, E2eNodeAgents registry, int nodeCount, int concurrency, boolean sharedImages)
            throws Exception {
        this.client = client;
        this.registry = registry;
        this.namespace = "e2e-" + ProcessHandle.current().pid() + "-" + NAMESPACES.incrementAndGet();
        client.namespaces().resource(new NamespaceBuilder().withNewMetadata().withName(namespace).endMetadata().build()).create();
        Files.createDirectories(WORK);
        storage = Files.createTempDirectory(WORK, namespace);
        for (int i = 0; i < nodeCount; i++) {
            String name = "node-" + (char) ('a' + i);
            nodes.put(name, new EmulatedNode());
            Path nodeStorage = storage.resolve(name);
            Path images = sharedImages ? storage.resolve("pvc/images") : nodeStorage.resolve("images");
            InProcessAgent agent = new InProcessAgent(name, nodeStorage, images, concurrency);
            agents.put(name, agent);
            registry.put(name, agent);
        }
        kubelet = new KubeletEmulator(client, namespace, nodes, "node-a");
    }

    InProcessAgent agent(String node) {
        return agents.get(node);
    }

    /** A stand-in vLLM server pod on {@code node}, as a user's Deployment would have made it; waits until it is Ready. */
    Pod sourcePod(String name, String node) {
        return sourcePod(name, node, KV_SIZE);
    }

    /** @param kvSize a larger KV pool makes the dump last longer (fault tests cut into it) */
    Pod sourcePod(String name, String node, String kvSize) {
        Pod pod = new PodBuilder()
                .withNewMetadata().withName(name).withNamespace(namespace).addToLabels("app", "standin").endMetadata()
                .withNewSpec().withNodeName(node)
                .addNewContainer().withName(CONTAINER).withImage("vllmsnap/standin:e2e")
                .withCommand("python3", STANDIN.toString())
                .withArgs("--host", "0.0.0.0", "--port", "8000", "--weights", WORK.resolve("weights-" + WEIGHTS_SIZE).toString(),
                        "--weights-size", WEIGHTS_SIZE, "--kv-size", kvSize, "--compile-rounds", "2")
                .addNewPort().withContainerPort(8000).endPort()
                .withNewReadinessProbe().withNewHttpGet().withPath("/health").withNewPort(8000).endHttpGet().endReadinessProbe()
                .addNewVolumeMount().withName("shm").withMountPath("/dev/shm").endVolumeMount()
                .endContainer()
                .addNewVolume().withName("shm").withNewEmptyDir().withMedium("Memory").endEmptyDir().endVolume()
                .endSpec().build();
        client.pods().inNamespace(namespace).resource(pod).create();
        return await().atMost(Duration.ofSeconds(60)).until(() -> client.pods().inNamespace(namespace).withName(name).get(),
                p -> p.getStatus() != null && p.getStatus().getConditions().stream()
                        .anyMatch(c -> "Ready".equals(c.getType()) && "True".equals(c.getStatus())));
    }

    VllmSnapshot snapshot(String name, String pod, int sleepLevel) {
        VllmSnapshot snapshot = new VllmSnapshot();
        snapshot.getMetadata().setName(name);
        snapshot.getMetadata().setNamespace(namespace);
        snapshot.setSpec(new VllmSnapshotSpec(new SourceRef(pod, CONTAINER), sleepLevel));
        return client.resource(snapshot).create();
    }

    VllmRestore restore(String name, String snapshot, int replicas) {
        return restore(name, new VllmRestoreSpec(snapshot, replicas));
    }

    VllmRestore restore(String name, VllmRestoreSpec spec) {
        VllmRestore restore = new VllmRestore();
        restore.getMetadata().setName(name);
        restore.getMetadata().setNamespace(namespace);
        restore.setSpec(spec);
        return client.resource(restore).create();
    }

    /** What {@code kubectl scale vllmrestore/NAME --replicas=N} sends: the scale subresource. */
    void scale(String restore, int replicas) {
        client.resources(VllmRestore.class).inNamespace(namespace).withName(restore).scale(replicas);
    }

    VllmSnapshot getSnapshot(String name) {
        return client.resources(VllmSnapshot.class).inNamespace(namespace).withName(name).get();
    }

    VllmRestore getRestore(String name) {
        return client.resources(VllmRestore.class).inNamespace(namespace).withName(name).get();
    }

    VllmSnapshot awaitSnapshot(String name, Predicate<VllmSnapshotStatus> until, Duration timeout) {
        return await().atMost(timeout).pollInterval(Duration.ofMillis(100)).until(() -> getSnapshot(name),
                s -> s != null && s.getStatus() != null && until.test(s.getStatus()));
    }

    VllmRestore awaitRestore(String name, Predicate<VllmRestoreStatus> until, Duration timeout) {
        return await().atMost(timeout).pollInterval(Duration.ofMillis(100)).until(() -> getRestore(name),
                r -> r != null && r.getStatus() != null && until.test(r.getStatus()));
    }

    List<Pod> restorePods(String restore) {
        return client.pods().inNamespace(namespace).withLabel(ApiConstants.RESTORE_LABEL, restore).list().getItems().stream()
                .filter(p -> p.getMetadata().getDeletionTimestamp() == null).toList();
    }

    EmulatedNode.Pod container(String podName) {
        return kubelet.container(podName);
    }

    JsonNode state(String podName) throws Exception {
        return EmulatedNode.get(container(podName), "/state");
    }

    /** Leftovers of jobs on a node: partial images and job work directories. */
    List<Path> leftovers(String node) throws java.io.IOException {
        Path work = storage.resolve(node).resolve("work");
        List<Path> found = new java.util.ArrayList<>();
        if (Files.isDirectory(work)) {
            try (var s = Files.list(work)) {
                s.forEach(found::add);
            }
        }
        try (var s = Files.walk(storage)) {
            s.filter(p -> p.getFileName().toString().contains("partial")).forEach(found::add);
        }
        return found;
    }

    /** Images of this namespace on the node (complete ones). */
    List<?> images(String node) {
        return agents.get(node).imageStore().list(namespace);
    }

    @Override
    public void close() throws Exception {
        kubelet.close();
        for (var e : agents.entrySet()) {
            registry.remove(e.getKey());
            e.getValue().kill();
        }
        for (EmulatedNode node : nodes.values()) {
            node.close();
        }
        ImageStore.deleteTree(storage);
    }
}
