package io.vllmsnap.image.store;

import io.vllmsnap.image.Digests;
import io.vllmsnap.image.ImageException;
import io.vllmsnap.image.ImageException.Reason;
import io.vllmsnap.image.ImageFiles;
import io.vllmsnap.image.ImageRef;
import io.vllmsnap.image.ImageVerifier;
import io.vllmsnap.image.PrivateFiles;
import io.vllmsnap.image.VerifiedImage;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Brings an image from a store into a local directory, trusting nothing it receives until it is checked:
 * <ol>
 *   <li>the manifest and its signature are fetched and the signature verified before any file is asked for;</li>
 *   <li>files are fetched several at a time into {@code <path>.part}, each refused as soon as it runs longer than
 *       its signed size and checked against its signed SHA-256 as it streams, then renamed to its name;</li>
 *   <li>when every file is there, manifest and signature are written and the directory is stamped as verified
 *       (the bytes were hashed on the way in, so a restore does not read them again).</li>
 * </ol>
 * A pull that fails leaves no half-written file: {@code .part} files are removed. When the store went away
 * ({@code StoreUnavailable}) the files already complete and verified stay, so a restarted pull fetches only the rest
 * (it hashes what it finds again before keeping it); on any other failure the directory is removed.
 */
public final class ImagePuller {

    private static final String PART = ".part";

    private final ImageVerifier verifier;
    private final int parallelism;

    public ImagePuller(ImageVerifier verifier, int parallelism) {
        this.verifier = verifier;
        this.parallelism = Math.max(1, parallelism);
    }

    /** What a pull did. {@code resumedBytes}: complete files kept from an earlier, interrupted attempt. */
    public record Result(VerifiedImage image, long fetchedBytes, long resumedBytes, long nanos) {
    }

    /** Called once the signed file list is known and before any file is fetched (the cache makes room here). */
    @FunctionalInterface
    public interface BeforeFetch {
        void accept(ImageFiles files, long bytesToFetch) throws ImageException;
    }

    /**
     * Pulls {@code ref} into {@code dir} (created 0700, or resumed when an earlier attempt left it) and stamps it in
     * {@code stampFile}. The caller renames {@code dir} into place afterwards.
     */
    public Result pull(ImageStoreBackend store, ImageRef ref, Path dir, Path stampFile, BeforeFetch beforeFetch,
                       TransferListener listener) throws ImageException {
        long start = System.nanoTime();
        boolean keepForResume = false;
        boolean complete = false;
        try (RemoteImage remote = store.open(ref)) {
            ImageVerifier.Signed signed;
            try {
                signed = verifier.checkSignature(remote.manifest(), remote.signature());
            } catch (ImageException e) {
                throw new ImageException(e.reason(), "image " + ref + " in the " + store.kind() + " store: "
                        + e.getMessage(), e);
            }
            ImageFiles files = signed.files();
            PrivateFiles.createDirectories(dir);
            long resumed = keepVerifiedLeftovers(dir, files);
            long total = files.totalBytes();
            beforeFetch.accept(files, total - resumed);
            List<ImageFiles.Entry> missing = new ArrayList<>();
            for (ImageFiles.Entry e : files.entries().values()) {
                if (!Files.exists(dir.resolve(e.path()), LinkOption.NOFOLLOW_LINKS)) {
                    missing.add(e);
                }
            }
            for (String d : files.directories()) {
                PrivateFiles.createDirectories(dir.resolve(d));
            }
            ProgressReporter progress = new ProgressReporter(listener, total, resumed);
            fetchAll(store, ref, remote, dir, missing, progress);
            progress.finish();
            PrivateFiles.writeAtomically(dir.resolve(ImageFiles.SIGNATURE), remote.signature());
            PrivateFiles.writeAtomically(dir.resolve(ImageFiles.MANIFEST), files.manifestBytes());
            for (String d : files.directories()) {
                PrivateFiles.fsyncDirectory(dir.resolve(d));
            }
            VerifiedImage image = verifier.stampWritten(dir, stampFile);
            complete = true;
            return new Result(image, total - resumed, resumed, System.nanoTime() - start);
        } catch (ImageException e) {
            // only a store that went away may come back with the same image: keep what is complete for then
            keepForResume = e.reason() == Reason.StoreUnavailable;
            throw e;
        } catch (IOException e) {
            keepForResume = true;
            throw new ImageException(Reason.NoSpaceLeft.name().equals(reasonOf(e)) ? Reason.NoSpaceLeft
                    : Reason.StoreError, "pulling " + ref + " into " + dir + " failed: " + e.getMessage(), e);
        } finally {
            if (!complete) {
                cleanUp(dir, keepForResume);
            }
        }
    }

    private static String reasonOf(IOException e) {
        return String.valueOf(e.getMessage()).contains("No space left") ? Reason.NoSpaceLeft.name() : "";
    }

    private void fetchAll(ImageStoreBackend store, ImageRef ref, RemoteImage remote, Path dir,
                          List<ImageFiles.Entry> missing, ProgressReporter progress)
            throws ImageException {
        missing.sort(Comparator.comparingLong(ImageFiles.Entry::size).reversed());
        AtomicBoolean stop = new AtomicBoolean();
        AtomicReference<ImageException> first = new AtomicReference<>();
        try (ExecutorService pool = Executors.newFixedThreadPool(Math.min(parallelism, Math.max(1, missing.size())),
                Thread.ofPlatform().name("image-pull-", 0).daemon().factory())) {
            List<Future<?>> results = new ArrayList<>();
            for (ImageFiles.Entry e : missing) {
                results.add(pool.submit(() -> {
                    if (stop.get()) {
                        return;
                    }
                    try {
                        fetchOne(store, ref, remote, dir, e, stop, progress);
                    } catch (ImageException ex) {
                        if (first.compareAndSet(null, ex)) {
                            stop.set(true);
                        }
                    }
                }));
            }
            for (Future<?> f : results) {
                f.get();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new ImageException(Reason.StoreUnavailable, "the pull of " + ref + " was interrupted", e);
        } catch (ExecutionException e) {
            throw new IllegalStateException(e.getCause());
        }
        if (first.get() != null) {
            throw first.get();
        }
    }

    private static void fetchOne(ImageStoreBackend store, ImageRef ref, RemoteImage remote, Path dir,
                                 ImageFiles.Entry e, AtomicBoolean stop, ProgressReporter reporter)
            throws ImageException {
        Path part = dir.resolve(e.path() + PART);
        Path dest = dir.resolve(e.path());
        String where = "image " + ref + " in the " + store.kind() + " store: " + e.path();
        long[] counted = {0};
        try {
            Files.deleteIfExists(part);
            try (FileChannel ch = FileChannel.open(part, Set.of(StandardOpenOption.CREATE_NEW,
                    StandardOpenOption.WRITE), PrivateFiles.fileMode())) {
                OutputStream file = new StopAware(new BufferedOutputStream(Channels.newOutputStream(ch), 1 << 20),
                        stop);
                java.util.function.LongConsumer progress = n -> {
                    counted[0] += n;
                    reporter.add(n);
                };
                String hash = null;
                if (remote.verifiesDigests()) {
                    var counting = new Digests.CountingOutputStream(file, e.size(), progress);
                    remote.fetch(e, counting);
                    counting.flush();
                } else {
                    var hashing = new Digests.HashingOutputStream(file, e.size(), progress);
                    remote.fetch(e, hashing);
                    hashing.flush();
                    hash = hashing.sha256Hex();
                }
                if (counted[0] < e.size()) {
                    throw new ImageException(Reason.Truncated, where + " ended after " + counted[0]
                            + " bytes; the signed manifest records " + e.size());
                }
                if (hash != null && !hash.equals(e.sha256())) {
                    throw new ImageException(Reason.Tampered, where + " does not have the SHA-256 the signed "
                            + "manifest records");
                }
                ch.force(true);
            }
            Files.move(part, dest, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
        } catch (Cancelled c) {
            reporter.takeBack(counted[0]);
            throw new ImageException(Reason.StoreError, where + ": stopped because another file failed");
        } catch (Digests.TooLongException tooLong) {
            reporter.takeBack(counted[0]);
            throw new ImageException(Reason.Tampered, where + " is longer than the " + e.size()
                    + " bytes the signed manifest records");
        } catch (ImageException ex) {
            reporter.takeBack(counted[0]);
            throw ex;
        } catch (IOException ex) {
            reporter.takeBack(counted[0]);
            if (String.valueOf(ex.getMessage()).contains("No space left")) {
                throw new ImageException(Reason.NoSpaceLeft, where + ": " + ex.getMessage(), ex);
            }
            throw new ImageException(Reason.StoreUnavailable, where + ": the transfer broke off after "
                    + counted[0] + " of " + e.size() + " bytes (" + ex + ")", ex);
        } finally {
            try {
                Files.deleteIfExists(part);
            } catch (IOException ignored) {
                // the pull's clean-up removes it
            }
        }
    }

    /** Ends a fetch early because another one failed (an I/O error, so it passes through any client library). */
    private static final class Cancelled extends IOException {
        Cancelled() {
            super("cancelled: another file of the pull failed");
        }
    }

    private static final class StopAware extends java.io.FilterOutputStream {
        private final AtomicBoolean stop;

        StopAware(OutputStream out, AtomicBoolean stop) {
            super(out);
            this.stop = stop;
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
            if (stop.get()) {
                throw new Cancelled();
            }
            out.write(b, off, len);
        }

        @Override
        public void write(int b) throws IOException {
            write(new byte[] {(byte) b}, 0, 1);
        }
    }

    /**
     * Keeps the files an interrupted pull completed, if they still hash to the signed digests, and removes
     * everything else (half-written parts, stale manifests, files not listed). Returns the bytes kept.
     */
    private static long keepVerifiedLeftovers(Path dir, ImageFiles files) throws IOException {
        long[] kept = {0};
        Files.walkFileTree(dir, new SimpleFileVisitor<>() {
            @Override
            public FileVisitResult visitFile(Path f, BasicFileAttributes attrs) throws IOException {
                String rel = dir.relativize(f).toString().replace(java.io.File.separatorChar, '/');
                ImageFiles.Entry e = files.get(rel);
                if (e != null && attrs.isRegularFile() && attrs.size() == e.size()
                        && Digests.sha256(f, e.size(), n -> { }).sha256().equals(e.sha256())) {
                    kept[0] += e.size();
                } else {
                    Files.delete(f);
                }
                return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult postVisitDirectory(Path d, IOException exc) throws IOException {
                if (!d.equals(dir) && !files.directories().contains(dir.relativize(d).toString())) {
                    PrivateFiles.deleteTree(d);
                }
                return FileVisitResult.CONTINUE;
            }
        });
        return kept[0];
    }

    /** After a pull: no {@code .part} file ever stays; the whole directory goes unless it is kept to resume. */
    private static void cleanUp(Path dir, boolean keepForResume) {
        try {
            if (!keepForResume) {
                PrivateFiles.deleteTree(dir);
                return;
            }
            if (Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS)) {
                try (var walk = Files.walk(dir)) {
                    for (Path p : walk.filter(p -> p.getFileName().toString().endsWith(PART)).toList()) {
                        Files.deleteIfExists(p);
                    }
                }
            }
        } catch (IOException ignored) {
            // the cache removes stale partial directories when it starts
        }
    }
}
