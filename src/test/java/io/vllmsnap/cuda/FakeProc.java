package io.vllmsnap.cuda;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/** Builds a fake /proc tree in a directory, one process at a time. */
final class FakeProc {
    final Path root;

    FakeProc(Path root) {
        this.root = root;
    }

    ProcFs procFs() {
        return new ProcFs(root);
    }

    Process process(int pid, int ppid, String comm) {
        return new Process(pid).stat(comm, "S", ppid);
    }

    final class Process {
        final Path dir;
        final int pid;

        Process(int pid) {
            this.pid = pid;
            this.dir = root.resolve(Integer.toString(pid));
            mkdirs(dir.resolve("fd"));
            mkdirs(dir.resolve("net"));
        }

        Process stat(String comm, String state, int ppid) {
            write("stat", pid + " (" + comm + ") " + state + " " + ppid + " 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 4242 0\n");
            write("comm", comm.length() > 15 ? comm.substring(0, 15) + "\n" : comm + "\n");
            return this;
        }

        Process cmdline(String... argv) {
            write("cmdline", String.join("\0", argv) + "\0");
            return this;
        }

        Process maps(String... paths) {
            StringBuilder sb = new StringBuilder();
            for (String p : paths) {
                sb.append("7f0000000000-7f0000001000 r-xp 00000000 08:01 1234                       ").append(p).append('\n');
            }
            sb.append("7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]\n");
            write("maps", sb.toString());
            return this;
        }

        Process fd(int fd, String target) {
            try {
                Files.createSymbolicLink(dir.resolve("fd").resolve(Integer.toString(fd)), Path.of(target));
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            return this;
        }

        /** /proc/PID/status with the thread group (the process a thread belongs to; its own PID for a process). */
        Process tgid(int tgid) {
            write("status", "Name:\tpython3\nTgid:\t" + tgid + "\nPid:\t" + pid + "\n");
            return this;
        }

        Process environ(String... entries) {
            write("environ", String.join("\0", entries) + "\0");
            return this;
        }

        Process unixSocket(String inode, String path) {
            String header = "Num       RefCount Protocol Flags    Type St Inode Path\n";
            Path f = dir.resolve("net/unix");
            String existing = Files.exists(f) ? read(f) : header;
            write("net/unix", existing + "0000000000000000: 00000003 00000000 00000000 0001 03 " + inode
                    + (path.isEmpty() ? "" : " " + path) + "\n");
            return this;
        }

        private void write(String name, String content) {
            try {
                Files.writeString(dir.resolve(name), content, StandardCharsets.UTF_8);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
    }

    private static String read(Path f) {
        try {
            return Files.readString(f);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static void mkdirs(Path p) {
        try {
            Files.createDirectories(p);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
