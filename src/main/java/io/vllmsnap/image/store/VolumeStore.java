package io.vllmsnap.image.store;

import io.vllmsnap.image.Digests;
import io.vllmsnap.image.ImageException;
import io.vllmsnap.image.ImageException.Reason;
import io.vllmsnap.image.ImageFiles;
import io.vllmsnap.image.ImageRef;
import io.vllmsnap.image.PrivateFiles;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * The {@code volume} store: a directory every agent mounts (e.g. a ReadWriteMany PersistentVolumeClaim), holding
 * {@code <root>/<namespace>/<image>/} exactly as an image directory. Publishing copies into a hidden directory
 * beside the target and renames it into place when every file is written, synced and hashed, so a reader sees the
 * whole image or none. Restores never map memory from here: a pull copies into the node cache first, so a hiccup of
 * the file server cannot reach a serving replica.
 */
public final class VolumeStore implements ImageStoreBackend {

    public static final String KIND = "volume";
    private static final String PUBLISHING = ".publishing-";
    private static final String DELETING = ".deleting-";

    private final Path root;
    private final int parallelism;

    public VolumeStore(Path root, int parallelism) {
        this.root = root;
        this.parallelism = Math.max(1, parallelism);
    }

    public VolumeStore(Path root) {
        this(root, 4);
    }

    @Override
    public String kind() {
        return KIND;
    }

    @Override
    public boolean shared() {
        return true;
    }

    Path imageDir(ImageRef ref) {
        return root.resolve(ref.namespace()).resolve(ref.name());
    }

    @Override
    public void publish(ImageRef ref, Path imageDir, TransferListener listener) throws ImageException {
        ImageFiles files = readLocalManifest(imageDir);
        byte[] signature = readOrNull(imageDir.resolve(ImageFiles.SIGNATURE));
        if (signature == null) {
            throw new ImageException(Reason.Unsigned, "image " + imageDir + " has no " + ImageFiles.SIGNATURE
                    + ": only signed images are published");
        }
        Path target = imageDir(ref);
        if (sameImageThere(ref, target, files)) {
            listener.progress(files.totalBytes(), files.totalBytes());
            return;
        }
        Path staging = target.resolveSibling(PUBLISHING + ref.name() + "-" + UUID.randomUUID());
        try {
            PrivateFiles.createDirectories(staging);
            for (String d : files.directories()) {
                PrivateFiles.createDirectories(staging.resolve(d));
            }
            copyAll(imageDir, staging, files, listener);
            // manifest and signature last: a staging directory without them is never taken for an image
            PrivateFiles.writeAtomically(staging.resolve(ImageFiles.SIGNATURE), signature);
            PrivateFiles.writeAtomically(staging.resolve(ImageFiles.MANIFEST), files.manifestBytes());
            for (String d : files.directories()) {
                PrivateFiles.fsyncDirectory(staging.resolve(d));
            }
            if (Files.exists(target, LinkOption.NOFOLLOW_LINKS)) {
                delete(ref); // a directory without a manifest: what a crashed delete leaves; never an image
            }
            try {
                Files.move(staging, target, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
            } catch (java.nio.file.FileSystemException raced) {
                // another publisher of the same name was quicker: fine if it is the same image
                if (!sameImageThere(ref, target, files)) {
                    throw raced;
                }
            }
            PrivateFiles.fsyncDirectory(target.getParent());
        } catch (IOException e) {
            throw ioFailure("publishing " + ref + " to " + root, e);
        } finally {
            try {
                PrivateFiles.deleteTree(staging);
            } catch (IOException ignored) {
                // a leftover staging directory is never read as an image; the next publish uses another name
            }
        }
    }

    private boolean sameImageThere(ImageRef ref, Path target, ImageFiles files) throws ImageException {
        byte[] there = readOrNull(target.resolve(ImageFiles.MANIFEST));
        if (there == null) {
            return false;
        }
        if (!java.security.MessageDigest.isEqual(there, files.manifestBytes())) {
            throw new ImageException(Reason.ImageExists, "the volume store already holds another image " + ref
                    + " (images are immutable: delete it first)");
        }
        return true;
    }

    private void copyAll(Path from, Path to, ImageFiles files, TransferListener listener) throws ImageException,
            IOException {
        ProgressReporter progress = new ProgressReporter(listener, files.totalBytes(), 0);
        List<ImageFiles.Entry> work = new ArrayList<>(files.entries().values());
        work.sort(java.util.Comparator.comparingLong(ImageFiles.Entry::size).reversed());
        try (ExecutorService pool = Executors.newFixedThreadPool(Math.min(parallelism, Math.max(1, work.size())),
                Thread.ofPlatform().name("volume-publish-", 0).daemon().factory())) {
            List<Future<Void>> results = new ArrayList<>();
            for (ImageFiles.Entry e : work) {
                results.add(pool.submit(() -> {
                    Path dest = to.resolve(e.path());
                    try (FileChannel out = FileChannel.open(dest, Set.of(StandardOpenOption.CREATE_NEW,
                            StandardOpenOption.WRITE), PrivateFiles.fileMode());
                         Digests.HashingOutputStream hashing = new Digests.HashingOutputStream(
                                 Channels.newOutputStream(out), e.size(),
                                 progress::add)) {
                        copyFile(from.resolve(e.path()), hashing);
                        hashing.flush();
                        if (hashing.count() != e.size() || !hashing.sha256Hex().equals(e.sha256())) {
                            throw new ImageException(hashing.count() < e.size() ? Reason.Truncated : Reason.Tampered,
                                    "local image " + from + ": " + e.path() + " does not match its manifest; not "
                                            + "published");
                        }
                        out.force(true);
                    }
                    return null;
                }));
            }
            for (Future<Void> f : results) {
                try {
                    f.get();
                } catch (java.util.concurrent.ExecutionException ex) {
                    if (ex.getCause() instanceof ImageException ie) {
                        throw ie;
                    }
                    if (ex.getCause() instanceof Digests.TooLongException) {
                        throw new ImageException(Reason.Tampered, "local image " + from + " has a file longer than "
                                + "its manifest records; not published");
                    }
                    if (ex.getCause() instanceof IOException io) {
                        throw io;
                    }
                    throw new IllegalStateException(ex.getCause());
                }
            }
            progress.finish();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        }
    }

    /** Copies a regular file (never through a symbolic link) to a stream. */
    static void copyFile(Path file, OutputStream out) throws IOException {
        try (FileChannel in = FileChannel.open(file, StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS)) {
            ByteBuffer buf = ByteBuffer.allocate(1 << 20);
            while (in.read(buf) >= 0) {
                out.write(buf.array(), 0, buf.position());
                buf.clear();
            }
        }
    }

    @Override
    public RemoteImage open(ImageRef ref) throws ImageException {
        Path dir = imageDir(ref);
        byte[] manifest = readOrNull(dir.resolve(ImageFiles.MANIFEST));
        if (manifest == null) {
            if (!Files.isDirectory(root)) {
                throw new ImageException(Reason.StoreUnavailable, "the volume store " + root + " is not mounted");
            }
            throw new ImageException(Reason.ImageNotFound, "the volume store " + root + " has no image " + ref);
        }
        byte[] signature = readOrNull(dir.resolve(ImageFiles.SIGNATURE));
        return new RemoteImage() {
            @Override
            public byte[] manifest() {
                return manifest.clone();
            }

            @Override
            public byte[] signature() {
                return signature == null ? null : signature.clone();
            }

            @Override
            public void fetch(ImageFiles.Entry entry, OutputStream out) throws ImageException, IOException {
                Path file = dir.resolve(entry.path());
                requireNoLinks(dir, entry.path());
                try {
                    copyFile(file, out);
                } catch (NoSuchFileException e) {
                    throw new ImageException(Reason.MissingFile, "the volume store's image " + ref + " lacks "
                            + entry.path());
                }
            }

            @Override
            public boolean verifiesDigests() {
                return false;
            }
        };
    }

    /** A shared volume is writable by others: a file or directory of an image may not be a link to elsewhere. */
    private static void requireNoLinks(Path dir, String relative) throws ImageException {
        Path p = dir;
        for (String segment : relative.split("/")) {
            p = p.resolve(segment);
            try {
                BasicFileAttributes a = Files.readAttributes(p, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
                if (a.isSymbolicLink() || a.isOther()) {
                    throw new ImageException(Reason.UnexpectedFile, "the volume store's " + p
                            + " is a link or special file; not read");
                }
            } catch (NoSuchFileException e) {
                throw new ImageException(Reason.MissingFile, "the volume store lacks " + p);
            } catch (IOException e) {
                throw new ImageException(Reason.StoreUnavailable, "cannot read " + p + ": " + e.getMessage(), e);
            }
        }
    }

    @Override
    public boolean exists(ImageRef ref) {
        return Files.isRegularFile(imageDir(ref).resolve(ImageFiles.MANIFEST), LinkOption.NOFOLLOW_LINKS);
    }

    @Override
    public void delete(ImageRef ref) throws ImageException {
        Path dir = imageDir(ref);
        if (!Files.exists(dir, LinkOption.NOFOLLOW_LINKS)) {
            return;
        }
        // renamed away first: a puller sees the whole image or none, never a half-deleted one
        Path doomed = dir.resolveSibling(DELETING + ref.name() + "-" + UUID.randomUUID());
        try {
            Files.move(dir, doomed, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
            PrivateFiles.deleteTree(doomed);
        } catch (NoSuchFileException e) {
            // deleted concurrently
        } catch (IOException e) {
            throw ioFailure("deleting " + ref + " from " + root, e);
        }
    }

    private static ImageFiles readLocalManifest(Path imageDir) throws ImageException {
        byte[] bytes = readOrNull(imageDir.resolve(ImageFiles.MANIFEST));
        if (bytes == null) {
            throw new ImageException(Reason.MissingFile, "image " + imageDir + " has no " + ImageFiles.MANIFEST);
        }
        return ImageFiles.parse(bytes);
    }

    private static byte[] readOrNull(Path file) throws ImageException {
        try {
            BasicFileAttributes a = Files.readAttributes(file, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
            if (!a.isRegularFile() || a.size() > ImageFiles.MAX_MANIFEST_BYTES) {
                throw new ImageException(Reason.UnexpectedFile, file + " is not a regular file of a sane size");
            }
            return Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            return null;
        } catch (IOException e) {
            throw new ImageException(Reason.StoreUnavailable, "cannot read " + file + ": " + e.getMessage(), e);
        }
    }

    private static ImageException ioFailure(String what, IOException e) {
        String msg = String.valueOf(e.getMessage());
        if (msg.contains("No space left")) {
            return new ImageException(Reason.NoSpaceLeft, what + " failed: " + msg, e);
        }
        return new ImageException(Reason.StoreUnavailable, what + " failed: " + msg, e);
    }
}
