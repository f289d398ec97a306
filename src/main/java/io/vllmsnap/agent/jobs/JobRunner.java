package io.vllmsnap.agent.jobs;

import io.vllmsnap.agent.Ids;
import io.vllmsnap.agent.api.AgentRejectedException;
import io.vllmsnap.agent.api.CompatibilityIdentity;
import io.vllmsnap.agent.api.ImageInfo;
import io.vllmsnap.agent.api.JobKind;
import io.vllmsnap.agent.api.JobState;
import io.vllmsnap.agent.api.JobStatus;
import io.vllmsnap.agent.api.RestoreJobRequest;
import io.vllmsnap.agent.api.SnapshotJobRequest;
import io.vllmsnap.agent.discovery.ContainerDiscovery;
import io.vllmsnap.agent.discovery.ContainerNotFoundException;
import io.vllmsnap.agent.discovery.DiscoveredContainer;
import io.vllmsnap.agent.store.ImageStore;
import io.vllmsnap.agent.store.JobStore;
import io.vllmsnap.agent.store.StoredJob;
import org.jboss.logging.Logger;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

/**
 * Accepts snapshot and restore jobs, runs at most {@code maxConcurrent} at once, and records every change on node
 * storage before acting on it, so an agent restarted at any point knows what each job was doing.
 */
public class JobRunner implements AutoCloseable {

    /** Reason of a job that was running when the agent stopped. */
    public static final String AGENT_RESTARTED = "AgentRestarted";
    private static final Logger LOG = Logger.getLogger(JobRunner.class);

    private final JobStore jobs;
    private final ImageStore images;
    private final ContainerDiscovery discovery;
    private final ContainerCheckpointer checkpointer;
    private final AgentMetrics metrics;
    private final Path workRoot;
    private final ExecutorService executor;
    private final Clock clock;
    private final LinkedHashSet<String> waiting = new LinkedHashSet<>();
    private final Object lock = new Object();

    public JobRunner(JobStore jobs, ImageStore images, ContainerDiscovery discovery, ContainerCheckpointer checkpointer,
            AgentMetrics metrics, Path workRoot, int maxConcurrent, Clock clock) {
        this.jobs = jobs;
        this.images = images;
        this.discovery = discovery;
        this.checkpointer = checkpointer;
        this.metrics = metrics;
        this.workRoot = workRoot;
        this.clock = clock;
        this.executor = Executors.newFixedThreadPool(Math.max(1, maxConcurrent), Thread.ofPlatform().name("agent-job-", 0).factory());
        metrics.queueDepth(this::queueDepth);
    }

    /**
     * Called once at start: a job recorded as running was cut off by the agent's end; it is failed with
     * {@link #AGENT_RESTARTED} and its partial files removed. Queued jobs never started and are queued again.
     */
    public void recover() throws IOException {
        images.ensureRoot();
        for (StoredJob job : jobs.all()) {
            JobStatus s = job.status();
            if (s.state() == JobState.RUNNING) {
                cleanUpAfter(job);
                finish(job, JobState.FAILED, AGENT_RESTARTED,
                        "the agent stopped while this job was in phase " + s.phase() + "; its partial files were removed");
                LOG.warnf("job %s was running when the agent stopped: marked failed", s.jobId());
            } else if (s.state() == JobState.QUEUED) {
                enqueue(job);
            }
        }
    }

    public JobStatus submitSnapshot(SnapshotJobRequest request) {
        validate(request);
        synchronized (lock) {
            Optional<StoredJob> known = jobs.find(request.jobId());
            if (known.isPresent()) {
                return sameRequest(known.get(), request, known.get().snapshot());
            }
            // Two dumps of one container would freeze and unlock it under each other's feet: one at a time.
            for (StoredJob other : jobs.all()) {
                SnapshotJobRequest running = other.snapshot();
                if (running != null && !other.status().state().isTerminal()
                        && running.podUid().equals(request.podUid()) && running.containerName().equals(request.containerName())) {
                    throw new AgentRejectedException("SourceBusy", "container " + request.containerName() + " of pod "
                            + request.podUid() + " is being snapshotted by job " + other.status().jobId() + " ("
                            + other.status().state() + "); try again when it is done");
                }
            }
            if (images.exists(request.namespace(), request.imageId())) {
                throw new AgentRejectedException("ImageExists", "image " + request.imageId() + " already exists in namespace "
                        + request.namespace() + "; choose another image ID or delete it first");
            }
            StoredJob job = new StoredJob(clock.instant(), request, null, initial(request.jobId(), JobKind.SNAPSHOT, request.imageId()));
            jobs.save(job);
            enqueue(job);
            return status(request.jobId());
        }
    }

    public JobStatus submitRestore(RestoreJobRequest request) {
        validate(request);
        synchronized (lock) {
            Optional<StoredJob> known = jobs.find(request.jobId());
            if (known.isPresent()) {
                return sameRequest(known.get(), request, known.get().restore());
            }
            // Looked up in the request's own namespace only: images of other namespaces cannot be named.
            ImageInfo image = images.find(request.namespace(), request.imageId()).orElseThrow(() -> new AgentRejectedException(
                    "ImageNotFound", "no image " + request.imageId() + " in namespace " + request.namespace() + " on this node"));
            checkCompatible(request.expected(), image);
            StoredJob job = new StoredJob(clock.instant(), null, request, initial(request.jobId(), JobKind.RESTORE, request.imageId()));
            jobs.save(job);
            enqueue(job);
            return status(request.jobId());
        }
    }

    /**
     * Deletes a complete image unless a job still uses it (a running restore reads it; a running snapshot writes it).
     * An image that is not there is already deleted.
     */
    public void deleteImage(String namespace, String imageId) throws IOException {
        Ids.dnsLabel("namespace", namespace);
        Ids.dnsLabel("imageId", imageId);
        synchronized (lock) {
            for (StoredJob job : jobs.all()) {
                if (!job.status().state().isTerminal() && job.namespace().equals(namespace) && job.imageId().equals(imageId)) {
                    throw new AgentRejectedException("ImageInUse", "image " + imageId + " is used by job "
                            + job.status().jobId() + " (" + job.status().state() + "); delete it when the job is done");
                }
            }
            images.delete(namespace, imageId);
        }
    }

    /** @return the job's status with its current queue position, or {@code null} when unknown */
    public JobStatus status(String jobId) {
        Ids.dnsLabel("jobId", jobId);
        return jobs.find(jobId).map(j -> withQueuePosition(j.status())).orElse(null);
    }

    public int queueDepth() {
        synchronized (lock) {
            return waiting.size();
        }
    }

    private JobStatus sameRequest(StoredJob known, Object request, Object recorded) {
        if (!request.equals(recorded)) {
            throw new AgentRejectedException("JobIdInUse", "job " + known.status().jobId()
                    + " exists with a different request; a job ID names exactly one request");
        }
        return withQueuePosition(known.status());
    }

    private void checkCompatible(CompatibilityIdentity expected, ImageInfo image) {
        if (expected == null) {
            return;
        }
        CompatibilityIdentity node = checkpointer.nodeIdentity();
        mustMatch("GPU model", expected.gpuModel(), node.gpuModel());
        mustMatch("driver version", expected.driverVersion(), node.driverVersion());
        mustMatch("CRIU version", expected.criuVersion(), node.criuVersion());
        CompatibilityIdentity recorded = image.identity();
        // The agent cannot see a container image digest, so its images record none: the operator compares the
        // snapshot's digest with the placeholder container's before it asks for a restore.
        if (recorded != null && recorded.containerImageDigest() != null) {
            mustMatch("container image digest", expected.containerImageDigest(), recorded.containerImageDigest());
        }
    }

    private static void mustMatch(String what, String expected, String actual) {
        if (expected != null && !expected.isEmpty() && !Objects.equals(expected, actual)) {
            throw new AgentRejectedException("Incompatible",
                    what + " of this node is " + actual + " but the snapshot needs " + expected);
        }
    }

    private void enqueue(StoredJob job) {
        synchronized (lock) {
            waiting.add(job.status().jobId());
        }
        executor.submit(() -> run(job.status().jobId()));
    }

    private void run(String jobId) {
        synchronized (lock) {
            waiting.remove(jobId);
        }
        StoredJob job = jobs.find(jobId).orElseThrow();
        if (job.status().state() != JobState.QUEUED) {
            return;
        }
        job = job.withStatus(with(job.status(), JobState.RUNNING, "discover"));
        jobs.save(job);
        Path workDir = workRoot.resolve(jobId);
        Recorder recorder = new Recorder(job);
        // Time spent waiting for a job slot is part of the latency the caller sees: named, like every other part.
        recorder.finished("queued", Duration.between(job.acceptedAt(), clock.instant()).toMillis());
        try {
            Files.createDirectories(workDir);
            if (job.snapshot() != null) {
                runSnapshot(recorder, job.snapshot(), workDir);
            } else {
                runRestore(recorder, job.restore(), workDir);
            }
            finish(recorder.job, JobState.SUCCEEDED, null, null);
        } catch (Throwable failure) {
            LOG.errorf(failure, "job %s failed", jobId);
            cleanUpAfter(recorder.job);
            finish(recorder.job, JobState.FAILED, reasonOf(failure, recorder.job), messageOf(failure));
        } finally {
            try {
                checkpointer.cleanUp(workDir);
                ImageStore.deleteTree(workDir);
            } catch (IOException e) {
                LOG.warnf("cannot remove work directory %s: %s", workDir, e.getMessage());
            }
        }
    }

    private void runSnapshot(Recorder recorder, SnapshotJobRequest request, Path workDir) throws Exception {
        recorder.started("discover");
        DiscoveredContainer source = discovery.discover(request.podUid(), request.containerId());
        recorder.finishedSince("discover");
        Path partial = images.startPartial(request.namespace(), request.imageId());
        ContainerCheckpointer.SnapshotOutcome outcome = checkpointer.snapshot(source, request, partial, workDir, recorder);
        recorder.started("finalize");
        long size = ImageStore.sizeOf(partial);
        ImageInfo info = new ImageInfo(request.namespace(), request.imageId(), size, clock.instant(), outcome.identity());
        images.complete(request.namespace(), request.imageId(), info);
        metrics.bytesWritten(size);
        recorder.finishedSince("finalize");
        recorder.update(s -> new JobStatus(s.jobId(), s.kind(), s.state(), s.phase(), s.phaseMillis(), s.totalMillis(), 0,
                null, null, s.imageId(), size, outcome.identity(), outcome.gpus()));
    }

    private void runRestore(Recorder recorder, RestoreJobRequest request, Path workDir) throws Exception {
        recorder.started("discover");
        DiscoveredContainer placeholder = discovery.discover(request.podUid(), request.containerId());
        recorder.finishedSince("discover");
        ImageInfo image = images.find(request.namespace(), request.imageId()).orElseThrow(() -> new JobFailedException(
                "ImageNotFound", "image " + request.imageId() + " was deleted before the restore started"));
        ContainerCheckpointer.RestoreOutcome outcome = checkpointer.restore(placeholder, request,
                images.imageDir(request.namespace(), request.imageId()), workDir, recorder);
        metrics.bytesRead(image.sizeBytes());
        recorder.update(s -> new JobStatus(s.jobId(), s.kind(), s.state(), s.phase(), s.phaseMillis(), s.totalMillis(), 0,
                null, null, s.imageId(), image.sizeBytes(), image.identity(), outcome.gpus()));
    }

    /** Removes what a failed or interrupted job left: a snapshot's partial image. A restore only read. */
    private void cleanUpAfter(StoredJob job) {
        try {
            if (job.snapshot() != null) {
                images.discardPartial(job.namespace(), job.imageId());
            }
            checkpointer.cleanUp(workRoot.resolve(job.status().jobId()));
            ImageStore.deleteTree(workRoot.resolve(job.status().jobId()));
        } catch (IOException e) {
            LOG.warnf("cannot clean up after job %s: %s", job.status().jobId(), e.getMessage());
        }
    }

    private void finish(StoredJob job, JobState state, String reason, String message) {
        JobStatus s = job.status();
        long total = Duration.between(job.acceptedAt(), clock.instant()).toMillis();
        JobStatus done = new JobStatus(s.jobId(), s.kind(), state, s.phase(), s.phaseMillis(), total, 0, reason, message,
                s.imageId(), s.sizeBytes(), s.identity(), s.gpus());
        jobs.save(job.withStatus(done));
        metrics.job(s.kind().name().toLowerCase(), state == JobState.SUCCEEDED ? "success" : reason, total);
    }

    private static String reasonOf(Throwable failure, StoredJob job) {
        for (Throwable t = failure; t != null; t = t.getCause()) {
            if (t instanceof JobFailedException f) {
                return f.reason();
            }
            if (t instanceof ContainerNotFoundException) {
                return "ContainerNotFound";
            }
            if (t.getMessage() != null && t.getMessage().contains("No space left on device")) {
                return "NoSpaceLeft";
            }
        }
        return job.snapshot() != null ? "SnapshotFailed" : "RestoreFailed";
    }

    private static String messageOf(Throwable failure) {
        StringBuilder sb = new StringBuilder();
        for (Throwable t = failure; t != null && sb.length() < 4000; t = t.getCause()) {
            if (!sb.isEmpty()) {
                sb.append(": ");
            }
            sb.append(t.getMessage() != null ? t.getMessage() : t.getClass().getSimpleName());
        }
        return sb.toString();
    }

    private JobStatus withQueuePosition(JobStatus s) {
        if (s.state() != JobState.QUEUED) {
            return s;
        }
        int position = 1;
        synchronized (lock) {
            for (String id : waiting) {
                if (id.equals(s.jobId())) {
                    break;
                }
                position++;
            }
        }
        return new JobStatus(s.jobId(), s.kind(), s.state(), s.phase(), s.phaseMillis(), s.totalMillis(), position,
                s.errorReason(), s.errorMessage(), s.imageId(), s.sizeBytes(), s.identity(), s.gpus());
    }

    private static JobStatus initial(String jobId, JobKind kind, String imageId) {
        return new JobStatus(jobId, kind, JobState.QUEUED, "queued", Map.of(), 0, 0, null, null, imageId, 0, null, List.of());
    }

    private static JobStatus with(JobStatus s, JobState state, String phase) {
        return new JobStatus(s.jobId(), s.kind(), state, phase, s.phaseMillis(), s.totalMillis(), 0, s.errorReason(),
                s.errorMessage(), s.imageId(), s.sizeBytes(), s.identity(), s.gpus());
    }

    private static void validate(SnapshotJobRequest r) {
        requireRequest(r);
        validateTarget(r.jobId(), r.namespace(), r.imageId(), r.podUid(), r.containerName(), r.containerId(), r.vllmPort());
        if (r.sleepLevel() < 0 || r.sleepLevel() > 2) {
            throw new io.vllmsnap.agent.InvalidIdException("sleepLevel", Integer.toString(r.sleepLevel()), "must be 0, 1 or 2");
        }
    }

    private static void validate(RestoreJobRequest r) {
        requireRequest(r);
        validateTarget(r.jobId(), r.namespace(), r.imageId(), r.podUid(), r.containerName(), r.containerId(), r.vllmPort());
    }

    private static void requireRequest(Object r) {
        if (r == null) {
            throw new io.vllmsnap.agent.InvalidIdException("body", null, "must be a JSON job request");
        }
    }

    /** The IDs both kinds of job carry: each must have its shape before it names a file or a process. */
    private static void validateTarget(String jobId, String namespace, String imageId, String podUid, String containerName,
                                       String containerId, int vllmPort) {
        Ids.dnsLabel("jobId", jobId);
        Ids.dnsLabel("namespace", namespace);
        Ids.dnsLabel("imageId", imageId);
        Ids.uid("podUid", podUid);
        Ids.dnsLabel("containerName", containerName);
        Ids.containerId("containerId", containerId);
        if (vllmPort < 1 || vllmPort > 65535) {
            throw new io.vllmsnap.agent.InvalidIdException("vllmPort", Integer.toString(vllmPort), "must be a TCP port (1-65535)");
        }
    }

    @Override
    public void close() {
        executor.shutdownNow();
        try {
            executor.awaitTermination(10, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Records phases into the job's record as they happen, and into the phase timer. */
    private final class Recorder implements ContainerCheckpointer.PhaseListener {
        private volatile StoredJob job;
        private final Map<String, Instant> startedAt = new LinkedHashMap<>();

        Recorder(StoredJob job) {
            this.job = job;
        }

        @Override
        public synchronized void started(String phase) {
            startedAt.put(phase, clock.instant());
            update(s -> with(s, s.state(), phase));
        }

        @Override
        public synchronized void finished(String phase, long millis) {
            Map<String, Long> phases = new LinkedHashMap<>(job.status().phaseMillis());
            phases.put(phase, millis);
            update(s -> new JobStatus(s.jobId(), s.kind(), s.state(), s.phase(), phases, s.totalMillis(), 0,
                    s.errorReason(), s.errorMessage(), s.imageId(), s.sizeBytes(), s.identity(), s.gpus()));
            metrics.phase(job.status().kind().name().toLowerCase(), phase, millis);
        }

        void finishedSince(String phase) {
            Instant start = startedAt.getOrDefault(phase, clock.instant());
            finished(phase, Duration.between(start, clock.instant()).toMillis());
        }

        synchronized void update(java.util.function.UnaryOperator<JobStatus> change) {
            job = job.withStatus(change.apply(job.status()));
            jobs.save(job);
        }
    }
}
