package io.vllmsnap.engine;

import io.vllmsnap.criu.Criu;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.attribute.PosixFilePermissions;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The engine's GPU orchestration around real CRIU, with a recording stand-in for the driver (the driver itself is
 * exercised on the GPU machine): order of the steps, give-back after a failure, refusal before anything is touched.
 */
class GpuPhaseTest {

    /** Treats the stand-in server as a CUDA process and records every driver call. */
    static final class RecordingGpu implements GpuCheckpointer {
        final List<String> calls = new ArrayList<>();
        String unsupported;

        @Override
        public boolean isCudaProcess(long pid) {
            return Processes.commandLine(pid).contains("server.py");
        }

        @Override
        public void checkSupported(long pid) throws GpuCheckpointException {
            if (unsupported != null) {
                throw new GpuCheckpointException(unsupported);
            }
        }

        private synchronized void record(String step) {
            calls.add(step);
        }

        @Override
        public void lock(long pid, Duration timeout) {
            record("lock");
        }

        @Override
        public void checkpoint(long pid) {
            record("checkpoint");
        }

        @Override
        public void restore(long pid) {
            record("restore");
        }

        @Override
        public void unlock(long pid) {
            record("unlock");
        }

        @Override
        public GpuProcessState state(long pid) {
            return GpuProcessState.RUNNING;
        }
    }

    @Test
    void gpuIsCheckpointedBeforeTheDumpAndRestoredAfterTheRestore() throws Exception {
        int port = 18130;
        RecordingGpu gpu = new RecordingGpu();
        try (EngineFixture f = new EngineFixture()) {
            SourceLauncher.Source src = f.start(port, 64 * EngineFixture.MIB, 8 * EngineFixture.MIB);
            Checkpointer cp = new Checkpointer(Criu.fromEnvironment(), gpu, f.limiter);
            Path image = f.newImagePath("gpu");
            Manifest m = cp.snapshot(SnapshotRequest.of(src.pid(), image, port, 2, false), Progress.NONE);
            assertThat(m.cudaProcesses()).isEqualTo(1);
            assertThat(m.phaseSeconds()).containsKeys("prepare", "gpu-checkpoint", "dump");
            assertThat(gpu.calls).containsExactly("lock", "checkpoint");

            Restorer rs = new Restorer(Criu.fromEnvironment(), gpu, f.limiter);
            RestoreResult r = rs.restore(RestoreRequest.of(image), Progress.NONE);
            try {
                assertThat(gpu.calls).containsExactly("lock", "checkpoint", "restore", "unlock");
                assertThat(r.phaseSeconds().keySet())
                        .containsExactly("prepare", "stage", "restore", "gpu-restore", "wake", "ready", "first-token");
                SnapshotRestoreTest.assertPhasesCoverTotal(r);
            } finally {
                EngineFixture.stopRestored(r.pid());
            }
        }
    }

    @Test
    void failedDumpAfterTheGpuLockGivesTheGpuBackAndWakesTheSource(@TempDir Path bin) throws Exception {
        int port = 18131;
        RecordingGpu gpu = new RecordingGpu();
        try (EngineFixture f = new EngineFixture()) {
            SourceLauncher.Source src = f.start(port, 64 * EngineFixture.MIB, 8 * EngineFixture.MIB);
            // a criu that knows its version but fails every dump stands for any failure after the lock
            Path failingCriu = bin.resolve("criu");
            Files.writeString(failingCriu, """
                    #!/bin/sh
                    [ "$1" = --version ] && { echo "Version: 4.2.1"; exit 0; }
                    echo "Error (criu/cr-dump.c:1): injected failure" >&2
                    exit 1
                    """);
            Files.setPosixFilePermissions(failingCriu, PosixFilePermissions.fromString("rwxr-xr-x"));
            Checkpointer cp = new Checkpointer(new Criu(failingCriu.toString()), gpu, f.limiter);
            Path image = f.newImagePath("gpu-fail");
            assertThatThrownBy(() -> cp.snapshot(SnapshotRequest.of(src.pid(), image, port, 1, false), Progress.NONE))
                    .isInstanceOf(EngineException.class).hasMessageContaining("criu dump");
            assertThat(gpu.calls).containsExactly("lock", "checkpoint", "restore", "unlock");
            assertThat(image).doesNotExist();
            VllmClient client = new VllmClient(port);
            assertThat(client.isSleeping()).isFalse();
            assertThat(client.complete("serving", 1).path("choices")).hasSize(1);
        }
    }

    @Test
    void processTheDriverCannotCheckpointIsRefusedBeforeAnythingIsTouched() throws Exception {
        int port = 18132;
        RecordingGpu gpu = new RecordingGpu();
        gpu.unsupported = "process is an MPS client; the driver cannot checkpoint it";
        try (EngineFixture f = new EngineFixture()) {
            SourceLauncher.Source src = f.start(port, 64 * EngineFixture.MIB, 8 * EngineFixture.MIB);
            Checkpointer cp = new Checkpointer(Criu.fromEnvironment(), gpu, f.limiter);
            Path image = f.newImagePath("mps");
            assertThatThrownBy(() -> cp.snapshot(SnapshotRequest.of(src.pid(), image, port, 2, false), Progress.NONE))
                    .isInstanceOf(EngineException.class).hasMessageContaining("MPS client");
            assertThat(gpu.calls).isEmpty();
            assertThat(new VllmClient(port).isSleeping()).isFalse();
            assertThat(src.alive()).isTrue();
        }
    }
}
