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

    /** CRIU's own CUDA plugin only runs where CRIU is told its directory, at dump and at restore alike. */
    @Test
    void aPluginDirectoryReachesDumpAndRestoreAndIsAbsentOtherwise() {
        Criu withPlugin = criu.withPluginDir(Path.of("/opt/bundle/criu/plugins"));
        Criu.DumpSpec dump = new Criu.DumpSpec(42, Path.of("/img"), false, false, false, false, Map.of(),
                Duration.ofSeconds(5), null);
        Criu.RestoreSpec restore = new Criu.RestoreSpec(Path.of("/img"), Path.of("/rootfs"), Path.of("/work/pid"),
                false, false, false, Map.of(), false, Duration.ofSeconds(5), null);

        assertThat(withPlugin.dumpCommand(dump)).containsSequence("--libdir", "/opt/bundle/criu/plugins");
        assertThat(withPlugin.restoreCommand(restore)).containsSequence("--libdir", "/opt/bundle/criu/plugins");
        assertThat(criu.dumpCommand(dump)).doesNotContain("--libdir");
        assertThat(criu.restoreCommand(restore)).doesNotContain("--libdir");
    }

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
        assertThat(pod.getFirst()).isEqualTo("sh");
        assertThat(pod).containsSequence("vllmsnap-restore", "0", "/proc/7/ns/net", "criu", "restore")
                .containsSequence("--inherit-fd", "fd[3]:extnet");
        List<String> lazy = criu.restoreCommand(new Criu.RestoreSpec(Path.of("/img"), Path.of("/rootfs"),
                Path.of("/run/x/pid"), false, false, false, Map.of(), true, Duration.ofSeconds(5), null));
        assertThat(lazy).contains("--lazy-pages").containsSequence("--work-dir", "/run/x");
    }

    @Test
    void containerDumpDeclaresThePodsNetworkAndEveryMountExternal() {
        Map<String, String> ext = new LinkedHashMap<>();
        ext.put("/dev/shm", "m0");
        ext.put("/etc/hosts", "m1");
        List<String> cmd = criu.dumpCommand(new ContainerDump(4711, Path.of("/img/criu"), Path.of("/work/dump.log"),
                4026532290L, ext, false, Duration.ofSeconds(5)));
        assertThat(cmd).containsExactly("criu", "dump", "--tree", "4711", "--images-dir", "/img/criu",
                "--log-file", "/work/dump.log", "-v4", "--external", "net[4026532290]:podnet",
                "--tcp-established", "--network-lock", "nftables",
                "--external", "mnt[/dev/shm]:m0", "--external", "mnt[/etc/hosts]:m1");

        List<String> leaving = criu.dumpCommand(new ContainerDump(4711, Path.of("/img/criu"),
                Path.of("/work/dump.log"), 4026532290L, Map.of(), true, Duration.ofSeconds(5)));
        assertThat(leaving).endsWith("nftables", "--leave-running");
    }

    @Test
    void containerRestoreJoinsTheTargetsCgroupsAndNamespaces() {
        Map<String, String> ext = new LinkedHashMap<>();
        ext.put("m0", "/var/lib/kubelet/pods/p/volumes/shm");
        ext.put("m1", "/proc/99/root/etc/hosts");
        List<String> cmd = criu.restoreCommand(new ContainerRestore(Path.of("/img/criu"), Path.of("/work"),
                Path.of("/work/root"), new ContainerRestore.TargetNamespaces(Path.of("/proc/99/ns/net"),
                        Path.of("/proc/99/ns/uts"), Path.of("/proc/99/ns/ipc")),
                List.of(Path.of("/sys/fs/cgroup/pod/c/cgroup.procs"), Path.of("/sys/fs/cgroup/memory/pod/c/cgroup.procs")),
                "podnet", ext, Duration.ofSeconds(5)));
        assertThat(cmd.subList(0, 2)).containsExactly("sh", "-c");
        assertThat(cmd.subList(3, cmd.size())).containsExactly("vllmsnap-restore",
                "2", "/sys/fs/cgroup/pod/c/cgroup.procs", "/sys/fs/cgroup/memory/pod/c/cgroup.procs",
                "/proc/99/ns/net",
                "criu", "restore", "--images-dir", "/img/criu", "--log-file", "/work/restore.log", "-v4",
                "--restore-detached", "--pidfile", "/work/restored.pid", "--root", "/work/root",
                "--manage-cgroups=ignore", "--tcp-close", "--inherit-fd", "fd[3]:podnet",
                "--join-ns", "uts:/proc/99/ns/uts", "--join-ns", "ipc:/proc/99/ns/ipc",
                "--external", "mnt[m0]:/var/lib/kubelet/pods/p/volumes/shm",
                "--external", "mnt[m1]:/proc/99/root/etc/hosts");
    }

    @Test
    void theRestoreLauncherJoinsCgroupsAndHandsTheNamespaceOnFd3(@TempDir Path dir) throws Exception {
        // The launcher is run for real, with a stand-in for criu that reports its cgroup and its fd 3.
        Path procs = Files.writeString(dir.resolve("cgroup.procs"), "");
        Path netns = Files.writeString(dir.resolve("netns"), "namespace");
        Path fake = dir.resolve("fake-criu");
        Files.writeString(fake, "#!/bin/sh\necho \"args: $*\"; cat <&3\n");
        fake.toFile().setExecutable(true);
        List<String> cmd = new Criu(fake.toString()).restoreCommand(new ContainerRestore(dir, dir, dir,
                new ContainerRestore.TargetNamespaces(netns, Path.of("/u"), Path.of("/i")), List.of(procs), "podnet",
                Map.of(), Duration.ofSeconds(5)));
        ChildProcess.Result r = ChildProcess.run(cmd, Duration.ofSeconds(10));
        assertThat(r.ok()).as(r.output()).isTrue();
        assertThat(r.output()).startsWith("args: restore --images-dir " + dir).contains("namespace");
        // the launcher wrote its own PID, which exec'd into the stand-in: the pid written is a number
        assertThat(Files.readString(procs).strip()).matches("[0-9]+");
    }

    @Test
    void everyMountButRootAndProcIsExternalUnderAKeyOfItsOwn() throws Exception {
        long self = ProcessHandle.current().pid();
        Map<String, String> external = MountPoint.externalMounts(self);
        List<String> mountPoints = List.copyOf(external.keySet());
        assertThat(mountPoints).isNotEmpty().doesNotContain("/").isSorted();
        assertThat(MountPoint.of(self)).filteredOn(m -> m.fsType().equals("proc"))
                .allSatisfy(m -> assertThat(external).doesNotContainKey(m.mountPoint()));
        for (int i = 0; i < mountPoints.size(); i++) {
            assertThat(external.get(mountPoints.get(i))).isEqualTo("mnt" + i);
        }
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
