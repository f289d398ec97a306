package io.vllmsnap.operator;

import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodTemplateSpec;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.javaoperatorsdk.operator.api.config.informer.InformerEventSourceConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.Context;
import io.javaoperatorsdk.operator.api.reconciler.ErrorStatusUpdateControl;
import io.javaoperatorsdk.operator.api.reconciler.MaxReconciliationInterval;
import io.javaoperatorsdk.operator.api.reconciler.ControllerConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.EventSourceContext;
import io.javaoperatorsdk.operator.api.reconciler.Reconciler;
import io.javaoperatorsdk.operator.api.reconciler.UpdateControl;
import io.javaoperatorsdk.operator.processing.event.ResourceID;
import io.javaoperatorsdk.operator.processing.event.source.EventSource;
import io.javaoperatorsdk.operator.processing.event.source.informer.InformerEventSource;
import io.vllmsnap.api.ApiConstants;
import io.vllmsnap.api.Fallback;
import io.vllmsnap.api.RestorePath;
import io.vllmsnap.api.RestorePhase;
import io.vllmsnap.api.RestorePodPhase;
import io.vllmsnap.api.RestorePodStatus;
import io.vllmsnap.api.SnapshotPhase;
import io.vllmsnap.api.VllmRestore;
import io.vllmsnap.api.VllmRestoreStatus;
import io.vllmsnap.api.VllmSnapshot;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

/**
 * Keeps {@code spec.replicas} pods restored from a snapshot: creates placeholder pods from the recorded template, asks
 * the agent of each pod's node to restore into it once it runs, replaces failed restores (with backoff, or with a cold
 * start under {@code fallback: ColdStart}), scales up and down, and reports per-pod phases and latencies.
 */
// Reconsider every resource at least every 5 minutes, whatever happened to events in between.
@ControllerConfiguration(name = VllmRestoreReconciler.NAME, maxReconciliationInterval = @MaxReconciliationInterval(interval = 5,
        timeUnit = TimeUnit.MINUTES))
public class VllmRestoreReconciler implements Reconciler<VllmRestore> {
    public static final String NAME = "vllmrestore";

    private final KubernetesClient client;
    private final Statuses statuses;
    private final EventRecorder events;
    private final OperatorSettings settings;
    private final PodTemplates templates;
    private final RestorePods pods;
    private final PodRestoreTracker tracker;

    public VllmRestoreReconciler(KubernetesClient client, Statuses statuses, EventRecorder events,
            OperatorSettings settings, PodTemplates templates, RestorePods pods, PodRestoreTracker tracker) {
        this.client = client;
        this.statuses = statuses;
        this.events = events;
        this.settings = settings;
        this.templates = templates;
        this.pods = pods;
        this.tracker = tracker;
    }

    /** Agent job ID of the restore into one pod: derived from the pod's UID, so a repeated request finds the same job. */
    public static String jobId(String podUid) {
        return "restore-" + podUid;
    }

    @Override
    public List<EventSource<?, VllmRestore>> prepareEventSources(EventSourceContext<VllmRestore> context) {
        var podEvents = new InformerEventSource<Pod, VllmRestore>(
                InformerEventSourceConfiguration.from(Pod.class, VllmRestore.class)
                        .withName("restored-pods")
                        .withLabelSelector(ApiConstants.RESTORE_LABEL)
                        .withSecondaryToPrimaryMapper(pod -> Set.of(new ResourceID(
                                pod.getMetadata().getLabels().get(ApiConstants.RESTORE_LABEL), pod.getMetadata().getNamespace())))
                        .build(),
                context);
        // A restore waiting for its snapshot moves on as soon as the snapshot changes.
        var snapshotEvents = new InformerEventSource<VllmSnapshot, VllmRestore>(
                InformerEventSourceConfiguration.from(VllmSnapshot.class, VllmRestore.class)
                        .withName("snapshots")
                        .withSecondaryToPrimaryMapper(snapshot -> context.getPrimaryCache()
                                .list(snapshot.getMetadata().getNamespace(),
                                        r -> r.getSpec() != null && snapshot.getMetadata().getName().equals(r.getSpec().snapshotName))
                                .map(ResourceID::fromResource)
                                .collect(Collectors.toSet()))
                        .build(),
                context);
        return List.of(podEvents, snapshotEvents);
    }

    /** An unexpected error (API server refusing a pod, say) is told to the user as an Event; the SDK retries with backoff. */
    @Override
    public ErrorStatusUpdateControl<VllmRestore> updateErrorStatus(VllmRestore restore, Context<VllmRestore> context, Exception e) {
        events.warning(restore, "ReconcileError", "reconciliation failed, retrying: " + e.getMessage());
        return ErrorStatusUpdateControl.defaultErrorProcessing();
    }

    @Override
    public UpdateControl<VllmRestore> reconcile(VllmRestore cached, Context<VllmRestore> context) {
        VllmRestore restore = statuses.latest(cached);
        String before = statuses.json(restore.getStatus());
        if (restore.getStatus() == null) {
            restore.setStatus(new VllmRestoreStatus());
        }
        VllmRestoreStatus status = restore.getStatus();
        RestorePhase previous = status.phase;
        status.selector = RestorePods.selector(restore);
        Requeue pass = new Requeue();
        step(restore, pass);
        status.observedGeneration = restore.getMetadata().getGeneration();
        if (previous != status.phase && status.phase != null) {
            announcePhase(restore);
        }
        UpdateControl<VllmRestore> control = statuses.json(status).equals(before)
                ? UpdateControl.noUpdate()
                : UpdateControl.patchStatus(restore);
        if (pass.delay() != null) {
            control.rescheduleAfter(pass.delay().toMillis());
        }
        return control;
    }

    private void step(VllmRestore restore, Requeue pass) {
        VllmRestoreStatus status = restore.getStatus();
        var spec = restore.getSpec();
        String namespace = restore.getMetadata().getNamespace();
        if (restore.getMetadata().getName().length() > RestorePods.MAX_RESTORE_NAME) {
            blocked(restore, RestorePhase.Failed, "InvalidName", "the name must have at most " + RestorePods.MAX_RESTORE_NAME
                    + " characters so that its pods' names are DNS labels");
            return;
        }
        if (spec == null || spec.snapshotName == null || spec.snapshotName.isBlank()) {
            blocked(restore, RestorePhase.Failed, "InvalidSpec", "spec.snapshotName is required");
            return;
        }
        if (spec.snapshotName.contains("/")) {
            blocked(restore, RestorePhase.Failed, "SnapshotInOtherNamespace", "spec.snapshotName '" + spec.snapshotName
                    + "' names another namespace; a restore may only use snapshots of its own namespace ('" + namespace + "')");
            return;
        }
        if (!spec.snapshotName.matches(ApiConstants.DNS_LABEL) || spec.replicas < 0) {
            blocked(restore, RestorePhase.Failed, "InvalidSpec", "spec.snapshotName must be a DNS label and spec.replicas >= 0");
            return;
        }
        VllmSnapshot snapshot = client.resources(VllmSnapshot.class).inNamespace(namespace).withName(spec.snapshotName).get();
        if (snapshot == null) {
            blocked(restore, RestorePhase.Pending, "SnapshotNotFound", "VllmSnapshot '" + spec.snapshotName
                    + "' not found in namespace '" + namespace + "' (a restore may only use snapshots of its own namespace)");
            pass.after(settings.waitInterval());
            return;
        }
        SnapshotPhase snapshotPhase = snapshot.getStatus() == null ? null : snapshot.getStatus().phase;
        String snapshotMessage = snapshot.getStatus() == null ? "" : Conditions.find(snapshot.getStatus().conditions,
                Conditions.READY).map(c -> c.getReason() + ": " + c.getMessage()).orElse("");
        if (snapshot.getMetadata().getDeletionTimestamp() != null) {
            if (snapshot.getStatus() != null && Conditions.isTrue(snapshot.getStatus().conditions, Conditions.READY)) {
                finishWithoutNewPods(restore, snapshot, pass);
                return;
            }
            blocked(restore, RestorePhase.Failed, "SnapshotDeleting", "VllmSnapshot '" + spec.snapshotName + "' is being deleted");
            return;
        }
        if (snapshotPhase == SnapshotPhase.Failed) {
            blocked(restore, RestorePhase.Failed, "SnapshotFailed", "VllmSnapshot '" + spec.snapshotName + "' failed ("
                    + snapshotMessage + "); nothing to restore from");
            return;
        }
        if (snapshotPhase != SnapshotPhase.Ready) {
            blocked(restore, RestorePhase.Pending, "SnapshotNotReady", "waiting for VllmSnapshot '" + spec.snapshotName
                    + "' to be Ready (now " + (snapshotPhase == null ? "new" : snapshotPhase) + ")");
            pass.after(settings.waitInterval());
            return;
        }
        Optional<PodTemplateSpec> template = templates.load(namespace, snapshot.getStatus().podTemplateConfigMap);
        if (template.isEmpty()) {
            blocked(restore, RestorePhase.Failed, "PodTemplateMissing", "the pod template ConfigMap '"
                    + snapshot.getStatus().podTemplateConfigMap + "' of VllmSnapshot '" + spec.snapshotName + "' is missing");
            pass.after(settings.waitInterval());
            return;
        }
        setCondition(restore, Conditions.SNAPSHOT_READY, true, "SnapshotReady", "VllmSnapshot '" + spec.snapshotName
                + "' is Ready (image " + snapshot.getStatus().imageId + ")");
        status.snapshotImageId = snapshot.getStatus().imageId;

        List<RestorePodStatus> live = observePods(restore, snapshot, pass);
        replaceFailed(restore, snapshot, template.get(), live, pass);
        scale(restore, snapshot, template.get(), live, pass);
        live.sort(Comparator.comparing((RestorePodStatus p) -> p.createdAt == null ? "" : p.createdAt)
                .thenComparing(p -> p.name));
        status.pods = live;
        aggregate(restore);
    }

    /**
     * The snapshot is being deleted, but its deletion waits for the restores that use it, so its image stays: the pods
     * already made are restored and followed to the end (never left as empty placeholders); no new pod is made from it.
     */
    private void finishWithoutNewPods(VllmRestore restore, VllmSnapshot snapshot, Requeue pass) {
        VllmRestoreStatus status = restore.getStatus();
        List<RestorePodStatus> live = observePods(restore, snapshot, pass);
        live.sort(Comparator.comparing((RestorePodStatus p) -> p.createdAt == null ? "" : p.createdAt)
                .thenComparing(p -> p.name));
        status.pods = live;
        aggregate(restore);
        boolean inFlight = live.stream().anyMatch(p -> p.phase == RestorePodPhase.Pending || p.phase == RestorePodPhase.Restoring);
        if (status.phase != RestorePhase.Ready && !inFlight) {
            status.phase = RestorePhase.Failed;
        }
        String message = "VllmSnapshot '" + snapshot.getMetadata().getName() + "' is being deleted: pods already made are "
                + "restored, no new ones are made; it goes once this restore is deleted";
        if (Conditions.set(status.conditions, Conditions.SNAPSHOT_READY, false, "SnapshotDeleting", message,
                restore.getMetadata().getGeneration())) {
            events.warning(restore, "SnapshotDeleting", message);
        }
    }

    // ---- per pod

    private List<RestorePodStatus> observePods(VllmRestore restore, VllmSnapshot snapshot, Requeue pass) {
        Map<String, RestorePodStatus> known = new LinkedHashMap<>();
        for (RestorePodStatus p : restore.getStatus().pods) {
            known.put(p.name, p);
        }
        List<RestorePodStatus> live = new ArrayList<>();
        for (Pod pod : pods.list(restore)) {
            RestorePodStatus entry = known.get(pod.getMetadata().getName());
            if (entry == null || !pod.getMetadata().getUid().equals(entry.uid)) {
                entry = fromPod(pod); // status lost (or never written): the pod's labels say what it is
            }
            entry.node = pod.getSpec().getNodeName();
            tracker.track(restore, snapshot, pod, entry, pass);
            live.add(entry);
        }
        return live;
    }

    private static RestorePodStatus fromPod(Pod pod) {
        RestorePodStatus entry = new RestorePodStatus();
        entry.name = pod.getMetadata().getName();
        entry.uid = pod.getMetadata().getUid();
        String path = pod.getMetadata().getLabels().get(ApiConstants.PATH_LABEL);
        entry.path = RestorePath.ColdStart.name().equals(path) ? RestorePath.ColdStart : RestorePath.Restore;
        entry.phase = entry.path == RestorePath.ColdStart ? RestorePodPhase.Starting : RestorePodPhase.Pending;
        entry.createdAt = Optional.ofNullable(pod.getMetadata().getCreationTimestamp()).orElseGet(Statuses::now);
        // A Restore pod starts over at Pending: if a job already runs for it (operator restarted mid-restore), asking
        // the agent again with the job ID derived from the pod UID finds that job instead of starting another.
        return entry;
    }

    // ---- replacement and scaling

    private void replaceFailed(VllmRestore restore, VllmSnapshot snapshot, PodTemplateSpec template,
            List<RestorePodStatus> live, Requeue pass) {
        VllmRestoreStatus status = restore.getStatus();
        var spec = restore.getSpec();
        List<RestorePodStatus> failed = live.stream().filter(p -> p.phase == RestorePodPhase.Failed).toList();
        for (RestorePodStatus entry : failed) {
            // A restore that failed half-way is never retried in the same pod: a new pod is cleaner.
            pods.delete(restore, entry.name);
            live.remove(entry);
            status.consecutiveFailures = (status.consecutiveFailures == null ? 0 : status.consecutiveFailures) + 1;
            if (spec.fallback == Fallback.ColdStart && entry.path == RestorePath.Restore
                    && live.size() < spec.replicas) {
                RestorePodStatus cold = created(pods.create(restore, snapshot, template, RestorePath.ColdStart),
                        RestorePath.ColdStart);
                cold.reason = "FallbackAfterFailedRestore";
                cold.message = "replaces " + entry.name + " whose restore failed: " + entry.reason;
                live.add(cold);
                events.warning(restore, "ColdStartFallback", "restore into " + entry.name + " failed (" + entry.reason
                        + "); started " + cold.name + " from the original command instead");
                pass.after(settings.waitInterval());
            } else {
                Duration delay = Backoff.after(status.consecutiveFailures, settings.restoreBackoffBase(),
                        settings.restoreBackoffMax());
                status.nextAttemptAfter = Instant.now().plus(delay).truncatedTo(ChronoUnit.MILLIS).toString();
            }
            if (status.consecutiveFailures >= spec.failureThreshold) {
                setCondition(restore, Conditions.DEGRADED, true, "RestoresFailing", status.consecutiveFailures
                        + " restores failed in a row (threshold " + spec.failureThreshold + "); last: " + entry.reason + ": "
                        + entry.message);
            }
        }
    }

    private void scale(VllmRestore restore, VllmSnapshot snapshot, PodTemplateSpec template, List<RestorePodStatus> live,
            Requeue pass) {
        VllmRestoreStatus status = restore.getStatus();
        int wanted = restore.getSpec().replicas;
        if (live.size() > wanted) {
            // Keep serving pods: drop the ones not ready yet first, newest first.
            List<RestorePodStatus> victims = live.stream()
                    .sorted(Comparator.comparing((RestorePodStatus p) -> p.phase == RestorePodPhase.Ready)
                            .thenComparing(p -> p.createdAt == null ? "" : p.createdAt, Comparator.reverseOrder()))
                    .limit(live.size() - wanted)
                    .toList();
            victims.forEach(p -> pods.delete(restore, p.name));
            live.removeAll(victims);
            events.normal(restore, "ScaledDown", "replicas " + (live.size() + victims.size()) + " -> " + wanted + ": deleted "
                    + victims.stream().map(p -> p.name + " (" + p.phase + ")").collect(Collectors.joining(", ")));
            return;
        }
        if (live.size() == wanted) {
            return;
        }
        if (status.nextAttemptAfter != null) {
            Instant next = Instant.parse(status.nextAttemptAfter);
            if (Instant.now().isBefore(next)) {
                pass.after(Duration.between(Instant.now(), next).plusMillis(10));
                return;
            }
        }
        List<String> names = new ArrayList<>();
        while (live.size() < wanted) {
            RestorePodStatus entry = created(pods.create(restore, snapshot, template, RestorePath.Restore), RestorePath.Restore);
            live.add(entry);
            names.add(entry.name);
        }
        events.normal(restore, "PodsCreated", "created placeholder pods " + String.join(", ", names) + " to reach " + wanted
                + " replicas");
        pass.after(settings.waitInterval());
    }

    private static RestorePodStatus created(Pod pod, RestorePath path) {
        RestorePodStatus entry = new RestorePodStatus();
        entry.name = pod.getMetadata().getName();
        entry.uid = pod.getMetadata().getUid();
        entry.path = path;
        entry.phase = path == RestorePath.ColdStart ? RestorePodPhase.Starting : RestorePodPhase.Pending;
        entry.createdAt = Optional.ofNullable(pod.getMetadata().getCreationTimestamp()).orElseGet(Statuses::now);
        return entry;
    }

    // ---- aggregate status

    private void aggregate(VllmRestore restore) {
        VllmRestoreStatus status = restore.getStatus();
        var spec = restore.getSpec();
        int ready = (int) status.pods.stream().filter(p -> p.phase == RestorePodPhase.Ready).count();
        status.replicas = status.pods.size();
        status.readyReplicas = ready;
        int failures = status.consecutiveFailures == null ? 0 : status.consecutiveFailures;
        boolean degraded = failures >= spec.failureThreshold;
        if (!degraded) {
            setCondition(restore, Conditions.DEGRADED, false, "RestoresSucceeding", failures == 0
                    ? "no failed restore since the last success"
                    : failures + " restores failed in a row (threshold " + spec.failureThreshold + ")");
        }
        boolean allReady = ready == spec.replicas && status.pods.size() == spec.replicas;
        setCondition(restore, Conditions.READY, allReady, allReady ? "AllReplicasReady" : "ReplicasNotReady",
                ready + "/" + spec.replicas + " replicas ready");
        // Capacity that arrived (cold starts included) shows as Ready; the Degraded condition still tells of failing restores.
        status.phase = allReady ? RestorePhase.Ready : degraded ? RestorePhase.Degraded : RestorePhase.Progressing;
    }

    private void blocked(VllmRestore restore, RestorePhase phase, String reason, String message) {
        VllmRestoreStatus status = restore.getStatus();
        status.phase = phase;
        status.replicas = (int) status.pods.stream().filter(p -> p.phase != RestorePodPhase.Failed).count();
        status.readyReplicas = (int) status.pods.stream().filter(p -> p.phase == RestorePodPhase.Ready).count();
        if (Conditions.set(status.conditions, Conditions.SNAPSHOT_READY, false, reason, message,
                restore.getMetadata().getGeneration())) {
            if (phase == RestorePhase.Failed) {
                events.warning(restore, reason, message);
            } else {
                events.normal(restore, reason, message);
            }
        }
        Conditions.set(status.conditions, Conditions.READY, false, reason, message, restore.getMetadata().getGeneration());
    }

    private void setCondition(VllmRestore restore, String type, boolean value, String reason, String message) {
        boolean transition = Conditions.set(restore.getStatus().conditions, type, value, reason, message,
                restore.getMetadata().getGeneration());
        if (transition && type.equals(Conditions.DEGRADED) && value) {
            events.warning(restore, reason, message);
        }
    }

    private void announcePhase(VllmRestore restore) {
        VllmRestoreStatus status = restore.getStatus();
        String message = "phase " + status.phase + ": " + status.readyReplicas + "/" + restore.getSpec().replicas + " ready";
        if (status.phase == RestorePhase.Ready) {
            events.normal(restore, "Ready", message);
        } else if (status.phase == RestorePhase.Progressing) {
            events.normal(restore, "Progressing", message);
        }
    }
}
