package io.vllmsnap.cuda;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/** Reads what vllmsnap needs from a /proc tree; the root is a parameter so tests can give a fake one. */
public final class ProcFs {
    private final Path root;

    public ProcFs(Path root) {
        this.root = root;
    }

    public static ProcFs system() {
        return new ProcFs(Path.of("/proc"));
    }

    public Path root() {
        return root;
    }

    /** PIDs of all processes, in no particular order. */
    public List<Integer> pids() {
        List<Integer> pids = new ArrayList<>();
        try (DirectoryStream<Path> dirs = Files.newDirectoryStream(root)) {
            for (Path d : dirs) {
                String n = d.getFileName().toString();
                if (!n.isEmpty() && n.chars().allMatch(Character::isDigit)) {
                    pids.add(Integer.parseInt(n));
                }
            }
        } catch (IOException e) {
            throw new IllegalStateException("cannot list " + root + ": " + e.getMessage(), e);
        }
        return pids;
    }

    public boolean exists(int pid) {
        return Files.isDirectory(root.resolve(Integer.toString(pid)));
    }

    /** Lines of /proc/PID/maps; empty when the process is gone or unreadable. */
    public List<String> maps(int pid) {
        return readLines(pid, "maps");
    }

    /** Targets of the process's open file descriptors (paths, "socket:[inode]", "pipe:[...]", ...). */
    public List<String> fdTargets(int pid) {
        List<String> targets = new ArrayList<>();
        try (DirectoryStream<Path> fds = Files.newDirectoryStream(dir(pid).resolve("fd"))) {
            for (Path fd : fds) {
                try {
                    targets.add(Files.readSymbolicLink(fd).toString());
                } catch (IOException | UnsupportedOperationException e) {
                    // closed between listing and reading: nothing to report
                }
            }
        } catch (IOException e) {
            return List.of();
        }
        return targets;
    }

    /** argv[0]'s file name, else the comm (which the kernel cuts to 15 characters). */
    public String executableName(int pid) {
        try {
            byte[] cmd = Files.readAllBytes(dir(pid).resolve("cmdline"));
            int end = 0;
            while (end < cmd.length && cmd[end] != 0) {
                end++;
            }
            if (end > 0) {
                String argv0 = new String(cmd, 0, end, StandardCharsets.UTF_8);
                return argv0.substring(argv0.lastIndexOf('/') + 1);
            }
        } catch (IOException e) {
            // fall through to comm
        }
        return readLines(pid, "comm").stream().findFirst().orElse("").strip();
    }

    /** The parent PID, from /proc/PID/stat (after the last ')', since comm may hold spaces and parens). */
    public Optional<Integer> parentPid(int pid) {
        return statField(pid, 1).map(Integer::parseInt);
    }

    /** The process (thread group) a thread ID belongs to, from the Tgid line of /proc/TID/status; empty when gone. */
    public Optional<Integer> threadGroup(int tid) {
        for (String line : readLines(tid, "status")) {
            if (line.startsWith("Tgid:")) {
                return Optional.of(Integer.parseInt(line.substring(5).strip()));
            }
        }
        return Optional.empty();
    }

    /** Whether the process has exited and waits to be reaped (state Z or X), or is gone. */
    public boolean isZombie(int pid) {
        return statField(pid, 0).map(state -> state.equals("Z") || state.equals("X")).orElse(true);
    }

    /** Start time in clock ticks since boot (stat field 22). */
    public Optional<Long> startTime(int pid) {
        return statField(pid, 19).map(Long::parseLong);
    }

    /** Value of one variable of /proc/PID/environ, if set. */
    public Optional<String> environ(int pid, String name) {
        try {
            byte[] env = Files.readAllBytes(dir(pid).resolve("environ"));
            for (String entry : new String(env, StandardCharsets.UTF_8).split("\0")) {
                if (entry.startsWith(name + "=")) {
                    return Optional.of(entry.substring(name.length() + 1));
                }
            }
        } catch (IOException e) {
            // unreadable: unknown
        }
        return Optional.empty();
    }

    /** Lines of the process's view of /proc/net/unix (inode is column 7, path column 8). */
    public List<String> unixSockets(int pid) {
        return readLines(pid, "net/unix");
    }

    private Optional<String> statField(int pid, int indexAfterComm) {
        List<String> stat = readLines(pid, "stat");
        if (stat.isEmpty()) {
            return Optional.empty();
        }
        String line = stat.getFirst();
        int close = line.lastIndexOf(')');
        if (close < 0) {
            return Optional.empty();
        }
        String[] fields = line.substring(close + 1).trim().split("\\s+");
        return indexAfterComm < fields.length ? Optional.of(fields[indexAfterComm]) : Optional.empty();
    }

    private List<String> readLines(int pid, String file) {
        try {
            return Files.readAllLines(dir(pid).resolve(file), StandardCharsets.UTF_8);
        } catch (IOException e) {
            return List.of();
        }
    }

    private Path dir(int pid) {
        return root.resolve(Integer.toString(pid));
    }
}
