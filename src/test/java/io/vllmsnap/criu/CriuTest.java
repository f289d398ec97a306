package io.vllmsnap.criu;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class CriuTest {
    private final Criu criu = new Criu("criu");

    @Test
    void dumpDeclaresEveryExternalMountAndLocksTheNetworkOnlyForTcp() {
        Map<String, String> ext = new LinkedHashMap<>();
        ext.put("/dev", "mnt0");
        ext.put("/data dir", "mnt1");
        List<String> plain = criu.dumpCommand(new Criu.DumpSpec(42, Path.of("/img"), false, false, false, false, ext,
                Duration.ofSeconds(5), null));
        assertThat(plain).containsSequence("--tree", "42").containsSequence("--external", "mnt[/dev]:mnt0")
                .containsSequence("--external", "mnt[/data dir]:mnt1")
                .doesNotContain("--leave-running", "--tcp-established", "--network-lock", "--file-locks");

        List<String> all = criu.dumpCommand(new Criu.DumpSpec(42, Path.of("/img"), true, true, true, true, Map.of(),
                Duration.ofSeconds(5), null));
        assertThat(all).contains("--leave-running", "--tcp-established", "--file-locks", "--ext-unix-sk")
                .containsSequence("--network-lock", "nftables");

        List<String> pod = criu.dumpCommand(new Criu.DumpSpec(42, Path.of("/img"), false, false, false, false,
                Map.of(), Duration.ofSeconds(5), "4026532290"));
        assertThat(pod).containsSequence("--external", "net[4026532290]:extnet")
                .containsSequence("--network-lock", "nftables");
    }

    @Test
    void restoreIsDetachedRootedAndMapsMountsBack() {
        List<String> cmd = criu.restoreCommand(new Criu.RestoreSpec(Path.of("/img"), Path.of("/rootfs"),
                Path.of("/run/x/pid"), false, false, false, Map.of("mnt0", "/dev"), false, Duration.ofSeconds(5), null));
        assertThat(cmd).contains("--restore-detached").containsSequence("--root", "/rootfs")
                .containsSequence("--pidfile", "/run/x/pid").containsSequence("--external", "mnt[mnt0]:/dev")
                .doesNotContain("--lazy-pages", "--inherit-fd");
        assertThat(cmd.getFirst()).isEqualTo("criu");
        List<String> pod = criu.restoreCommand(new Criu.RestoreSpec(Path.of("/img"), Path.of("/rootfs"),
                Path.of("/run/x/pid"), false, false, false, Map.of(), false, Duration.ofSeconds(5),
                Path.of("/proc/7/ns/net")));
        assertThat(pod.getFirst()).isEqualTo("bash");
        assertThat(pod).containsSequence("criu-netns", "/proc/7/ns/net", "criu", "restore")
                .containsSequence("--inherit-fd", "fd[3]:extnet");
        List<String> lazy = criu.restoreCommand(new Criu.RestoreSpec(Path.of("/img"), Path.of("/rootfs"),
                Path.of("/run/x/pid"), false, false, false, Map.of(), true, Duration.ofSeconds(5), null));
        assertThat(lazy).contains("--lazy-pages").containsSequence("--work-dir", "/run/x");
    }

    @Test
    void errorLinesAreTheLogsErrorsWithoutCriusRoutineNoise(@TempDir Path dir) throws Exception {
        Path log = dir.resolve("dump.log");
        Files.write(log, List.of(
                "(00.034258) Error (criu/util.c:1534): rlimit: Can't setup RLIMIT_NOFILE for self: Operation not permitted",
                "(00.041329) Warn  (compel/arch/x86/src/lib/infect.c:419): Will restore 12684 with interrupted system call",
                "(00.042164) Error (criu/files-reg.c:1790): Can't lookup mount=24 for fd=10 path=/dev/null",
                "(00.042424) Error (criu/cr-dump.c:1975): Dumping FAILED."));
        assertThat(Criu.errorLines(log)).containsExactly(
                "Error (criu/files-reg.c:1790): Can't lookup mount=24 for fd=10 path=/dev/null",
                "Error (criu/cr-dump.c:1975): Dumping FAILED.");
    }

    @Test
    void missingBinaryIsAClearError() {
        assertThatThrownBy(() -> new Criu("/nonexistent/criu").version())
                .isInstanceOf(CriuException.class).hasMessageContaining("install-criu.sh");
    }

    @Test
    void commandsOutlivingTheirTimeoutAreKilled() {
        long t0 = System.nanoTime();
        assertThatThrownBy(() -> ChildProcess.run(List.of("sleep", "30"), Duration.ofMillis(200)))
                .isInstanceOf(ChildProcess.TimeoutException.class).hasMessageContaining("sleep");
        assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(Duration.ofSeconds(20));
    }

    @Test
    void mountInfoEscapesAreDecoded() {
        assertThat(MountPoint.unescape("/data\\040dir")).isEqualTo("/data dir");
    }
}
