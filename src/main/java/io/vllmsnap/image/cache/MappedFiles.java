package io.vllmsnap.image.cache;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.Set;

/**
 * Files that some process maps, read from every {@code /proc/<pid>/maps}. A process restored with map fill keeps
 * its memory in private mappings of the image's {@code pages-N.img} for as long as it runs; evicting that image would
 * not hurt the process (the inode lives on) but would free no space and make the next restore pull it again, so
 * the cache never evicts a mapped image. Files are matched by device and inode, which the maps line carries
 * whatever mount namespace the process lives in, and by inode and path where a file system reports another device
 * in maps than in {@code stat} (btrfs subvolumes, overlayfs).
 */
public final class MappedFiles {

    /** A mapped file: device numbers and inode as maps prints them, and the path (without " (deleted)"). */
    public record Mapping(int major, int minor, long inode, String path) {
    }

    private final Set<Mapping> mappings;

    private MappedFiles(Set<Mapping> mappings) {
        this.mappings = mappings;
    }

    /** Scans every process under {@code procRoot} (normally {@code /proc}); processes that vanish are skipped. */
    public static MappedFiles scan(Path procRoot) throws IOException {
        Set<Mapping> found = new HashSet<>();
        try (DirectoryStream<Path> pids = Files.newDirectoryStream(procRoot,
                p -> p.getFileName().toString().chars().allMatch(Character::isDigit))) {
            for (Path pid : pids) {
                try {
                    for (String line : Files.readAllLines(pid.resolve("maps"))) {
                        Mapping m = parse(line);
                        if (m != null) {
                            found.add(m);
                        }
                    }
                } catch (NoSuchFileException | java.nio.file.AccessDeniedException gone) {
                    // exited, or not ours to read (the agent runs as root and reads all)
                } catch (IOException e) {
                    if (!String.valueOf(e.getMessage()).contains("No such process")) {
                        throw e;
                    }
                }
            }
        }
        return new MappedFiles(found);
    }

    /** One line of a maps file: {@code start-end perms offset major:minor inode [path]}; null for anonymous ones. */
    static Mapping parse(String line) {
        String[] f = line.trim().split("\\s+", 6);
        if (f.length < 6 || f[4].equals("0")) {
            return null;
        }
        int colon = f[3].indexOf(':');
        if (colon < 0) {
            return null;
        }
        try {
            String path = f[5];
            if (path.endsWith(" (deleted)")) {
                path = path.substring(0, path.length() - " (deleted)".length());
            }
            return new Mapping(Integer.parseInt(f[3].substring(0, colon), 16),
                    Integer.parseInt(f[3].substring(colon + 1), 16), Long.parseLong(f[4]), path);
        } catch (NumberFormatException e) {
            return null;
        }
    }

    public Set<Mapping> mappings() {
        return mappings;
    }

    /** Whether a file (its {@code stat} device and inode, and its path) is mapped by any process. */
    public boolean isMapped(long statDev, long inode, Path path) {
        int major = (int) (((statDev >>> 8) & 0xfff) | ((statDev >>> 32) & ~0xfffL));
        int minor = (int) ((statDev & 0xff) | ((statDev >>> 12) & ~0xffL));
        String p = path.toAbsolutePath().normalize().toString();
        for (Mapping m : mappings) {
            if (m.inode() == inode && ((m.major() == major && m.minor() == minor) || m.path().equals(p))) {
                return true;
            }
        }
        return false;
    }

    /** Whether any regular file under {@code dir} is mapped. */
    public boolean mapsAnythingUnder(Path dir) throws IOException {
        if (mappings.isEmpty() || !Files.isDirectory(dir)) {
            return false;
        }
        try (var walk = Files.walk(dir)) {
            for (Path f : walk.filter(Files::isRegularFile).toList()) {
                var a = Files.readAttributes(f, "unix:dev,ino", java.nio.file.LinkOption.NOFOLLOW_LINKS);
                if (isMapped((Long) a.get("dev"), (Long) a.get("ino"), f)) {
                    return true;
                }
            }
        }
        return false;
    }
}
