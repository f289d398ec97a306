package io.vllmsnap.engine;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;

import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** What users rely on when things go wrong: no half image, the source keeps serving, nothing else dies. */
class FailureTest {

    @Test
    void criuKilledMidDumpLeavesNoImageAndTheSourceServingAwake() throws Exception {
        int port = 18120;
        try (EngineFixture f = new EngineFixture()) {
            SourceLauncher.Source src = f.start(port, 1024 * EngineFixture.MIB, 64 * EngineFixture.MIB);
            JsonNode before = EngineFixture.state(port);
            Path image = f.newImagePath("killed");
            CompletableFuture<Manifest> job = CompletableFuture.supplyAsync(() -> {
                try {
                    return f.checkpointer.snapshot(SnapshotRequest.of(src.pid(), image, port, 1, false), Progress.NONE);
                } catch (EngineException e) {
                    throw new RuntimeException(e);
                }
            });
            ProcessHandle criu = awaitCriu("dump", Duration.ofSeconds(60));
            Thread.sleep(150); // inside the dump: the tree is frozen and pages are being written
            criu.destroyForcibly();

            assertThatThrownBy(job::join).hasCauseInstanceOf(RuntimeException.class)
                    .cause().cause().isInstanceOf(EngineException.class).hasMessageContaining("criu dump of process");
            assertThat(image).doesNotExist();
            try (Stream<Path> left = Files.list(image.getParent())) {
                assertThat(left.map(Path::toString)).noneMatch(p -> p.contains(image.getFileName() + ".partial"));
            }
            assertThat(src.alive()).isTrue();
            VllmClient client = new VllmClient(port);
            assertThat(client.isSleeping()).isFalse();
            assertThat(client.complete("still serving", 2).path("vllmsnap").path("counter").asInt())
                    .isEqualTo(before.get("counter").asInt() + 1);
        }
    }

    @Test
    void truncatedImageIsRefusedWithAClearErrorAndKillsNothing() throws Exception {
        int port = 18121;
        try (EngineFixture f = new EngineFixture()) {
            SourceLauncher.Source bystander = f.start(18122, 64 * EngineFixture.MIB, 8 * EngineFixture.MIB);
            SourceLauncher.Source src = f.start(port, 128 * EngineFixture.MIB, 8 * EngineFixture.MIB);
            Path image = f.newImagePath("truncated");
            f.checkpointer.snapshot(SnapshotRequest.of(src.pid(), image, port, 0, false), Progress.NONE);
            Path pages = largest(image.resolve(Manifest.CRIU_DIR));
            try (RandomAccessFile raf = new RandomAccessFile(pages.toFile(), "rw")) {
                raf.setLength(raf.length() / 2);
            }

            assertThatThrownBy(() -> f.restore(image)).isInstanceOf(EngineException.class)
                    .hasMessageContaining("damaged").hasMessageContaining(pages.getFileName().toString());
            assertThat(bystander.alive()).isTrue();
            assertThat(new VllmClient(port).healthy()).isFalse();
        }
    }

    @Test
    void corruptImageFailsInCriuWithItsErrorLinesAndKillsNothing() throws Exception {
        int port = 18123;
        try (EngineFixture f = new EngineFixture()) {
            SourceLauncher.Source bystander = f.start(18124, 64 * EngineFixture.MIB, 8 * EngineFixture.MIB);
            SourceLauncher.Source src = f.start(port, 64 * EngineFixture.MIB, 8 * EngineFixture.MIB);
            Path image = f.newImagePath("corrupt");
            f.checkpointer.snapshot(SnapshotRequest.of(src.pid(), image, port, 0, false), Progress.NONE);
            Path pstree = image.resolve(Manifest.CRIU_DIR).resolve("pstree.img");
            byte[] garbage = new byte[(int) Files.size(pstree)];
            java.util.Arrays.fill(garbage, (byte) 0x5a);
            Files.write(pstree, garbage); // same size: only CRIU can tell

            assertThatThrownBy(() -> f.restore(image)).isInstanceOf(EngineException.class)
                    .hasMessageContaining("criu restore").hasMessageContaining("Error");
            assertThat(bystander.alive()).isTrue();
            assertThat(new VllmClient(port).healthy()).isFalse();
        }
    }

    @Test
    void directoryWithoutManifestIsNotAnImage() throws Exception {
        try (EngineFixture f = new EngineFixture()) {
            Path dir = f.newImagePath("empty");
            Files.createDirectories(dir.resolve("criu"));
            assertThatThrownBy(() -> f.restore(dir)).isInstanceOf(EngineException.class)
                    .hasMessageContaining("manifest.json is missing");
        }
    }

    @Test
    void secondSnapshotOfTheSameSourceIsRefusedWhileTheFirstRuns() throws Exception {
        int port = 18125;
        try (EngineFixture f = new EngineFixture()) {
            SourceLauncher.Source src = f.start(port, 1024 * EngineFixture.MIB, 64 * EngineFixture.MIB);
            Path first = f.newImagePath("first");
            CompletableFuture<Manifest> job = CompletableFuture.supplyAsync(() -> {
                try {
                    return f.checkpointer.snapshot(SnapshotRequest.of(src.pid(), first, port, 0, true), Progress.NONE);
                } catch (EngineException e) {
                    throw new RuntimeException(e);
                }
            });
            awaitCriu("dump", Duration.ofSeconds(60));
            Path second = f.newImagePath("second");
            assertThatThrownBy(() -> f.checkpointer.snapshot(SnapshotRequest.of(src.pid(), second, port, 0, true),
                    Progress.NONE)).isInstanceOf(SourceBusyException.class);
            assertThat(job.join().sizeBytes()).isGreaterThan(1024 * EngineFixture.MIB);
            assertThat(second).doesNotExist();
            assertThat(src.alive()).isTrue();
        }
    }

    @Test
    void snapshotOfAProcessThatIsNotANamespaceInitIsRefused() throws Exception {
        try (EngineFixture f = new EngineFixture()) {
            long self = ProcessHandle.current().pid();
            assertThatThrownBy(() -> f.checkpointer.snapshot(SnapshotRequest.of(self,
                    f.newImagePath("self"), 1, 0, true), Progress.NONE))
                    .isInstanceOf(EngineException.class).hasMessageContaining("not PID 1 of its own PID namespace");
        }
    }

    private static ProcessHandle awaitCriu(String action, Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            Optional<ProcessHandle> criu = ProcessHandle.current().descendants()
                    .filter(h -> h.info().commandLine().map(c -> c.contains("criu") && c.contains(" " + action + " "))
                            .orElse(false))
                    .findFirst();
            if (criu.isPresent()) {
                return criu.get();
            }
            Thread.sleep(5);
        }
        throw new AssertionError("criu " + action + " did not start within " + timeout);
    }

    private static Path largest(Path dir) throws Exception {
        try (Stream<Path> s = Files.list(dir)) {
            return s.max((a, b) -> Long.compare(a.toFile().length(), b.toFile().length())).orElseThrow();
        }
    }
}
