package io.vllmsnap.image;

import java.io.IOException;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.Map;

/**
 * What a file is on disk, as far as a verification stamp cares: device, inode, size, modification and status-change
 * times (nanoseconds). Any write to the file changes its mtime and ctime; ctime cannot be set back by anyone short
 * of changing the clock as root, so an unchanged identity means unchanged bytes. Replacing the file changes its inode.
 */
public record FileIdentity(long dev, long ino, long size, long mtimeNanos, long ctimeNanos) {

    /** The identity of a path itself (a symbolic link is not followed). */
    public static FileIdentity of(Path file) throws IOException {
        Map<String, Object> a = java.nio.file.Files.readAttributes(file, "unix:dev,ino,size,lastModifiedTime,ctime",
                LinkOption.NOFOLLOW_LINKS);
        return new FileIdentity((Long) a.get("dev"), (Long) a.get("ino"), (Long) a.get("size"),
                nanos((FileTime) a.get("lastModifiedTime")), nanos((FileTime) a.get("ctime")));
    }

    private static long nanos(FileTime t) {
        java.time.Instant i = t.toInstant();
        return i.getEpochSecond() * 1_000_000_000L + i.getNano();
    }
}
