package io.vllmsnap.agent.store;

import io.vllmsnap.agent.Ids;
import org.jboss.logging.Logger;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * Job records on node storage, one JSON file per job, replaced atomically on every change. The files are read once,
 * at first use, into an in-memory index that every lookup uses afterwards (the files are the record of truth across
 * restarts, the index the one callers read). Finished jobs are pruned once they have not changed for
 * {@code retention}: without that a busy node's records, and every scan of them, grow without end.
 */
public class JobStore {

    /** How long a finished job's record is kept when nothing else is configured. */
    public static final Duration DEFAULT_RETENTION = Duration.ofDays(7);
    private static final Logger LOG = Logger.getLogger(JobStore.class);
    private static final String SUFFIX = ".json";
    /** Pruning is a scan of the index: done on a write at most this often. */
    private static final Duration PRUNE_INTERVAL = Duration.ofMinutes(10);

    private final Path dir;
    private final Duration retention;
    private final Clock clock;
    private final Map<String, Entry> index = new HashMap<>();
    /** Orders writes of record files; the index has the store's own monitor. */
    private final Object writeLock = new Object();
    private boolean loaded;
    private Instant lastPrune = Instant.MIN;

    public JobStore(Path dir) {
        this(dir, DEFAULT_RETENTION, Clock.systemUTC());
    }

    public JobStore(Path dir, Duration retention, Clock clock) {
        this.dir = dir;
        this.retention = retention;
        this.clock = clock;
    }

    /**
     * Writes the record (fsynced) and then indexes it. The disk write holds only the write lock, so lookups are not
     * kept waiting behind another job's fsync.
     */
    public void save(StoredJob job) {
        String jobId = job.status().jobId();
        Path file = file(jobId);
        synchronized (writeLock) {
            try {
                if (!Files.isDirectory(dir)) {
                    Files.createDirectories(dir);
                    Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx------"));
                }
                Json.writeAtomically(file, job);
            } catch (IOException e) {
                throw new UncheckedIOException("cannot record job " + jobId, e);
            }
            synchronized (this) {
                load();
                Instant now = clock.instant();
                index.put(jobId, new Entry(job, now));
                if (Duration.between(lastPrune, now).compareTo(PRUNE_INTERVAL) >= 0) {
                    prune();
                }
            }
        }
    }

    public synchronized Optional<StoredJob> find(String jobId) {
        Ids.dnsLabel("jobId", jobId);
        load();
        Entry entry = index.get(jobId);
        return entry == null ? Optional.empty() : Optional.of(entry.job);
    }

    /** Every record (a copy: callers may scan it while jobs change). */
    public synchronized List<StoredJob> all() {
        load();
        List<StoredJob> jobs = new ArrayList<>(index.size());
        index.values().forEach(e -> jobs.add(e.job));
        return jobs;
    }

    /** Jobs not finished yet (queued or running): what conflict checks need, without the finished history. */
    public synchronized List<StoredJob> active() {
        load();
        return index.values().stream().map(Entry::job).filter(j -> !j.status().state().isTerminal()).toList();
    }

    /**
     * Removes the records of finished jobs that have not changed for the retention period, file and index entry.
     * Queued and running jobs are never pruned, however old.
     *
     * @return how many records were removed
     */
    public synchronized int prune() {
        load();
        Instant now = clock.instant();
        lastPrune = now;
        Instant cutoff = now.minus(retention);
        int removed = 0;
        for (var it = index.entrySet().iterator(); it.hasNext(); ) {
            var e = it.next();
            if (e.getValue().job.status().state().isTerminal() && e.getValue().changedAt.isBefore(cutoff)) {
                try {
                    Files.deleteIfExists(file(e.getKey()));
                    it.remove();
                    removed++;
                } catch (IOException ex) {
                    LOG.warnf("cannot remove the record of job %s: %s", e.getKey(), ex.getMessage());
                }
            }
        }
        if (removed > 0) {
            LOG.infof("pruned %d job records unchanged for %s", removed, retention);
        }
        return removed;
    }

    /**
     * Reads every record once, then prunes; a record that cannot be parsed is skipped rather than stopping the agent.
     */
    private void load() {
        if (loaded) {
            return;
        }
        loaded = true;
        if (!Files.isDirectory(dir)) {
            return;
        }
        try (Stream<Path> files = Files.list(dir)) {
            for (Path f : files.filter(p -> p.getFileName().toString().endsWith(SUFFIX)
                    && !p.getFileName().toString().startsWith(".")).toList()) {
                try {
                    StoredJob job = Json.read(f, StoredJob.class);
                    index.put(job.status().jobId(), new Entry(job, Files.getLastModifiedTime(f).toInstant()));
                } catch (NoSuchFileException e) {
                    // removed meanwhile: nothing to index
                } catch (IOException | RuntimeException e) {
                    LOG.warnf("skipping unreadable job record %s: %s", f, e.getMessage());
                }
            }
        } catch (IOException e) {
            loaded = false;
            throw new UncheckedIOException("cannot list job records in " + dir, e);
        }
        prune();
    }

    private Path file(String jobId) {
        return dir.resolve(Ids.dnsLabel("jobId", jobId) + SUFFIX);
    }

    /** A record and when it last changed (its file's modification time when read from disk). */
    private record Entry(StoredJob job, Instant changedAt) {
    }
}
