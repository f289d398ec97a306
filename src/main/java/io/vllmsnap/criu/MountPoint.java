package io.vllmsnap.criu;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

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

    static String unescape(String s) {
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
