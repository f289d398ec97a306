package io.vllmsnap.criu;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** One line of {@code /proc/<pid>/mountinfo}: where it is mounted and which file system type. */
public record MountPoint(String mountPoint, String fsType) {

    /** Reads the mount table as the process sees it. Octal escapes (spaces in paths) are decoded. */
    public static List<MountPoint> of(long pid) throws IOException {
        List<MountPoint> mounts = new ArrayList<>();
        for (String line : Files.readAllLines(Path.of("/proc", Long.toString(pid), "mountinfo"))) {
            String[] f = line.split(" ");
            int sep = List.of(f).indexOf("-");
            if (sep < 0 || f.length < sep + 2) {
                continue;
            }
            mounts.add(new MountPoint(unescape(f[4]), f[sep + 1]));
        }
        return mounts;
    }

    /**
     * Every mount point of the process's mount namespace but its root and /proc, each under a key of its own
     * (mount point → key, sorted by mount point): CRIU refuses to dump bind mounts of host paths (volumes,
     * /etc/hosts, /dev/shm, device files), so a dump declares them external and a restore binds them back.
     */
    public static Map<String, String> externalMounts(long pid) throws IOException {
        Map<String, String> external = new LinkedHashMap<>();
        of(pid).stream()
                .filter(m -> !m.mountPoint().equals("/") && !m.fsType().equals("proc"))
                .map(MountPoint::mountPoint).distinct().sorted()
                .forEach(mp -> external.put(mp, "mnt" + external.size()));
        return external;
    }

    /** Decodes mountinfo's octal escapes ({@code \\040} for a space). */
    public static String unescape(String s) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\\' && i + 3 < s.length()) {
                b.append((char) Integer.parseInt(s.substring(i + 1, i + 4), 8));
                i += 3;
            } else {
                b.append(c);
            }
        }
        return b.toString();
    }
}
