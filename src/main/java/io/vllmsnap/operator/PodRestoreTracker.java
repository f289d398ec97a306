package io.vllmsnap.operator;

import io.fabric8.kubernetes.api.model.Pod;
import io.vllmsnap.agent.api.AgentRejectedException;
import io.vllmsnap.agent.api.AgentUnavailableException;
import io.vllmsnap.agent.api.JobState;
import io.vllmsnap.agent.api.JobStatus;
import io.vllmsnap.agent.api.NodeAgent;
import io.vllmsnap.agent.api.NodeAgents;
import io.vllmsnap.agent.api.NodeCapabilities;
import io.vllmsnap.agent.api.RestoreJobRequest;
import io.vllmsnap.api.RestorePath;
import io.vllmsnap.api.RestorePodPhase;
import io.vllmsnap.api.RestorePodStatus;
import io.vllmsnap.api.VllmRestore;
import io.vllmsnap.api.VllmRestoreStatus;
import io.vllmsnap.api.VllmSnapshot;
import io.vllmsnap.metrics.VllmsnapMetrics;
import jakarta.enterprise.context.ApplicationScoped;
import java.time.Duration;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Moves one pod of a VllmRestore along: a placeholder that runs is checked against the snapshot's compatibility
 * identity and handed to its node's agent; the agent job is followed to Ready or Failed. A cold-started pod is Ready
 * when its readiness probe passes. A failed pod is only marked here; the reconciler replaces it.
 */
@ApplicationScoped
public class PodRestoreTracker {
    private final NodeAgents agents;
    private final EventRecorder events;
    private final VllmsnapMetrics metrics;
    private final OperatorSettings settings;

    public PodRestoreTracker(NodeAgents agents, EventRecorder events, VllmsnapMetrics metrics, OperatorSettings settings) {
        this.agents = agents;
        this.events = events;
        this.metrics = metrics;
        this.settings = settings;
    }

    void track(VllmRestore restore, VllmSnapshot snapshot, Pod pod, RestorePodStatus entry, Requeue pass) {
        if (entry.phase == RestorePodPhase.Failed) {
            return;
        }
        String container = snapshot.getSpec().source.container;
        if (RestorePods.isTerminated(pod)) {
            podFailed(restore, entry, "PodTerminated", "pod " + entry.name + " terminated (phase " + pod.getStatus().getPhase()
                    + ")");
            return;
        }
        if (entry.path == RestorePath.ColdStart) {
            trackColdStart(restore, pod, entry, pass);
            return;
        }
        switch (entry.phase) {
            case Pending -> startRestore(restore, snapshot, pod, container, entry, pass);
            case Restoring -> followRestore(restore, snapshot, pod, container, entry, pass);
            default -> {
            }
        }
    }

    private void trackColdStart(VllmRestore restore, Pod pod, RestorePodStatus entry, Requeue pass) {
        if (entry.phase == RestorePodPhase.Ready) {
            return;
        }
        if (!RestorePods.isReady(pod)) {
            entry.phase = RestorePodPhase.Starting;
            pass.after(settings.waitInterval());
            return;
        }
        entry.phase = RestorePodPhase.Ready;
        entry.readyAt = Statuses.now();
        entry.totalMillis = Math.max(0, Duration.between(Instant.parse(entry.createdAt), Instant.now()).toMillis());
        metrics.restoreFinished(true, RestorePath.ColdStart.name(), Map.of(), entry.totalMillis);
        events.normal(restore, "ColdStarted", "pod " + entry.name + " cold-started on node '" + entry.node + "' in "
                + Humanize.millis(entry.totalMillis));
    }

    private void startRestore(VllmRestore restore, VllmSnapshot snapshot, Pod pod, String container, RestorePodStatus entry,
            Requeue pass) {
        if (!RestorePods.isRunning(pod, container)) {
            entry.message = "waiting for the placeholder container to run";
            pass.after(settings.waitInterval());
            return;
        }
        Optional<NodeAgent> agent = agents.forNode(entry.node);
        if (agent.isEmpty()) {
            podFailed(restore, entry, "NoAgentOnNode", "node '" + entry.node + "' runs no vllmsnap agent");
            return;
        }
        var containerStatus = RestorePods.containerStatus(pod, container).orElseThrow();
        try {
            NodeCapabilities capabilities = agent.get().capabilities();
            List<String> problems = Compatibility.mismatches(snapshot.getStatus().compatibility, capabilities,
                    VllmSnapshotReconciler.digestOf(containerStatus.getImageID()));
            if (!problems.isEmpty()) {
                podFailed(restore, entry, "IncompatibleNode", "node '" + entry.node + "' does not match VllmSnapshot '"
                        + snapshot.getMetadata().getName() + "': " + String.join("; ", problems));
                return;
            }
            entry.jobId = VllmRestoreReconciler.jobId(entry.uid);
            JobStatus job = agent.get().startRestore(request(restore, snapshot, pod, container, containerStatus.getContainerID()));
            entry.phase = RestorePodPhase.Restoring;
            applyJob(restore, entry, job, pass);
        } catch (AgentRejectedException e) {
            podFailed(restore, entry, e.reason(), "the agent on node '" + entry.node + "' refused the restore: " + e.getMessage());
        } catch (AgentUnavailableException e) {
            agentUnreachable(restore, entry, e, pass);
        }
    }

    private RestoreJobRequest request(VllmRestore restore, VllmSnapshot snapshot, Pod pod, String container, String containerId) {
        return new RestoreJobRequest(VllmRestoreReconciler.jobId(pod.getMetadata().getUid()), restore.getMetadata().getNamespace(),
                snapshot.getStatus().imageId, pod.getMetadata().getUid(), container, containerId, snapshot.getSpec().vllmPort,
                Compatibility.toIdentity(snapshot.getStatus().compatibility));
    }

    private void followRestore(VllmRestore restore, VllmSnapshot snapshot, Pod pod, String container, RestorePodStatus entry,
            Requeue pass) {
        Optional<NodeAgent> agent = agents.forNode(entry.node);
        if (agent.isEmpty()) {
            podFailed(restore, entry, "NoAgentOnNode", "the vllmsnap agent of node '" + entry.node + "' is gone");
            return;
        }
        try {
            JobStatus job = agent.get().job(entry.jobId);
            if (job == null) {
                String containerId = RestorePods.containerStatus(pod, container).map(cs -> cs.getContainerID()).orElse(null);
                job = agent.get().startRestore(request(restore, snapshot, pod, container, containerId));
            }
            applyJob(restore, entry, job, pass);
        } catch (AgentRejectedException e) {
            podFailed(restore, entry, e.reason(), "the agent on node '" + entry.node + "' refused the restore: " + e.getMessage());
        } catch (AgentUnavailableException e) {
            agentUnreachable(restore, entry, e, pass);
        }
    }

    private void applyJob(VllmRestore restore, RestorePodStatus entry, JobStatus job, Requeue pass) {
        if (job.phaseMillis() != null) {
            entry.phaseMillis = new LinkedHashMap<>(job.phaseMillis());
        }
        if (job.state() == JobState.SUCCEEDED) {
            VllmRestoreStatus status = restore.getStatus();
            entry.phase = RestorePodPhase.Ready;
            entry.totalMillis = job.totalMillis();
            entry.readyAt = Statuses.now();
            entry.reason = null;
            entry.message = null;
            status.lastRestoreMillis = job.totalMillis();
            status.lastRestoreLatency = Humanize.millis(job.totalMillis());
            status.consecutiveFailures = 0;
            status.nextAttemptAfter = null;
            metrics.restoreFinished(true, RestorePath.Restore.name(), job.phaseMillis(), job.totalMillis());
            events.normal(restore, "Restored", "pod " + entry.name + " restored on node '" + entry.node + "' in "
                    + status.lastRestoreLatency + " (request to first token)");
            return;
        }
        if (job.state() == JobState.FAILED) {
            metrics.restoreFinished(false, RestorePath.Restore.name(), job.phaseMillis(), job.totalMillis());
            String reason = job.errorReason() == null || job.errorReason().isBlank() ? "RestoreJobFailed" : job.errorReason();
            podFailed(restore, entry, reason, "restore into pod " + entry.name + " failed"
                    + (job.phase() == null ? "" : " in phase " + job.phase()) + ": " + job.errorMessage());
            return;
        }
        entry.reason = null;
        entry.message = job.state() == JobState.QUEUED ? "queued at position " + job.queuePosition()
                : "restoring" + (job.phase() == null ? "" : ", phase " + job.phase());
        pass.after(settings.jobPollInterval());
    }

    private void podFailed(VllmRestore restore, RestorePodStatus entry, String reason, String message) {
        entry.phase = RestorePodPhase.Failed;
        entry.reason = reason;
        entry.message = message;
        events.warning(restore, reason, message);
    }

    /** The pod keeps its place: the job may run on regardless, and the agent is asked again after a while. */
    private void agentUnreachable(VllmRestore restore, RestorePodStatus entry, AgentUnavailableException e, Requeue pass) {
        String message = "the agent on node '" + entry.node + "' could not be reached: " + e.getMessage();
        if (!"AgentUnreachable".equals(entry.reason)) {
            events.warning(restore, "AgentUnreachable", "pod " + entry.name + ": " + message);
        }
        entry.reason = "AgentUnreachable";
        entry.message = message;
        pass.after(settings.agentBackoffBase());
    }
}
