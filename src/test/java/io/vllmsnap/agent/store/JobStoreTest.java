package io.vllmsnap.agent.store;

import io.vllmsnap.agent.InvalidIdException;
import io.vllmsnap.agent.api.JobState;
import io.vllmsnap.agent.api.JobStatus;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Job records: kept on disk, read through an index, finished ones pruned by age and never the unfinished ones. */
class JobStoreTest {

    @TempDir
    Path dir;
    final MutableClock clock = new MutableClock();

    /** A record built from JSON, so fields the status may gain later take their defaults. */
    static StoredJob job(String id, JobState state) {
        try {
            JobStatus status = Json.MAPPER.readValue("{\"jobId\":\"" + id + "\",\"kind\":\"SNAPSHOT\",\"state\":\"" + state
                    + "\",\"phase\":\"queued\",\"imageId\":\"img-" + id + "\"}", JobStatus.class);
            StoredJob stored = Json.MAPPER.readValue("{\"acceptedAt\":\"2026-01-01T00:00:00Z\",\"snapshot\":{\"jobId\":\"" + id
                    + "\",\"namespace\":\"team-a\",\"imageId\":\"img-" + id + "\"}}", StoredJob.class);
            return stored.withStatus(status);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    @Test
    void finishedRecordsArePrunedByAgeUnfinishedOnesNever() throws Exception {
        JobStore store = new JobStore(dir, Duration.ofHours(24), clock);
        store.save(job("old-done", JobState.SUCCEEDED));
        store.save(job("old-failed", JobState.FAILED));
        store.save(job("old-running", JobState.RUNNING));
        store.save(job("old-queued", JobState.QUEUED));
        clock.now = clock.now.plus(Duration.ofHours(23));
        store.save(job("young-done", JobState.SUCCEEDED));
        clock.now = clock.now.plus(Duration.ofHours(2));

        assertThat(store.prune()).isEqualTo(2);

        assertThat(store.all()).extracting(j -> j.status().jobId())
                .containsExactlyInAnyOrder("old-running", "old-queued", "young-done");
        assertThat(store.find("old-done")).isEmpty();
        assertThat(Files.exists(dir.resolve("old-done.json"))).isFalse();
        assertThat(Files.exists(dir.resolve("old-running.json"))).isTrue();
        assertThat(store.active()).extracting(j -> j.status().jobId()).containsExactlyInAnyOrder("old-running", "old-queued");
    }

    @Test
    void aRestartedAgentReadsTheRecordsAndPrunesByTheirFilesAge() throws Exception {
        JobStore first = new JobStore(dir, Duration.ofHours(24), Clock.systemUTC());
        first.save(job("kept", JobState.SUCCEEDED));
        first.save(job("stale", JobState.SUCCEEDED));
        first.save(job("stuck", JobState.RUNNING));
        Files.setLastModifiedTime(dir.resolve("stale.json"), java.nio.file.attribute.FileTime.from(Instant.now().minus(Duration.ofDays(3))));
        Files.setLastModifiedTime(dir.resolve("stuck.json"), java.nio.file.attribute.FileTime.from(Instant.now().minus(Duration.ofDays(3))));
        Files.writeString(dir.resolve("torn.json"), "{not json");

        JobStore restarted = new JobStore(dir, Duration.ofHours(24), Clock.systemUTC());

        assertThat(restarted.all()).extracting(j -> j.status().jobId()).containsExactlyInAnyOrder("kept", "stuck");
        assertThat(restarted.find("kept").orElseThrow().status().state()).isEqualTo(JobState.SUCCEEDED);
        assertThat(Files.exists(dir.resolve("stale.json"))).isFalse();
        assertThat(Files.exists(dir.resolve("torn.json"))).as("an unreadable record is skipped, not deleted").isTrue();
    }

    @Test
    void aWriteIsVisibleAtOnceAndBadIdsNameNoFile() {
        JobStore store = new JobStore(dir, Duration.ofHours(24), clock);
        store.save(job("job-1", JobState.QUEUED));
        store.save(job("job-1", JobState.RUNNING));
        assertThat(store.find("job-1").orElseThrow().status().state()).isEqualTo(JobState.RUNNING);
        assertThat(store.all()).hasSize(1);
        assertThatThrownBy(() -> store.find("../etc")).isInstanceOf(InvalidIdException.class);
    }

    static final class MutableClock extends Clock {
        Instant now = Instant.parse("2026-01-01T00:00:00Z");

        @Override
        public ZoneOffset getZone() {
            return ZoneOffset.UTC;
        }

        @Override
        public Clock withZone(ZoneId zone) {
            return this;
        }

        @Override
        public Instant instant() {
            return now;
        }
    }
}
