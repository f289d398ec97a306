package io.vllmsnap.engine;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.stream.Stream;

/** Small helpers about processes by PID. */
public final class Processes {
    private Processes() {
    }

    public static boolean alive(long pid) {
        // A zombie still has /proc/<pid> but no longer runs; treat it as gone for liveness, not for PID reuse.
        try {
            String stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
            return !stat.substring(stat.lastIndexOf(')') + 2).startsWith("Z");
        } catch (IOException e) {
            return false;
        }
    }

    /** Waits until {@code /proc/<pid>} is gone (reaped), so the PID can be restored again. */
    public static boolean awaitGone(long pid, Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (Files.exists(Path.of("/proc", Long.toString(pid)))) {
            if (System.nanoTime() > deadline) {
                return false;
            }
            pause(Duration.ofMillis(10));
        }
        return true;
    }

    /** The process and all its descendants. */
    public static List<Long> tree(long pid) {
        return ProcessHandle.of(pid)
                .map(h -> Stream.concat(Stream.of(h), h.descendants()).map(ProcessHandle::pid).toList())
                .orElse(List.of());
    }

    /** Whether the process is PID 1 of a PID namespace other than ours (last NSpid field is 1). */
    public static boolean isNamespaceInit(long pid) throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc", Long.toString(pid), "status"))) {
            if (line.startsWith("NSpid:")) {
                String[] f = line.substring(6).trim().split("\\s+");
                return f.length > 1 && f[f.length - 1].equals("1");
            }
        }
        return false;
    }

    /**
     * The inode of the process's network namespace when it differs from ours (a container's or pod's), else null.
     * CRIU names an external network namespace by this inode.
     */
    public static String ownNetworkNamespace(long pid) throws IOException {
        String theirs = Files.readSymbolicLink(Path.of("/proc", Long.toString(pid), "ns", "net")).toString();
        String ours = Files.readSymbolicLink(Path.of("/proc/self/ns/net")).toString();
        if (theirs.equals(ours)) {
            return null;
        }
        return theirs.replaceAll("\\D", ""); // "net:[4026532290]" -> "4026532290"
    }

    public static String commandLine(long pid) {
        try {
            return new String(Files.readAllBytes(Path.of("/proc", Long.toString(pid), "cmdline"))).replace('\0', ' ')
                    .strip();
        } catch (IOException e) {
            return "";
        }
    }

    public static void kill(long pid) {
        ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly);
    }

    static void pause(Duration d) {
        try {
            Thread.sleep(d);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
