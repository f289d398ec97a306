package io.vllmsnap.agent.store;

import io.vllmsnap.agent.Ids;
import io.vllmsnap.agent.api.ImageInfo;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileVisitResult;
import java.nio.file.FileStore;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * Images on node storage, one directory per namespace: {@code <root>/<namespace>/<imageId>}. A snapshot is written
 * into {@code <root>/<namespace>/.partial-<imageId>} and renamed into place only when complete, so a listed image is
 * always whole. Every directory is root-only (0700): an image holds process memory.
 */
public class ImageStore {

    /** Written last into a complete image; its presence is what makes a directory an image. */
    public static final String DESCRIPTOR = "vllmsnap-image.json";
    private static final String PARTIAL_PREFIX = ".partial-";

    private final Path root;

    public ImageStore(Path root) {
        this.root = root;
    }

    public Path root() {
        return root;
    }

    /** The directory of a complete image, validated IDs only. */
    public Path imageDir(String namespace, String imageId) {
        return namespaceDir(namespace).resolve(Ids.dnsLabel("imageId", imageId));
    }

    public Path partialDir(String namespace, String imageId) {
        return namespaceDir(namespace).resolve(PARTIAL_PREFIX + Ids.dnsLabel("imageId", imageId));
    }

    private Path namespaceDir(String namespace) {
        return root.resolve(Ids.dnsLabel("namespace", namespace));
    }

    /** Creates the store root as 0700 (or tightens it to 0700 when it exists). */
    public void ensureRoot() throws IOException {
        createPrivateDirectories(root);
        Files.setPosixFilePermissions(root, PosixFilePermissions.fromString("rwx------"));
    }

    public boolean exists(String namespace, String imageId) {
        return Files.isRegularFile(imageDir(namespace, imageId).resolve(DESCRIPTOR));
    }

    /** Creates an empty partial directory for a new snapshot, removing leftovers of an earlier attempt. */
    public Path startPartial(String namespace, String imageId) throws IOException {
        Path partial = partialDir(namespace, imageId);
        deleteTree(partial);
        createPrivateDirectories(partial);
        return partial;
    }

    /** Records the descriptor and moves a finished partial image into place atomically. */
    public ImageInfo complete(String namespace, String imageId, ImageInfo info) throws IOException {
        Path partial = partialDir(namespace, imageId);
        Json.writeAtomically(partial.resolve(DESCRIPTOR), info);
        Path target = imageDir(namespace, imageId);
        deleteTree(target);
        try {
            Files.move(partial, target, StandardCopyOption.ATOMIC_MOVE);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(partial, target);
        }
        Json.fsyncDirectory(target.getParent());
        return info;
    }

    public void discardPartial(String namespace, String imageId) throws IOException {
        deleteTree(partialDir(namespace, imageId));
    }

    public Optional<ImageInfo> find(String namespace, String imageId) {
        Path descriptor = imageDir(namespace, imageId).resolve(DESCRIPTOR);
        if (!Files.isRegularFile(descriptor)) {
            return Optional.empty();
        }
        try {
            return Optional.of(Json.read(descriptor, ImageInfo.class));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Complete images of one namespace, oldest first. Partial images are never listed. */
    public List<ImageInfo> list(String namespace) {
        Path dir = namespaceDir(namespace);
        if (!Files.isDirectory(dir)) {
            return List.of();
        }
        List<ImageInfo> images = new ArrayList<>();
        try (Stream<Path> entries = Files.list(dir)) {
            for (Path entry : entries.filter(p -> !p.getFileName().toString().startsWith(".")).toList()) {
                find(namespace, entry.getFileName().toString()).ifPresent(images::add);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        images.sort(Comparator.comparing(ImageInfo::createdAt, Comparator.nullsFirst(Comparator.naturalOrder())));
        return images;
    }

    /** Deletes an image; an image that is not there is already deleted. */
    public void delete(String namespace, String imageId) throws IOException {
        deleteTree(imageDir(namespace, imageId));
    }

    /** Bytes still free for images on the file system holding the store (0 when it cannot be read). */
    public long freeBytes() {
        return fileStoreBytes(true);
    }

    /** Size of the file system holding the store (0 when it cannot be read). */
    public long totalBytes() {
        return fileStoreBytes(false);
    }

    private long fileStoreBytes(boolean free) {
        try {
            // the store's root may not exist yet: the nearest existing parent is on the same file system
            Path existing = root;
            while (existing != null && !Files.exists(existing)) {
                existing = existing.getParent();
            }
            if (existing == null) {
                return 0;
            }
            FileStore store = Files.getFileStore(existing);
            return free ? store.getUsableSpace() : store.getTotalSpace();
        } catch (IOException e) {
            return 0;
        }
    }

    public static long sizeOf(Path dir) throws IOException {
        try (Stream<Path> files = Files.walk(dir)) {
            return files.filter(Files::isRegularFile).mapToLong(p -> {
                try {
                    return Files.size(p);
                } catch (IOException e) {
                    return 0;
                }
            }).sum();
        }
    }

    /** Mount points of this process's mount namespace (field 5 of /proc/self/mountinfo, octal escapes decoded). */
    static java.util.Set<Path> mountPoints() throws IOException {
        java.util.Set<Path> points = new java.util.HashSet<>();
        for (String line : Files.readAllLines(Path.of("/proc/self/mountinfo"))) {
            String[] f = line.split(" ");
            if (f.length > 4) {
                points.add(Path.of(f[4].replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n")
                        .replace("\\134", "\\")));
            }
        }
        return points;
    }

    /** Creates the directory and every missing parent below the store root as 0700. */
    private void createPrivateDirectories(Path dir) throws IOException {
        List<Path> missing = new ArrayList<>();
        for (Path p = dir; p != null && !Files.exists(p); p = p.getParent()) {
            missing.addFirst(p);
        }
        for (Path p : missing) {
            Files.createDirectory(p, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
            Files.setPosixFilePermissions(p, PosixFilePermissions.fromString("rwx------"));
        }
    }

    /**
     * Removes a directory tree without ever leaving its file system: a directory on another device (a bind mount
     * left behind by a job cut short, for example of a container's root) is not entered, and the deletion fails
     * instead of reaching into it.
     */
    public static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
            return;
        }
        Object device = Files.getAttribute(dir, "unix:dev", java.nio.file.LinkOption.NOFOLLOW_LINKS);
        java.util.Set<Path> mountPoints = mountPoints();
        List<Path> foreign = new ArrayList<>();
        Files.walkFileTree(dir, new SimpleFileVisitor<>() {
            @Override
            public FileVisitResult preVisitDirectory(Path d, BasicFileAttributes attrs) throws IOException {
                // a bind mount of the same file system has the same device: the mount table tells them apart
                if (!device.equals(Files.getAttribute(d, "unix:dev", java.nio.file.LinkOption.NOFOLLOW_LINKS))
                        || mountPoints.contains(d.toAbsolutePath().normalize())) {
                    foreign.add(d);
                    return FileVisitResult.SKIP_SUBTREE;
                }
                return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) throws IOException {
                Files.deleteIfExists(file);
                return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult postVisitDirectory(Path d, IOException exc) throws IOException {
                if (foreign.stream().noneMatch(f -> f.startsWith(d))) {
                    try {
                        Files.delete(d);
                    } catch (NoSuchFileException ignored) {
                        // removed concurrently: the goal is reached
                    }
                }
                return FileVisitResult.CONTINUE;
            }
        });
        if (!foreign.isEmpty()) {
            throw new IOException("not removing " + foreign + ": another file system is mounted there");
        }
    }
}
