package io.vllmsnap.operator;

import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.ContainerStatus;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.javaoperatorsdk.operator.api.reconciler.Cleaner;
import io.javaoperatorsdk.operator.api.reconciler.Context;
import io.javaoperatorsdk.operator.api.reconciler.ErrorStatusUpdateControl;
import io.javaoperatorsdk.operator.api.reconciler.MaxReconciliationInterval;
import io.javaoperatorsdk.operator.api.reconciler.ControllerConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.DeleteControl;
import io.javaoperatorsdk.operator.api.reconciler.Reconciler;
import io.javaoperatorsdk.operator.api.reconciler.UpdateControl;
import io.vllmsnap.agent.api.AgentRejectedException;
import io.vllmsnap.agent.api.AgentUnavailableException;
import io.vllmsnap.agent.api.JobState;
import io.vllmsnap.agent.api.JobStatus;
import io.vllmsnap.agent.api.NodeAgent;
import io.vllmsnap.agent.api.NodeAgents;
import io.vllmsnap.agent.api.SnapshotJobRequest;
import io.vllmsnap.api.CompatibilityInfo;
import io.vllmsnap.api.SnapshotPhase;
import io.vllmsnap.api.VllmRestore;
import io.vllmsnap.api.VllmSnapshot;
import io.vllmsnap.api.VllmSnapshotStatus;
import io.vllmsnap.metrics.VllmsnapMetrics;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * Takes a snapshot: observe the source pod, validate it, ask its node's agent to checkpoint, follow the job to Ready or
 * Failed. Ready and Failed are terminal (the spec is immutable). The finalizer removes the image from the node.
 */
// Reconsider every resource at least every 5 minutes, whatever happened to events in between.
@ControllerConfiguration(name = VllmSnapshotReconciler.NAME, maxReconciliationInterval = @MaxReconciliationInterval(interval = 5,
        timeUnit = TimeUnit.MINUTES))
public class VllmSnapshotReconciler implements Reconciler<VllmSnapshot>, Cleaner<VllmSnapshot> {
    public static final String NAME = "vllmsnapshot";

    private final KubernetesClient client;
    private final Statuses statuses;
    private final NodeAgents agents;
    private final EventRecorder events;
    private final VllmsnapMetrics metrics;
    private final OperatorSettings settings;
    private final PodTemplates templates;

    public VllmSnapshotReconciler(KubernetesClient client, Statuses statuses, NodeAgents agents, EventRecorder events,
            VllmsnapMetrics metrics, OperatorSettings settings, PodTemplates templates) {
        this.client = client;
        this.statuses = statuses;
        this.agents = agents;
        this.events = events;
        this.metrics = metrics;
        this.settings = settings;
        this.templates = templates;
    }

    /** Agent job ID of a snapshot: derived from the resource's UID, so a repeated request finds the same job. */
    public static String jobId(VllmSnapshot snapshot) {
        return "snapshot-" + snapshot.getMetadata().getUid();
    }

    /** Image ID of a snapshot: the resource's UID (a DNS label, unique, stable across retries). */
    public static String imageId(VllmSnapshot snapshot) {
        return snapshot.getMetadata().getUid();
    }

    /** An unexpected error (API server refusing a pod, say) is told to the user as an Event; the SDK retries with backoff. */
    @Override
    public ErrorStatusUpdateControl<VllmSnapshot> updateErrorStatus(VllmSnapshot snapshot, Context<VllmSnapshot> context, Exception e) {
        events.warning(snapshot, "ReconcileError", "reconciliation failed, retrying: " + e.getMessage());
        return ErrorStatusUpdateControl.defaultErrorProcessing();
    }

    @Override
    public UpdateControl<VllmSnapshot> reconcile(VllmSnapshot cached, Context<VllmSnapshot> context) {
        VllmSnapshot snapshot = statuses.latest(cached);
        String before = statuses.json(snapshot.getStatus());
        if (snapshot.getStatus() == null) {
            snapshot.setStatus(new VllmSnapshotStatus());
        }
        VllmSnapshotStatus status = snapshot.getStatus();
        Optional<Duration> requeue = status.phase != null && status.phase.isTerminal()
                ? Optional.empty()
                : status.jobId == null ? start(snapshot) : follow(snapshot);
        status.observedGeneration = snapshot.getMetadata().getGeneration();
        UpdateControl<VllmSnapshot> control = statuses.json(status).equals(before)
                ? UpdateControl.noUpdate()
                : UpdateControl.patchStatus(snapshot);
        requeue.ifPresent(d -> control.rescheduleAfter(d.toMillis()));
        return control;
    }

    // ---- observe and validate the source, then start the job

    private Optional<Duration> start(VllmSnapshot snapshot) {
        VllmSnapshotStatus status = snapshot.getStatus();
        String namespace = snapshot.getMetadata().getNamespace();
        var source = snapshot.getSpec() == null ? null : snapshot.getSpec().source;
        if (source == null || source.pod == null || source.container == null) {
            return fail(snapshot, "InvalidSpec", "spec.source.pod and spec.source.container are required");
        }
        if (snapshot.getSpec().sleepLevel < 0 || snapshot.getSpec().sleepLevel > 2) {
            return fail(snapshot, "InvalidSpec", "spec.sleepLevel must be 0, 1 or 2, not " + snapshot.getSpec().sleepLevel);
        }
        Pod pod = client.pods().inNamespace(namespace).withName(source.pod).get();
        if (pod == null && status.podUid != null) {
            return fail(snapshot, "SourcePodGone", "pod '" + source.pod + "' (UID " + status.podUid
                    + ") was deleted before the snapshot could start");
        }
        if (pod == null) {
            return fail(snapshot, "PodNotFound", "pod '" + source.pod + "' not found in namespace '" + namespace + "'");
        }
        String uid = pod.getMetadata().getUid();
        if (status.podUid != null && !status.podUid.equals(uid)) {
            return fail(snapshot, "SourcePodReplaced", "pod '" + source.pod + "' was recreated (UID " + status.podUid + " is now "
                    + uid + "); a snapshot is only taken of the pod it was asked for");
        }
        status.podUid = uid;
        String podPhase = pod.getStatus() == null ? null : pod.getStatus().getPhase();
        if ("Succeeded".equals(podPhase) || "Failed".equals(podPhase)) {
            return fail(snapshot, "PodNotRunning", "pod '" + source.pod + "' has terminated (phase " + podPhase + ")");
        }
        if (!"Running".equals(podPhase)) {
            return waitFor(snapshot, "PodNotRunning", "waiting for pod '" + source.pod + "' to be Running (phase "
                    + podPhase + ")");
        }
        Optional<Container> container = pod.getSpec().getContainers().stream()
                .filter(c -> source.container.equals(c.getName())).findFirst();
        if (container.isEmpty()) {
            return fail(snapshot, "ContainerNotFound", "pod '" + source.pod + "' has no container '" + source.container
                    + "' (containers: " + String.join(", ", pod.getSpec().getContainers().stream().map(Container::getName).toList())
                    + ")");
        }
        Optional<ContainerStatus> containerStatus = pod.getStatus().getContainerStatuses().stream()
                .filter(c -> source.container.equals(c.getName())).findFirst();
        if (containerStatus.isEmpty() || containerStatus.get().getContainerID() == null
                || containerStatus.get().getState() == null || containerStatus.get().getState().getRunning() == null) {
            return waitFor(snapshot, "ContainerNotRunning", "waiting for container '" + source.container + "' of pod '"
                    + source.pod + "' to run");
        }
        String node = pod.getSpec().getNodeName();
        Optional<NodeAgent> agent = agents.forNode(node);
        if (agent.isEmpty()) {
            return waitFor(snapshot, "NoAgentOnNode", "node '" + node + "' of pod '" + source.pod
                    + "' runs no vllmsnap agent; waiting for one (is the node labelled for the agent DaemonSet?)");
        }
        checkShape(snapshot, pod, container.get());
        status.node = node;
        status.containerId = containerStatus.get().getContainerID();
        status.compatibility = containerHalf(container.get(), containerStatus.get());
        status.podTemplateConfigMap = templates.record(snapshot, pod);
        status.jobId = jobId(snapshot);
        status.imageId = imageId(snapshot);
        status.startedAt = Statuses.now();
        Conditions.set(status.conditions, Conditions.READY, false, "SnapshotStarted", "snapshot of pod '" + source.pod
                + "' container '" + source.container + "' asked of the agent on node '" + node + "'",
                snapshot.getMetadata().getGeneration());
        return submit(snapshot, agent.get());
    }

    private void checkShape(VllmSnapshot snapshot, Pod pod, Container container) {
        List<String> warnings = SourcePodChecks.warnings(pod.getSpec(), container);
        List<io.fabric8.kubernetes.api.model.Condition> conditions = snapshot.getStatus().conditions;
        Long generation = snapshot.getMetadata().getGeneration();
        if (warnings.isEmpty()) {
            Conditions.set(conditions, Conditions.SOURCE_CHECKED, true, "SourceLooksRestorable",
                    "the source pod has the shape that restores cleanly", generation);
        } else if (Conditions.set(conditions, Conditions.SOURCE_CHECKED, false, "SourceShapeWarnings",
                String.join("; ", warnings), generation)) {
            events.warning(snapshot, "SourceShapeWarnings", String.join("; ", warnings));
        }
    }

    private static CompatibilityInfo containerHalf(Container container, ContainerStatus containerStatus) {
        CompatibilityInfo info = new CompatibilityInfo();
        info.containerImageDigest = digestOf(containerStatus.getImageID());
        List<String> args = new ArrayList<>();
        args.addAll(container.getCommand());
        args.addAll(container.getArgs());
        info.vllmArgs = args;
        return info;
    }

    /** {@code docker-pullable://repo@sha256:abc} and {@code repo@sha256:abc} both give {@code sha256:abc}. */
    static String digestOf(String imageId) {
        if (imageId == null) {
            return null;
        }
        int at = imageId.lastIndexOf('@');
        return at >= 0 ? imageId.substring(at + 1) : imageId;
    }

    private Optional<Duration> submit(VllmSnapshot snapshot, NodeAgent agent) {
        VllmSnapshotStatus status = snapshot.getStatus();
        var spec = snapshot.getSpec();
        var request = new SnapshotJobRequest(status.jobId, snapshot.getMetadata().getNamespace(), status.imageId,
                status.podUid, spec.source.container, status.containerId, spec.sleepLevel, spec.leaveRunning, spec.vllmPort);
        try {
            return apply(snapshot, agent.startSnapshot(request));
        } catch (AgentRejectedException e) {
            return fail(snapshot, e.reason(), "the agent on node '" + status.node + "' refused the snapshot: " + e.getMessage());
        } catch (AgentUnavailableException e) {
            return agentUnreachable(snapshot, e.getMessage());
        }
    }

    // ---- follow the job

    private Optional<Duration> follow(VllmSnapshot snapshot) {
        VllmSnapshotStatus status = snapshot.getStatus();
        Optional<NodeAgent> agent = agents.forNode(status.node);
        if (agent.isEmpty()) {
            return agentUnreachable(snapshot, "no vllmsnap agent runs on node '" + status.node + "' any more");
        }
        try {
            JobStatus job = agent.get().job(status.jobId);
            // No record: the agent lost it (for example its node storage was wiped). The request is idempotent: send it again.
            return job == null ? submit(snapshot, agent.get()) : apply(snapshot, job);
        } catch (AgentUnavailableException e) {
            return agentUnreachable(snapshot, e.getMessage());
        }
    }

    private Optional<Duration> apply(VllmSnapshot snapshot, JobStatus job) {
        VllmSnapshotStatus status = snapshot.getStatus();
        Long generation = snapshot.getMetadata().getGeneration();
        if (status.agentRetries != null) {
            status.agentRetries = null;
        }
        Conditions.set(status.conditions, Conditions.AGENT_REACHABLE, true, "AgentReachable",
                "the agent on node '" + status.node + "' answers", generation);
        status.jobPhase = job.phase();
        status.queuePosition = job.queuePosition();
        if (job.phaseMillis() != null) {
            status.phaseMillis = new LinkedHashMap<>(job.phaseMillis());
        }
        if (job.state() == JobState.SUCCEEDED) {
            status.phase = SnapshotPhase.Ready;
            status.imageId = job.imageId() != null ? job.imageId() : status.imageId;
            status.sizeBytes = job.sizeBytes();
            status.size = Humanize.bytes(job.sizeBytes());
            status.gpus = job.gpus() == null ? new ArrayList<>() : new ArrayList<>(job.gpus());
            status.totalMillis = job.totalMillis();
            status.duration = Humanize.millis(job.totalMillis());
            status.completedAt = Statuses.now();
            status.queuePosition = null;
            mergeNodeHalf(status, job);
            String message = "image " + status.imageId + " (" + status.size + ") taken in " + status.duration + " on node '"
                    + status.node + "'";
            if (Conditions.set(status.conditions, Conditions.READY, true, "SnapshotReady", message, generation)) {
                events.normal(snapshot, "SnapshotReady", message);
                metrics.snapshotFinished(true, job.phaseMillis(), job.totalMillis(), job.sizeBytes());
            }
            return Optional.empty();
        }
        if (job.state() == JobState.FAILED) {
            status.totalMillis = job.totalMillis();
            status.completedAt = Statuses.now();
            status.queuePosition = null;
            metrics.snapshotFinished(false, job.phaseMillis(), job.totalMillis(), 0);
            String reason = job.errorReason() == null || job.errorReason().isBlank() ? "SnapshotJobFailed" : job.errorReason();
            String where = job.phase() == null ? "" : " in phase " + job.phase();
            return fail(snapshot, reason, "the snapshot job failed" + where + ": " + job.errorMessage());
        }
        status.phase = SnapshotPhase.InProgress;
        String message = job.state() == JobState.QUEUED
                ? "queued on node '" + status.node + "' at position " + job.queuePosition()
                : "running on node '" + status.node + "'" + (job.phase() == null ? "" : ", phase " + job.phase());
        if (Conditions.set(status.conditions, Conditions.READY, false, "SnapshotInProgress", message, generation)) {
            events.normal(snapshot, "SnapshotInProgress", message);
        }
        return Optional.of(settings.jobPollInterval());
    }

    private static void mergeNodeHalf(VllmSnapshotStatus status, JobStatus job) {
        if (status.compatibility == null) {
            status.compatibility = new CompatibilityInfo();
        }
        var identity = job.identity();
        if (identity != null) {
            status.compatibility.gpuModel = identity.gpuModel();
            status.compatibility.driverVersion = identity.driverVersion();
            status.compatibility.criuVersion = identity.criuVersion();
            if (status.compatibility.containerImageDigest == null) {
                status.compatibility.containerImageDigest = identity.containerImageDigest();
            }
        }
    }

    // ---- outcomes

    private Optional<Duration> fail(VllmSnapshot snapshot, String reason, String message) {
        VllmSnapshotStatus status = snapshot.getStatus();
        status.phase = SnapshotPhase.Failed;
        status.queuePosition = null;
        if (Conditions.set(status.conditions, Conditions.READY, false, reason, message, snapshot.getMetadata().getGeneration())) {
            events.warning(snapshot, reason, message);
        }
        return Optional.empty();
    }

    private Optional<Duration> waitFor(VllmSnapshot snapshot, String reason, String message) {
        VllmSnapshotStatus status = snapshot.getStatus();
        status.phase = SnapshotPhase.Pending;
        if (Conditions.set(status.conditions, Conditions.READY, false, reason, message, snapshot.getMetadata().getGeneration())) {
            events.normal(snapshot, reason, message);
        }
        return Optional.of(settings.waitInterval());
    }

    /** The job may still run on the node: keep the phase, say so, and ask again after a growing delay. */
    private Optional<Duration> agentUnreachable(VllmSnapshot snapshot, String cause) {
        VllmSnapshotStatus status = snapshot.getStatus();
        status.agentRetries = status.agentRetries == null ? 1 : status.agentRetries + 1;
        Duration delay = Backoff.after(status.agentRetries, settings.agentBackoffBase(), settings.agentBackoffMax());
        if (status.phase == null || status.phase == SnapshotPhase.Pending) {
            status.phase = SnapshotPhase.InProgress;
        }
        String message = "the agent on node '" + status.node + "' could not be reached (attempt " + status.agentRetries
                + ", next in " + Humanize.millis(delay.toMillis()) + "): " + cause;
        if (Conditions.set(status.conditions, Conditions.AGENT_REACHABLE, false, "AgentUnreachable", message,
                snapshot.getMetadata().getGeneration())) {
            events.warning(snapshot, "AgentUnreachable", message);
        }
        return Optional.of(delay);
    }

    // ---- deletion

    @Override
    public DeleteControl cleanup(VllmSnapshot snapshot, Context<VllmSnapshot> context) {
        String before = statuses.json(snapshot.getStatus());
        if (snapshot.getStatus() == null) {
            snapshot.setStatus(new VllmSnapshotStatus());
        }
        VllmSnapshotStatus status = snapshot.getStatus();
        DeleteControl control = deleteStep(snapshot, status);
        if (!control.isRemoveFinalizer() && !statuses.json(status).equals(before)) {
            client.resources(VllmSnapshot.class).inNamespace(snapshot.getMetadata().getNamespace())
                    .withName(snapshot.getMetadata().getName()).editStatus(latest -> {
                        latest.setStatus(status);
                        return latest;
                    });
        }
        return control;
    }

    private DeleteControl deleteStep(VllmSnapshot snapshot, VllmSnapshotStatus status) {
        Long generation = snapshot.getMetadata().getGeneration();
        List<String> users = restoresUsing(snapshot);
        if (!users.isEmpty()) {
            status.phase = SnapshotPhase.Deleting;
            String message = "still used by VllmRestore " + String.join(", ", users)
                    + "; the image is kept until they are deleted";
            if (Conditions.set(status.conditions, Conditions.IN_USE, true, "InUseByRestores", message, generation)) {
                events.warning(snapshot, "DeletionDeferred", message);
            }
            return DeleteControl.noFinalizerRemoval().rescheduleAfter(settings.waitInterval().toMillis());
        }
        if (status.jobId == null || status.node == null) {
            return DeleteControl.defaultDelete(); // nothing was ever written on a node
        }
        status.phase = SnapshotPhase.Deleting;
        Optional<NodeAgent> agent = agents.forNode(status.node);
        try {
            if (agent.isEmpty()) {
                throw new AgentUnavailableException("no vllmsnap agent runs on node '" + status.node + "'");
            }
            JobStatus job = agent.get().job(status.jobId);
            if (job != null && !job.state().isTerminal()) {
                // Deleted mid-job: the image is deleted once the job has ended, so no half-written image outlives us.
                String message = "deleted while the snapshot job runs; the image is removed when the job ends";
                if (Conditions.set(status.conditions, Conditions.READY, false, "DeletingAfterJob", message, generation)) {
                    events.normal(snapshot, "DeletingAfterJob", message);
                }
                return DeleteControl.noFinalizerRemoval().rescheduleAfter(settings.jobPollInterval().toMillis());
            }
            agent.get().deleteImage(snapshot.getMetadata().getNamespace(), status.imageId);
        } catch (AgentUnavailableException e) {
            status.agentRetries = status.agentRetries == null ? 1 : status.agentRetries + 1;
            Duration delay = Backoff.after(status.agentRetries, settings.agentBackoffBase(), settings.agentBackoffMax());
            String message = "cannot delete image " + status.imageId + " on node '" + status.node + "' (attempt "
                    + status.agentRetries + ", next in " + Humanize.millis(delay.toMillis()) + "): " + e.getMessage()
                    + "; the finalizer stays until the image is deleted";
            if (Conditions.set(status.conditions, Conditions.AGENT_REACHABLE, false, "AgentUnreachable", message, generation)) {
                events.warning(snapshot, "ImageDeletePending", message);
            }
            return DeleteControl.noFinalizerRemoval().rescheduleAfter(delay.toMillis());
        } catch (AgentRejectedException e) {
            String message = "the agent on node '" + status.node + "' refused to delete image " + status.imageId + ": "
                    + e.getMessage() + "; the finalizer stays (remove it by hand once the image is dealt with)";
            if (Conditions.set(status.conditions, Conditions.READY, false, e.reason(), message, generation)) {
                events.warning(snapshot, "ImageDeleteRefused", message);
            }
            return DeleteControl.noFinalizerRemoval().rescheduleAfter(settings.agentBackoffMax().toMillis());
        }
        events.normal(snapshot, "ImageDeleted", "image " + status.imageId + " deleted on node '" + status.node + "'");
        return DeleteControl.defaultDelete();
    }

    private List<String> restoresUsing(VllmSnapshot snapshot) {
        String name = snapshot.getMetadata().getName();
        return client.resources(VllmRestore.class).inNamespace(snapshot.getMetadata().getNamespace()).list().getItems()
                .stream()
                .filter(r -> r.getSpec() != null && name.equals(r.getSpec().snapshotName))
                .map(r -> r.getMetadata().getName())
                .sorted()
                .toList();
    }
}
