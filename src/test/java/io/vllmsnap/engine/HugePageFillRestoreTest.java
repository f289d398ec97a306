package io.vllmsnap.engine;

import com.fasterxml.jackson.databind.JsonNode;
import io.vllmsnap.criu.Criu;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;

/** Our CRIU patch (hack/criu-patches/0002-restore-thp-fill.patch) on a real process. */
class HugePageFillRestoreTest {

    @Test
    void restoreThroughHugePagesGivesTheSameMemoryInHugePages() throws Exception {
        int port = 18137;
        try (EngineFixture f = new EngineFixture()) {
            SourceLauncher.Source src = f.start(port, 128 * EngineFixture.MIB, 32 * EngineFixture.MIB);
            new VllmClient(port).complete("huge pages", 3);
            JsonNode before = EngineFixture.state(port);
            Path image = f.newImagePath("thp");
            f.checkpointer.snapshot(SnapshotRequest.of(src.pid(), image, port, 0, false), Progress.NONE);
            Restorer thp = new Restorer(Criu.fromEnvironment().withMapFill(false).withHugePageFill(true),
                    new NoGpuCheckpointer(), f.limiter);
            RestoreRequest req = new RestoreRequest(image, RestoreRequest.DEFAULT_ROOTFS, 0, false, false,
                    Timeouts.defaults(), null, "127.0.0.1");
            RestoreResult r = thp.restore(req, Progress.NONE);
            try {
                assertThat(anonHugePagesKib(r.pid())).as("restored weights and KV live in 2 MiB pages")
                        .isGreaterThanOrEqualTo(64 * 1024);
                assertThat(EngineFixture.state(port)).isEqualTo(before);
            } finally {
                EngineFixture.stopRestored(r.pid());
            }
        }
    }

    private static long anonHugePagesKib(long pid) throws Exception {
        return Files.readAllLines(Path.of("/proc/" + pid + "/smaps")).stream()
                .filter(l -> l.startsWith("AnonHugePages:"))
                .mapToLong(l -> Long.parseLong(l.replaceAll("[^0-9]", "")))
                .sum();
    }
}
