package io.vllmsnap.image.cache;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.vllmsnap.image.ImageException;
import io.vllmsnap.image.ImageException.Reason;
import io.vllmsnap.image.ImageRef;
import io.vllmsnap.image.ImageVerifier;
import io.vllmsnap.image.PrivateFiles;
import io.vllmsnap.image.VerifiedImage;
import io.vllmsnap.image.store.ImagePuller;
import io.vllmsnap.image.store.ImageStoreBackend;
import io.vllmsnap.image.store.TransferListener;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The images on one node, the only place restores read from. Layout under {@code root} (every directory 0700):
 * <pre>
 * &lt;namespace&gt;/&lt;image&gt;/                 complete images (manifest.json, manifest.json.sig, the listed files)
 * .pulling/&lt;namespace&gt;/&lt;image&gt;/        pulls in progress (kept after a broken connection, to resume)
 * .writing/&lt;namespace&gt;/&lt;image&gt;/        snapshots being written on this node
 * .meta/&lt;namespace&gt;/&lt;image&gt;.json       where the image is stored too and its size; mtime = last use
 * .meta/&lt;namespace&gt;/&lt;image&gt;.verified  the verification stamp
 * .deleting/                          images being removed (renamed here first, so none is seen half-deleted)
 * </pre>
 * A restore {@link #acquire}s its image: a copy on the node is verified (signature, file set, and the digests
 * unless its stamp vouches for it), a missing one is pulled from the store, and either way it comes back pinned.
 * The cache keeps under {@code maxBytes} by evicting least recently used images, but only those a shared store also
 * holds, that no job pins and that no running process maps; images of the {@code node} store are the only copy and
 * are never evicted. A restore can only name images of its own namespace: the namespace is part of every path.
 */
public final class NodeImageCache {

    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path root;
    private final long maxBytes;
    private final ImageVerifier verifier;
    private final ImagePuller puller;
    private final Path procRoot;
    private final CacheMetrics metrics;
    private final Map<ImageRef, Integer> pins = new HashMap<>();
    private final Map<ImageRef, Long> reservations = new HashMap<>();
    private final ConcurrentHashMap<ImageRef, ReentrantLock> locks = new ConcurrentHashMap<>();

    /** What the cache records beside an image. {@code store}: the kind of shared store holding it too, or null. */
    @JsonIgnoreProperties(ignoreUnknown = true)
    record State(String store, long sizeBytes) {
    }

    /** One image in the cache, as listed. */
    public record Entry(ImageRef ref, long sizeBytes, Instant lastUsed, String store, boolean pinned) {
    }

    public NodeImageCache(Path root, long maxBytes, ImageVerifier verifier, ImagePuller puller, Path procRoot,
                          CacheMetrics metrics) throws IOException {
        this.root = root;
        this.maxBytes = maxBytes;
        this.verifier = verifier;
        this.puller = puller;
        this.procRoot = procRoot;
        this.metrics = metrics;
        PrivateFiles.createDirectories(root);
        Files.setPosixFilePermissions(root, PrivateFiles.DIR_MODE);
    }

    public Path root() {
        return root;
    }

    public long maxBytes() {
        return maxBytes;
    }

    public CacheMetrics metrics() {
        return metrics;
    }

    public Path imageDir(ImageRef ref) {
        return root.resolve(ref.namespace()).resolve(ref.name());
    }

    private Path pullingDir(ImageRef ref) {
        return root.resolve(".pulling").resolve(ref.namespace()).resolve(ref.name());
    }

    private Path writingDir(ImageRef ref) {
        return root.resolve(".writing").resolve(ref.namespace()).resolve(ref.name());
    }

    private Path stateFile(ImageRef ref) {
        return root.resolve(".meta").resolve(ref.namespace()).resolve(ref.name() + ".json");
    }

    private Path stampFile(ImageRef ref) {
        return root.resolve(".meta").resolve(ref.namespace()).resolve(ref.name() + ".verified");
    }

    public boolean contains(ImageRef ref) {
        return Files.isRegularFile(imageDir(ref).resolve(io.vllmsnap.image.ImageFiles.MANIFEST),
                LinkOption.NOFOLLOW_LINKS);
    }

    /**
     * A complete, verified, pinned copy of {@code ref} on this node, pulled from {@code store} when missing (or when
     * the copy here fails verification and the store can give it again). Close the result when the job ends.
     */
    public CachedImage acquire(ImageRef ref, ImageStoreBackend store, TransferListener listener)
            throws ImageException {
        ImagePin pin = pin(ref);
        ReentrantLock lock = locks.computeIfAbsent(ref, r -> new ReentrantLock());
        lock.lock();
        try {
            if (contains(ref)) {
                try {
                    VerifiedImage v = verifier.verify(imageDir(ref), stampFile(ref));
                    countVerification(v);
                    touch(ref);
                    metrics.hits.increment();
                    return new CachedImage(ref, imageDir(ref), v, true, Optional.empty(), pin);
                } catch (ImageException e) {
                    if (!store.shared() || !isDamage(e.reason())) {
                        throw e; // the only copy, or nothing a new pull would mend: refuse, never destroy it
                    }
                    removeImage(ref); // damaged here, whole in the store: fetch it again
                }
            }
            metrics.misses.increment();
            if (!store.shared()) {
                throw new ImageException(Reason.ImageNotFound, "image " + ref + " is not on this node, and the "
                        + store.kind() + " store keeps it nowhere else");
            }
            ImagePuller.Result r = pull(ref, store, listener);
            return new CachedImage(ref, imageDir(ref), r.image().withDir(imageDir(ref)), false, Optional.of(r), pin);
        } catch (ImageException | RuntimeException e) {
            pin.close();
            throw e;
        } finally {
            lock.unlock();
        }
    }

    private static boolean isDamage(Reason r) {
        return switch (r) {
            case Tampered, Truncated, MissingFile, UnexpectedFile -> true;
            default -> false;
        };
    }

    private ImagePuller.Result pull(ImageRef ref, ImageStoreBackend store, TransferListener listener)
            throws ImageException {
        metrics.pulls.increment();
        Path partial = pullingDir(ref);
        long[] reserved = {0};
        try {
            ImagePuller.Result r = puller.pull(store, ref, partial, stampFile(ref), (files, toFetch) -> {
                reserved[0] = files.totalBytes();
                makeRoom(ref, files.totalBytes(), toFetch);
            }, listener);
            metrics.pullBytes.add(r.fetchedBytes());
            metrics.pullNanos.add(r.nanos());
            Path target = imageDir(ref);
            try {
                PrivateFiles.createDirectories(target.getParent());
                writeState(ref, new State(store.kind(), r.image().files().totalBytes()
                        + r.image().files().manifestBytes().length));
                PrivateFiles.moveAtomically(partial, target);
                PrivateFiles.fsyncDirectory(target.getParent());
            } catch (IOException e) {
                throw new ImageException(Reason.NoSpaceLeft, "cannot put the pulled image " + ref + " in place: "
                        + e.getMessage(), e);
            }
            return r;
        } catch (ImageException e) {
            metrics.pullFailures.increment();
            throw e;
        } finally {
            synchronized (this) {
                reservations.remove(ref);
            }
        }
    }

    /** Starts a snapshot written on this node: an empty private directory, leftovers of an earlier try removed. */
    public Path startLocal(ImageRef ref) throws ImageException {
        Path dir = writingDir(ref);
        try {
            PrivateFiles.deleteTree(dir);
            PrivateFiles.createDirectories(dir);
        } catch (IOException e) {
            throw new ImageException(Reason.NoSpaceLeft, "cannot start image " + ref + ": " + e.getMessage(), e);
        }
        return dir;
    }

    /**
     * Puts a snapshot written on this node (manifest and signature included) in place and stamps it without
     * reading it again: its writer hashed the files as it wrote them. It counts as stored nowhere else until
     * {@link #published} says otherwise, so it is never evicted before.
     */
    public VerifiedImage commitLocal(ImageRef ref) throws ImageException {
        Path dir = writingDir(ref);
        VerifiedImage v = verifier.stampWritten(dir, stampFile(ref));
        Path target = imageDir(ref);
        if (contains(ref)) {
            throw new ImageException(Reason.ImageExists, "image " + ref + " is already on this node");
        }
        try {
            writeState(ref, new State(null, v.files().totalBytes() + v.files().manifestBytes().length));
            PrivateFiles.createDirectories(target.getParent());
            PrivateFiles.moveAtomically(dir, target);
            PrivateFiles.fsyncDirectory(target.getParent());
        } catch (IOException e) {
            throw new ImageException(Reason.NoSpaceLeft, "cannot put image " + ref + " in place: " + e.getMessage(), e);
        }
        return v.withDir(target);
    }

    /** Removes a snapshot that failed while being written. */
    public void discardLocal(ImageRef ref) throws IOException {
        PrivateFiles.deleteTree(writingDir(ref));
    }

    /** Records that a shared store now holds the image too: from now on it may be evicted (and pulled again). */
    public void published(ImageRef ref, ImageStoreBackend store) throws ImageException {
        if (!store.shared()) {
            return;
        }
        State s = readState(ref).orElseThrow(() -> new ImageException(Reason.ImageNotFound, "image " + ref
                + " is not on this node"));
        try {
            Instant used = lastUsed(ref);
            writeState(ref, new State(store.kind(), s.sizeBytes()));
            Files.setLastModifiedTime(stateFile(ref), FileTime.from(used)); // publishing is no use of the image
        } catch (IOException e) {
            throw new ImageException(Reason.NoSpaceLeft, "cannot record the publication of " + ref, e);
        }
    }

    /** Holds an image against eviction and deletion until the pin is closed. */
    public synchronized ImagePin pin(ImageRef ref) {
        pins.merge(ref, 1, Integer::sum);
        return new ImagePin(ref, this);
    }

    synchronized void unpin(ImageRef ref) {
        pins.computeIfPresent(ref, (r, n) -> n == 1 ? null : n - 1);
    }

    public synchronized boolean isPinned(ImageRef ref) {
        return pins.containsKey(ref);
    }

    /**
     * Deletes the node's copy (its VllmSnapshot went away). {@code ImageInUse} while a job pins it; a process that
     * maps its files keeps running (the inodes live until it exits). A missing image is already deleted.
     */
    public void delete(ImageRef ref) throws ImageException {
        ReentrantLock lock = locks.computeIfAbsent(ref, r -> new ReentrantLock());
        lock.lock();
        try {
            synchronized (this) {
                if (pins.containsKey(ref)) {
                    throw new ImageException(Reason.ImageInUse, "image " + ref + " is in use by a job on this node");
                }
            }
            removeImage(ref);
            PrivateFiles.deleteTree(pullingDir(ref));
        } catch (IOException e) {
            throw new ImageException(Reason.StoreError, "cannot delete image " + ref + ": " + e.getMessage(), e);
        } finally {
            lock.unlock();
        }
    }

    /** Renames the image away (atomically), forgets its state and stamp, then deletes its files. */
    private void removeImage(ImageRef ref) throws ImageException {
        Path dir = imageDir(ref);
        try {
            Path doomed = root.resolve(".deleting").resolve(UUID.randomUUID().toString());
            PrivateFiles.createDirectories(doomed.getParent());
            try {
                Files.move(dir, doomed, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
            } catch (NoSuchFileException e) {
                doomed = null;
            }
            Files.deleteIfExists(stampFile(ref));
            Files.deleteIfExists(stateFile(ref));
            if (doomed != null) {
                PrivateFiles.deleteTree(doomed);
            }
        } catch (IOException e) {
            throw new ImageException(Reason.StoreError, "cannot remove image " + ref + " from the cache: "
                    + e.getMessage(), e);
        }
    }

    /** Complete images of one namespace, least recently used first. */
    public List<Entry> list(String namespace) {
        return list().stream().filter(e -> e.ref().namespace().equals(namespace)).toList();
    }

    /** Every complete image, least recently used first. */
    public List<Entry> list() {
        List<Entry> entries = new ArrayList<>();
        try (DirectoryStream<Path> namespaces = Files.newDirectoryStream(root,
                p -> !p.getFileName().toString().startsWith("."))) {
            for (Path ns : namespaces) {
                try (DirectoryStream<Path> images = Files.newDirectoryStream(ns)) {
                    for (Path img : images) {
                        ImageRef ref;
                        try {
                            ref = new ImageRef(ns.getFileName().toString(), img.getFileName().toString());
                        } catch (IllegalArgumentException notOurs) {
                            continue;
                        }
                        if (!contains(ref)) {
                            continue;
                        }
                        State s = readState(ref).orElse(null);
                        long size = s != null ? s.sizeBytes() : PrivateFiles.treeBytes(img);
                        entries.add(new Entry(ref, size, lastUsed(ref), s == null ? null : s.store(), isPinned(ref)));
                    }
                }
            }
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        entries.sort(Comparator.comparing(Entry::lastUsed).thenComparing(e -> e.ref().toString()));
        return entries;
    }

    /** Bytes of complete images plus the room reserved by pulls in progress. */
    public synchronized long sizeBytes() {
        return list().stream().mapToLong(Entry::sizeBytes).sum()
                + reservations.values().stream().mapToLong(Long::longValue).sum();
    }

    /**
     * Makes room for {@code bytes} more under the limit, evicting least recently used images that a shared store
     * also holds and that nothing pins or maps; reserves the room for the pull of {@code ref}.
     */
    synchronized void makeRoom(ImageRef ref, long bytes, long bytesToFetch) throws ImageException {
        List<Entry> entries = list();
        long used = entries.stream().filter(e -> !e.ref().equals(ref)).mapToLong(Entry::sizeBytes).sum()
                + reservations.values().stream().mapToLong(Long::longValue).sum();
        if (bytes > maxBytes) {
            throw new ImageException(Reason.CacheFull, "image " + ref + " has " + bytes + " bytes, more than the "
                    + "cache's limit of " + maxBytes);
        }
        MappedFiles mapped = null;
        int pinned = 0;
        int mappedCount = 0;
        int onlyCopy = 0;
        for (Entry e : entries) {
            if (used + bytes <= maxBytes) {
                break;
            }
            if (e.ref().equals(ref)) {
                continue;
            }
            if (e.pinned()) {
                pinned++;
                continue;
            }
            if (e.store() == null) {
                onlyCopy++;
                continue;
            }
            try {
                if (mapped == null) {
                    mapped = MappedFiles.scan(procRoot);
                }
                if (mapped.mapsAnythingUnder(imageDir(e.ref()))) {
                    mappedCount++;
                    continue;
                }
            } catch (IOException ex) {
                throw new ImageException(Reason.CacheFull, "cannot tell which images running processes map ("
                        + ex.getMessage() + "), so none is evicted", ex);
            }
            removeImage(e.ref());
            used -= e.sizeBytes();
            metrics.evictions.increment();
            metrics.evictedBytes.add(e.sizeBytes());
        }
        if (used + bytes > maxBytes) {
            throw new ImageException(Reason.CacheFull, "no room for image " + ref + " (" + bytes + " bytes) in the "
                    + "cache of " + maxBytes + " bytes: " + (maxBytes - used) + " free; not evicted: " + pinned
                    + " in use by jobs, " + mappedCount + " mapped by running processes, " + onlyCopy
                    + " stored nowhere else");
        }
        long usable = usableBytes();
        if (usable >= 0 && usable < bytesToFetch) {
            throw new ImageException(Reason.NoSpaceLeft, "the file system of " + root + " has " + usable
                    + " bytes free; image " + ref + " needs " + bytesToFetch + " more");
        }
        reservations.put(ref, bytes);
    }

    private long usableBytes() {
        try {
            return Files.getFileStore(root).getUsableSpace();
        } catch (IOException e) {
            return -1;
        }
    }

    /**
     * After an agent restart: snapshots that were being written are removed; interrupted pulls keep their complete
     * files (to resume) but lose any half-written part; directories being deleted are deleted.
     */
    public void recover() throws IOException {
        PrivateFiles.deleteTree(root.resolve(".writing"));
        PrivateFiles.deleteTree(root.resolve(".deleting"));
        Path pulling = root.resolve(".pulling");
        if (Files.isDirectory(pulling)) {
            try (var walk = Files.walk(pulling)) {
                for (Path p : walk.filter(p -> p.getFileName().toString().endsWith(".part")).toList()) {
                    Files.deleteIfExists(p);
                }
            }
        }
    }

    private void touch(ImageRef ref) {
        try {
            Files.setLastModifiedTime(stateFile(ref), FileTime.from(Instant.now()));
        } catch (IOException e) {
            // only the eviction order suffers
        }
    }

    private Instant lastUsed(ImageRef ref) {
        try {
            return Files.getLastModifiedTime(stateFile(ref)).toInstant();
        } catch (IOException e) {
            return Instant.EPOCH; // no state: an image from before the cache: oldest
        }
    }

    private Optional<State> readState(ImageRef ref) {
        try {
            return Optional.of(JSON.readValue(Files.readAllBytes(stateFile(ref)), State.class));
        } catch (IOException e) {
            return Optional.empty();
        }
    }

    private void writeState(ImageRef ref, State s) throws IOException {
        Path f = stateFile(ref);
        PrivateFiles.createDirectories(f.getParent());
        PrivateFiles.writeAtomically(f, JSON.writeValueAsBytes(s));
    }

    private void countVerification(VerifiedImage v) {
        if (!v.fromStamp()) {
            metrics.verifications.increment();
            metrics.verifiedBytes.add(v.hashedBytes());
        }
    }
}
