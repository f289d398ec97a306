package io.vllmsnap.agent.container;

import io.vllmsnap.criu.MountPoint;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * A mount namespace's table ({@code /proc/PID/mountinfo}) with what is needed to find the same file system in
 * another namespace: device, the directory of the file system that is mounted, and where.
 */
record MountTable(List<Entry> entries) {

    record Entry(String device, String root, String mountPoint, String fsType) {
    }

    static MountTable read(Path mountinfo) throws IOException {
        List<Entry> entries = new ArrayList<>();
        for (String line : Files.readAllLines(mountinfo)) {
            String[] f = line.split(" ");
            int sep = List.of(f).indexOf("-");
            if (sep < 6 || f.length < sep + 2) {
                continue;
            }
            entries.add(new Entry(f[2], MountPoint.unescape(f[3]), MountPoint.unescape(f[4]), f[sep + 1]));
        }
        return new MountTable(List.copyOf(entries));
    }

    /** This table less the mounts at or below {@code dir} (an absolute path). */
    MountTable without(String dir) {
        String prefix = dir.endsWith("/") ? dir : dir + "/";
        return new MountTable(entries.stream()
                .filter(e -> !e.mountPoint().equals(dir) && !e.mountPoint().startsWith(prefix)).toList());
    }

    /** The mount visible at a mount point (the last one when several are stacked there). */
    Optional<Entry> at(String mountPoint) {
        Entry found = null;
        for (Entry e : entries) {
            if (e.mountPoint().equals(mountPoint)) {
                found = e;
            }
        }
        return Optional.ofNullable(found);
    }

    /**
     * Where this namespace sees the same directory that {@code other} is a mount of: a mount of the same device
     * whose root contains {@code other}'s root, plus the rest of the path below it.
     */
    Optional<String> pathOf(Entry other) {
        for (Entry e : entries.reversed()) {
            if (!e.device().equals(other.device())) {
                continue;
            }
            String root = e.root().equals("/") ? "" : e.root();
            if (other.root().equals(e.root()) || other.root().startsWith(root + "/")) {
                String rest = other.root().substring(root.length());
                String base = e.mountPoint().equals("/") ? "" : e.mountPoint();
                return Optional.of(rest.isEmpty() ? (base.isEmpty() ? "/" : base) : base + rest);
            }
        }
        return Optional.empty();
    }
}
