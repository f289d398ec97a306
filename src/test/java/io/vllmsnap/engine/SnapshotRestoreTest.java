package io.vllmsnap.engine;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

/** Dump and restore of the stand-in server with real CRIU (root). */
class SnapshotRestoreTest {

    @Test
    void restoredServerHoldsExactlyTheStateOfTheSource2GiB() throws Exception {
        int port = 18110;
        try (EngineFixture f = new EngineFixture()) {
            SourceLauncher.Source src = f.start(port, 2048 * EngineFixture.MIB, 64 * EngineFixture.MIB);
            VllmClient client = new VllmClient(port);
            client.complete("warm up", 4);
            client.complete("and again", 4);
            JsonNode before = EngineFixture.state(port);

            Path image = f.newImagePath("full");
            Manifest m = f.checkpointer.snapshot(SnapshotRequest.of(src.pid(), image, port, 0, false), Progress.NONE);

            assertThat(Manifest.read(image).sizeBytes()).isEqualTo(m.sizeBytes());
            assertThat(m.sizeBytes()).isGreaterThan(2048 * EngineFixture.MIB);
            assertThat(m.phaseSeconds()).containsKeys("dump", "finalize");
            assertThat(Processes.awaitGone(src.pid(), java.time.Duration.ofSeconds(30))).isTrue();

            RestoreResult r = f.restore(image);
            assertThat(r.phaseSeconds().keySet()).containsExactly("prepare", "stage", "restore", "ready", "first-token");
            assertPhasesCoverTotal(r);
            assertThat(r.firstText()).isNotBlank();
            JsonNode after = EngineFixture.state(port);
            assertThat(after.get("weights_sha256")).isEqualTo(before.get("weights_sha256"));
            assertThat(after.get("kernels_sha256")).isEqualTo(before.get("kernels_sha256"));
            // The first-token probe wrote one more trace into the KV pool; the counter shows it continued from the
            // source's, proving the request history came back too.
            assertThat(after.get("counter").asInt()).isEqualTo(before.get("counter").asInt() + 1);
            assertThat(after.get("pid").asInt()).isEqualTo(1);
        }
    }

    @Test
    void kvPoolAndCounterComeBackBitForBit() throws Exception {
        int port = 18111;
        try (EngineFixture f = new EngineFixture()) {
            SourceLauncher.Source src = f.start(port, 128 * EngineFixture.MIB, 32 * EngineFixture.MIB);
            new VllmClient(port).complete("some prompt", 8);
            JsonNode before = EngineFixture.state(port);
            Path image = f.newImagePath("kv");
            f.checkpointer.snapshot(SnapshotRequest.of(src.pid(), image, port, 0, false), Progress.NONE);
            RestoreResult r = f.restorer.restore(new RestoreRequest(image, RestoreRequest.DEFAULT_ROOTFS, 2, false,
                    false, Timeouts.defaults(), null, "127.0.0.1"), Progress.NONE);
            try {
                assertThat(EngineFixture.state(port)).isEqualTo(before);
            } finally {
                EngineFixture.stopRestored(r.pid());
            }
        }
    }

    @Test
    void lazyPagesRestoreServesAtOnceAndEndsWithTheSameMemory() throws Exception {
        int port = 18115;
        try (EngineFixture f = new EngineFixture()) {
            SourceLauncher.Source src = f.start(port, 256 * EngineFixture.MIB, 64 * EngineFixture.MIB);
            new VllmClient(port).complete("lazy", 3);
            JsonNode before = EngineFixture.state(port);
            String readBefore = EngineFixture.touch(port, "mode=bytes&threads=4").get("checksum").asText();
            Path image = f.newImagePath("lazy");
            f.checkpointer.snapshot(SnapshotRequest.of(src.pid(), image, port, 0, false), Progress.NONE);
            RestoreResult r = f.restorer.restore(new RestoreRequest(image, RestoreRequest.DEFAULT_ROOTFS, 0, false,
                    true, Timeouts.defaults(), null, "127.0.0.1"), Progress.NONE);
            try {
                assertThat(r.phaseSeconds().keySet()).containsExactly("prepare", "restore", "ready");
                assertPhasesCoverTotal(r);
                // First thing after restore, four threads read all 320 MiB at once: their faults land side by side and
                // inside each other's fault windows (CRIU patched by hack/criu-patches serves a window per fault).
                JsonNode read = EngineFixture.touch(port, "mode=bytes&threads=4");
                assertThat(read.get("bytes").asLong()).isEqualTo(320 * EngineFixture.MIB);
                assertThat(read.get("checksum").asText()).isEqualTo(readBefore);
                // /state hashes every byte again, and the counter and compiled kernels from the rest of the heap
                assertThat(EngineFixture.state(port)).isEqualTo(before);
            } finally {
                EngineFixture.stopRestored(r.pid());
            }
        }
    }

    @Test
    void sleepLevel1KeepsWeightsAndDropsKv() throws Exception {
        sleepLevel(1, 18112);
    }

    @Test
    void sleepLevel2DropsWeightsAndRereadsThemOnWake() throws Exception {
        sleepLevel(2, 18113);
    }

    private void sleepLevel(int level, int port) throws Exception {
        long weights = 256 * EngineFixture.MIB;
        long kv = 64 * EngineFixture.MIB;
        try (EngineFixture f = new EngineFixture()) {
            SourceLauncher.Source src = f.start(port, weights, kv);
            new VllmClient(port).complete("before sleep", 4);
            JsonNode before = EngineFixture.state(port);
            Path image = f.newImagePath("sleep" + level);
            Manifest m = f.checkpointer.snapshot(SnapshotRequest.of(src.pid(), image, port, level, false),
                    Progress.NONE);
            assertThat(m.phaseSeconds()).containsKey("prepare");
            assertThat(m.source().sleepLevel()).isEqualTo(level);
            if (level == 1) {
                assertThat(m.sizeBytes()).isBetween(weights, weights + kv);
            } else {
                assertThat(m.sizeBytes()).isLessThan(weights / 2);
            }

            RestoreResult r = f.restore(image);
            assertThat(r.phaseSeconds().keySet())
                    .containsExactly("prepare", "stage", "restore", "wake", "ready", "first-token");
            assertPhasesCoverTotal(r);
            VllmClient client = new VllmClient(port);
            assertThat(client.isSleeping()).isFalse();
            JsonNode after = EngineFixture.state(port);
            assertThat(after.get("weights_sha256")).isEqualTo(before.get("weights_sha256"));
            assertThat(after.get("counter").asInt()).isEqualTo(before.get("counter").asInt() + 1);
            assertThat(after.get("kv_sha256").asText()).isNotEqualTo(before.get("kv_sha256").asText());
            // wake gives a fresh pool, as vLLM does; only the first-token probe's trace is in it
            assertThat(after.get("kv_sha256").asText()).isNotEqualTo(sha256OfZeros(kv));
        }
    }

    @Test
    void leaveRunningKeepsTheSourceServingAndAwake() throws Exception {
        int port = 18114;
        try (EngineFixture f = new EngineFixture()) {
            SourceLauncher.Source src = f.start(port, 128 * EngineFixture.MIB, 16 * EngineFixture.MIB);
            Path image = f.newImagePath("leave");
            f.checkpointer.snapshot(SnapshotRequest.of(src.pid(), image, port, 1, true), Progress.NONE);
            assertThat(src.alive()).isTrue();
            VllmClient client = new VllmClient(port);
            assertThat(client.isSleeping()).isFalse();
            assertThat(client.complete("still there", 2).path("choices").path(0).path("text").asText()).isNotBlank();
            assertThat(Files.isRegularFile(image.resolve(Manifest.FILE_NAME))).isTrue();
        }
    }

    private static String sha256OfZeros(long n) throws Exception {
        MessageDigest md = MessageDigest.getInstance("SHA-256");
        byte[] zeros = new byte[1 << 20];
        for (long left = n; left > 0; left -= zeros.length) {
            md.update(zeros, 0, (int) Math.min(zeros.length, left));
        }
        return HexFormat.of().formatHex(md.digest());
    }

    /**
     * Every moment of a restore belongs to a named phase: the phases add up to the total (request → first token).
     * Time taken after the last phase but counted in the total shows as a gap here.
     */
    static void assertPhasesCoverTotal(RestoreResult r) {
        double sum = r.phaseSeconds().values().stream().mapToDouble(Double::doubleValue).sum();
        assertThat(sum).as("sum of phases %s against total %.4f s", r.phaseSeconds(), r.totalSeconds())
                .isCloseTo(r.totalSeconds(), within(0.01));
    }
}
