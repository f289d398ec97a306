package io.vllmsnap.cuda;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class GpuBackendSelectorTest {
    @TempDir
    Path dir;

    private static CudaDriver noLibcuda() {
        return CudaDriver.load("libcuda-absent-for-test.so.1");
    }

    @Test
    void withoutDriverOrUtilityTheErrorGivesBothReasons() {
        GpuBackendSelector s = new GpuBackendSelector(GpuBackendSelectorTest::noLibcuda, Optional::empty,
                CommandRunner.system(), Duration.ofSeconds(5));

        assertThatThrownBy(s::select).isInstanceOf(CudaUnavailableException.class)
                .hasMessageContaining("libcuda-absent-for-test.so.1 not found")
                .hasMessageContaining("no cuda-checkpoint on PATH");
    }

    @Test
    void fallsBackToTheUtilityOnPathWhenLibcudaIsMissing() throws Exception {
        Path bin = utility("exit 0");
        Optional<Path> found = CudaCheckpointBinary.findOnPath("/nonexistent:" + dir);
        GpuBackendSelector s = new GpuBackendSelector(GpuBackendSelectorTest::noLibcuda, () -> found,
                CommandRunner.system(), Duration.ofSeconds(5));

        GpuBackendSelector.Selection sel = s.select();

        assertThat(found).contains(bin);
        assertThat(sel.backend()).isInstanceOf(CudaCheckpointBinary.class);
        assertThat(sel.driver()).isEmpty();
        assertThat(sel.note()).contains("not found").contains("using " + bin);
    }

    @Test
    void utilityBackendSendsTheActionsItDocumentsAndReadsState() {
        List<List<String>> calls = new ArrayList<>();
        CommandRunner fake = (cmd, timeout) -> {
            calls.add(cmd);
            return new CommandRunner.Result(0, cmd.contains("--get-state") ? "checkpointed\n" : "");
        };
        CudaCheckpointBinary b = new CudaCheckpointBinary(Path.of("/opt/cc/cuda-checkpoint"), fake, Duration.ofSeconds(5));

        b.lock(42, 5000);
        b.checkpoint(42);
        b.restore(42, List.of());
        b.unlock(42);
        ProcessGpuState state = b.state(42);

        assertThat(calls).containsExactly(
                List.of("/opt/cc/cuda-checkpoint", "--action", "lock", "--pid", "42", "--timeout", "5000"),
                List.of("/opt/cc/cuda-checkpoint", "--action", "checkpoint", "--pid", "42"),
                List.of("/opt/cc/cuda-checkpoint", "--action", "restore", "--pid", "42"),
                List.of("/opt/cc/cuda-checkpoint", "--action", "unlock", "--pid", "42"),
                List.of("/opt/cc/cuda-checkpoint", "--get-state", "--pid", "42"));
        assertThat(state).isEqualTo(ProcessGpuState.CHECKPOINTED);
    }

    @Test
    void utilityFailureAndHangBecomeClearErrors() throws Exception {
        Path failing = utility("echo 'Error checkpointing: operation not supported' >&2; exit 1");
        CudaCheckpointBinary b = new CudaCheckpointBinary(failing, CommandRunner.system(), Duration.ofSeconds(10));
        assertThatThrownBy(() -> b.lock(7, 1000)).isInstanceOf(CudaException.class)
                .hasMessageContaining("--action lock --pid 7 failed (exit 1)")
                .hasMessageContaining("operation not supported");

        Path hanging = utility("exec sleep 30");
        CudaCheckpointBinary h = new CudaCheckpointBinary(hanging, CommandRunner.system(), Duration.ofMillis(300));
        assertThatThrownBy(() -> h.checkpoint(7)).isInstanceOf(CudaException.class)
                .hasMessageContaining("did not finish within");
    }

    /** A shell script standing in for the utility (the real one is never shipped or needed by tests). */
    private Path utility(String body) throws Exception {
        Path p = dir.resolve(CudaCheckpointBinary.BINARY);
        Files.writeString(p, "#!/bin/sh\n" + body + "\n");
        Files.setPosixFilePermissions(p, PosixFilePermissions.fromString("rwxr-xr-x"));
        return p;
    }
}
