package io.vllmsnap.e2e;

import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.ContainerStatusBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodConditionBuilder;
import io.fabric8.kubernetes.api.model.PodStatus;
import io.fabric8.kubernetes.api.model.PodStatusBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.vllmsnap.agent.container.EmulatedNode;

import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * Test double, never shipped: plays the scheduler and the kubelet of the emulated nodes for the Pods of one
 * namespace of the mock API server. It binds a Pod without {@code spec.nodeName} to a node (its
 * {@code kubernetes.io/hostname} node selector, else {@link #scheduleTo}); for a Pod bound to one of its nodes it starts
 * the pod's single container as an emulated container ({@link EmulatedNode}: own network namespace and address, own
 * cgroup named after the Pod's UID and the container ID, new PID/mount/UTS/IPC namespaces), and writes the pod status a
 * kubelet writes: phase Running, podIP, hostIP, a running container status with containerID and imageID, and Ready from
 * a readiness probe ({@code GET /health} on port 8000 of the pod's address, every loop). A container whose processes
 * all ended turns the Pod Failed (restartPolicy Never). When the Pod is deleted, the container's cgroup is killed.
 */
final class KubeletEmulator implements AutoCloseable {
    static final String IMAGE_ID = "docker.io/vllmsnap/standin@sha256:5e2e000000000000000000000000000000000000000000000000000000000001";
    private static final String HOSTNAME_LABEL = "kubernetes.io/hostname";
    /**
     * In the container's own mount namespace: unmounts every mount under the test's work directory ($1) and /run/netns
     * with what is under it, then runs the container's command.
     */
    private static final String DROP_AGENT_MOUNTS = """
            work=$1; shift
            for m in $(awk -v w="$work/" 'index($5, w) == 1 || index($5, "/run/netns") == 1 {print $5}' /proc/self/mountinfo \
                    | sort -r); do umount -l "$m"; done
            exec "$@"
            """;

    private final KubernetesClient client;
    private final String namespace;
    private final Map<String, EmulatedNode> nodes;
    private final Map<String, Running> running = new ConcurrentHashMap<>();
    private final Thread loop;
    private volatile boolean stopped;
    /** While set, containers start but their pods' status is not written (as a node busy starting many at once). */
    volatile boolean holdStatus;
    /** Node that pods without a hostname selector are bound to. */
    volatile String scheduleTo;

    private record Running(String name, String node, EmulatedNode.Pod pod, boolean ready, boolean exited) {
    }

    KubeletEmulator(KubernetesClient client, String namespace, Map<String, EmulatedNode> nodes, String scheduleTo) {
        this.client = client;
        this.namespace = namespace;
        this.nodes = nodes;
        this.scheduleTo = scheduleTo;
        this.loop = Thread.ofPlatform().name("kubelet-emulator-" + namespace).daemon().start(this::run);
    }

    /** The emulated container of a running pod, by pod name. */
    EmulatedNode.Pod container(String podName) {
        return running.values().stream().filter(r -> r.name().equals(podName)).map(Running::pod).findFirst()
                .orElseThrow(() -> new IllegalStateException("pod " + podName + " runs no emulated container"));
    }

    /** Pod names whose containers still run (not yet killed), on any node. */
    Set<String> runningPods() {
        Set<String> names = new HashSet<>();
        running.values().forEach(r -> names.add(r.name()));
        return names;
    }

    private void run() {
        while (!stopped) {
            try {
                syncOnce();
            } catch (RuntimeException e) {
                if (stopped) {
                    return;
                }
                // the API server may answer errors for a while (fault tests): a kubelet just tries again
                System.err.println("kubelet emulator: " + e + (e.getCause() == null ? "" : " caused by " + e.getCause()));
                e.printStackTrace();
            }
            try {
                Thread.sleep(100);
            } catch (InterruptedException e) {
                return;
            }
        }
    }

    private void syncOnce() {
        List<Pod> pods = client.pods().inNamespace(namespace).list().getItems();
        Set<String> seen = new HashSet<>();
        for (Pod pod : pods) {
            String uid = pod.getMetadata().getUid();
            if (pod.getMetadata().getDeletionTimestamp() != null) {
                continue;
            }
            seen.add(uid);
            String node = pod.getSpec().getNodeName();
            if (node == null) {
                bind(pod);
                continue;
            }
            if (!nodes.containsKey(node)) {
                continue;
            }
            Running r = running.get(uid);
            if (r == null) {
                start(pod, node);
            } else {
                probe(pod, r);
            }
        }
        for (String uid : new ArrayList<>(running.keySet())) {
            if (!seen.contains(uid)) {
                Running gone = running.remove(uid);
                try {
                    EmulatedNode.kill(gone.pod());
                } catch (Exception e) {
                    System.err.println("kubelet emulator: cannot kill " + gone.name() + ": " + e);
                }
            }
        }
    }

    private void bind(Pod pod) {
        Map<String, String> selector = pod.getSpec().getNodeSelector();
        String node = selector != null && selector.containsKey(HOSTNAME_LABEL) ? selector.get(HOSTNAME_LABEL) : scheduleTo;
        client.pods().inNamespace(namespace).withName(pod.getMetadata().getName()).edit(p -> {
            p.getSpec().setNodeName(node);
            return p;
        });
    }

    private void start(Pod pod, String node) {
        Container container = pod.getSpec().getContainers().getFirst();
        // A runtime builds a container's mounts from its image; an emulated container starts from a copy of the host's
        // mount table instead, which may hold the agents' bind mounts of restores in flight and other pods' network
        // namespace files (which come and go with those pods): drop those first.
        List<String> command = new ArrayList<>(List.of("sh", "-c", DROP_AGENT_MOUNTS, "container",
                EmulatedCluster.WORK.toString()));
        command.addAll(container.getCommand());
        if (container.getArgs() != null) {
            command.addAll(container.getArgs());
        }
        try {
            EmulatedNode.Pod emulated = nodes.get(node).pod(pod.getMetadata().getUid());
            nodes.get(node).startContainer(emulated, command);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (EmulatedNode.procs(emulated).isEmpty() && System.nanoTime() < deadline) {
                Thread.sleep(10); // the runtime reports a container once its process runs
            }
            running.put(pod.getMetadata().getUid(), new Running(pod.getMetadata().getName(), node, emulated, false, false));
        } catch (Exception e) {
            throw new IllegalStateException("cannot start pod " + pod.getMetadata().getName() + " on " + node, e);
        }
        if (!holdStatus) {
            writeStatus(pod, running.get(pod.getMetadata().getUid()).pod(), container, "Running", false);
        }
    }

    private void probe(Pod pod, Running r) {
        if (r.exited() || holdStatus) {
            return;
        }
        Container container = pod.getSpec().getContainers().getFirst();
        try {
            if (EmulatedNode.procs(r.pod()).isEmpty()) {
                running.put(pod.getMetadata().getUid(), new Running(r.name(), r.node(), r.pod(), false, true));
                writeStatus(pod, r.pod(), container, "Failed", false);
                return;
            }
        } catch (java.io.IOException e) {
            return;
        }
        boolean ready = EmulatedNode.answers(r.pod());
        boolean reported = pod.getStatus() != null && "Running".equals(pod.getStatus().getPhase())
                && r.pod().address().equals(pod.getStatus().getPodIP());
        if (ready != r.ready() || !reported) {
            writeStatus(pod, r.pod(), container, "Running", ready);
            running.put(pod.getMetadata().getUid(), new Running(r.name(), r.node(), r.pod(), ready, false));
        }
    }

    private void writeStatus(Pod pod, EmulatedNode.Pod emulated, Container container, String phase, boolean ready) {
        String now = Instant.now().truncatedTo(ChronoUnit.SECONDS).toString();
        var containerStatus = new ContainerStatusBuilder().withName(container.getName()).withImage(container.getImage())
                .withImageID(IMAGE_ID).withContainerID(emulated.containerRef()).withReady(ready).withRestartCount(0);
        if ("Running".equals(phase)) {
            containerStatus.withNewState().withNewRunning().withStartedAt(now).endRunning().endState();
        } else {
            containerStatus.withNewState().withNewTerminated().withExitCode(137).withReason("Error").withFinishedAt(now)
                    .endTerminated().endState();
        }
        PodStatus status = new PodStatusBuilder().withPhase(phase).withPodIP(emulated.address())
                .withHostIP(hostAddress(emulated.address())).withStartTime(now)
                .addToContainerStatuses(containerStatus.build())
                .addToConditions(new PodConditionBuilder().withType("Ready").withStatus(ready ? "True" : "False").build())
                .build();
        client.pods().inNamespace(namespace).withName(pod.getMetadata().getName()).editStatus(p -> {
            p.setStatus(status);
            return p;
        });
    }

    /** The host end of the pod's veth pair (the /30's first address). */
    private static String hostAddress(String podAddress) {
        int dot = podAddress.lastIndexOf('.');
        return podAddress.substring(0, dot + 1) + (Integer.parseInt(podAddress.substring(dot + 1)) - 1);
    }

    @Override
    public void close() throws InterruptedException {
        stopped = true;
        loop.interrupt();
        loop.join(TimeUnit.SECONDS.toMillis(10));
    }
}
