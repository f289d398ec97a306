package io.vllmsnap.agent.store;

import io.vllmsnap.agent.Ids;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;

/** Job records on node storage, one JSON file per job, replaced atomically on every change. */
public class JobStore {

    private static final String SUFFIX = ".json";
    private final Path dir;

    public JobStore(Path dir) {
        this.dir = dir;
    }

    public synchronized void save(StoredJob job) {
        try {
            if (!Files.isDirectory(dir)) {
                Files.createDirectories(dir);
                Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx------"));
            }
            Json.writeAtomically(file(job.status().jobId()), job);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot record job " + job.status().jobId(), e);
        }
    }

    public synchronized Optional<StoredJob> find(String jobId) {
        Path file = file(jobId);
        if (!Files.isRegularFile(file)) {
            return Optional.empty();
        }
        try {
            return Optional.of(Json.read(file, StoredJob.class));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read job record " + file, e);
        }
    }

    /** Every readable record; a record that cannot be parsed is skipped rather than stopping the agent. */
    public synchronized List<StoredJob> all() {
        if (!Files.isDirectory(dir)) {
            return List.of();
        }
        List<StoredJob> jobs = new ArrayList<>();
        try (Stream<Path> files = Files.list(dir)) {
            for (Path f : files.filter(p -> p.getFileName().toString().endsWith(SUFFIX)
                    && !p.getFileName().toString().startsWith(".")).toList()) {
                try {
                    jobs.add(Json.read(f, StoredJob.class));
                } catch (IOException e) {
                    org.jboss.logging.Logger.getLogger(JobStore.class).warnf("skipping unreadable job record %s: %s", f, e.getMessage());
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return jobs;
    }

    private Path file(String jobId) {
        return dir.resolve(Ids.dnsLabel("jobId", jobId) + SUFFIX);
    }
}
