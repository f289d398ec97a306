package io.vllmsnap.image;

import io.vllmsnap.image.ImageException.Reason;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Decides whether an image directory may be used, before CRIU reads a byte of it. In order:
 * <ol>
 *   <li>the signature: {@code manifest.json.sig} must exist ({@code Unsigned}) and verify over the manifest's exact
 *       bytes with a trusted key ({@code BadSignature}); only then is the manifest parsed ({@code InvalidManifest});</li>
 *   <li>the file set: exactly the listed files as regular files, no symbolic link, no other file or directory
 *       ({@code MissingFile}, {@code UnexpectedFile});</li>
 *   <li>sizes: shorter is {@code Truncated}, longer is {@code Tampered};</li>
 *   <li>contents: every file's SHA-256, several files at once on {@code threads} readers ({@code Tampered}).</li>
 * </ol>
 * With a stamp file, a copy verified before whose files are all unchanged ({@link VerificationStamp}) skips step 4:
 * a restore then costs a signature check and a {@code stat} per file instead of reading the whole image.
 */
public final class ImageVerifier {

    private final TrustedKeys keys;
    private final int threads;

    public ImageVerifier(TrustedKeys keys, int threads) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be at least 1");
        }
        this.keys = keys;
        this.threads = threads;
    }

    /** One reader per core, at most 4: beyond that the disk, not SHA-256, is usually the limit. */
    public ImageVerifier(TrustedKeys keys) {
        this(keys, Math.max(1, Math.min(4, Runtime.getRuntime().availableProcessors())));
    }

    public TrustedKeys keys() {
        return keys;
    }

    /** Verifies everything, hashing every file. */
    public VerifiedImage verify(Path dir) throws ImageException {
        return verify(dir, null);
    }

    /**
     * Verifies, skipping the hashes when {@code stampFile} vouches for the copy as it is now; after a full
     * verification the stamp is (re)written. {@code stampFile} null: always hash, write nothing.
     */
    public VerifiedImage verify(Path dir, Path stampFile) throws ImageException {
        long start = System.nanoTime();
        Signed signed = checkSignature(dir);
        checkFileSet(dir, signed.files());
        if (stampFile != null) {
            var stamp = VerificationStamp.read(stampFile);
            if (stamp.isPresent() && stamp.get().matches(dir, signed.files(), signed.keyId())) {
                return new VerifiedImage(dir, signed.files(), signed.keyId(), true, 0, System.nanoTime() - start);
            }
        }
        var before = identities(dir, signed.files());
        checkSizes(dir, signed.files());
        long hashed = hashAll(dir, signed.files());
        var after = identities(dir, signed.files());
        if (!before.equals(after)) {
            throw new ImageException(Reason.Tampered, "image " + dir + " changed while it was being verified");
        }
        if (stampFile != null) {
            writeStamp(stampFile, signed, after);
        }
        return new VerifiedImage(dir, signed.files(), signed.keyId(), false, hashed, System.nanoTime() - start);
    }

    /**
     * Stamps an image whose files this process has just written and checked as it wrote them (a pull that verified
     * every digest while streaming, or a snapshot the engine hashed while dumping), so the bytes need not be read a
     * second time. Signature, file set and sizes are still checked here.
     */
    public VerifiedImage stampWritten(Path dir, Path stampFile) throws ImageException {
        long start = System.nanoTime();
        Signed signed = checkSignature(dir);
        checkFileSet(dir, signed.files());
        checkSizes(dir, signed.files());
        writeStamp(stampFile, signed, identities(dir, signed.files()));
        return new VerifiedImage(dir, signed.files(), signed.keyId(), false, 0, System.nanoTime() - start);
    }

    /** A signature check of manifest bytes from elsewhere (a registry, a shared volume) before anything is fetched. */
    public Signed checkSignature(byte[] manifest, byte[] signature) throws ImageException {
        if (signature == null) {
            throw new ImageException(Reason.Unsigned, "the image has no " + ImageFiles.SIGNATURE
                    + ": unsigned images are never restored");
        }
        String keyId = keys.verify(manifest, signature);
        return new Signed(ImageFiles.parse(manifest), keyId);
    }

    /** A manifest whose signature verified, parsed. */
    public record Signed(ImageFiles files, String keyId) {
    }

    private Signed checkSignature(Path dir) throws ImageException {
        if (!Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS)) {
            throw new ImageException(Reason.MissingFile, "image " + dir + " is not there (or is not a directory)");
        }
        byte[] manifest = readSmall(dir.resolve(ImageFiles.MANIFEST), ImageFiles.MAX_MANIFEST_BYTES);
        if (manifest == null) {
            throw new ImageException(Reason.MissingFile, "image " + dir + " has no " + ImageFiles.MANIFEST);
        }
        byte[] signature = readSmall(dir.resolve(ImageFiles.SIGNATURE), 64 << 10);
        try {
            return checkSignature(manifest, signature);
        } catch (ImageException e) {
            throw new ImageException(e.reason(), "image " + dir + ": " + e.getMessage());
        }
    }

    /** A small regular file's bytes, null when it is missing; a link or an oversized file is refused. */
    private static byte[] readSmall(Path file, int max) throws ImageException {
        try {
            BasicFileAttributes a = Files.readAttributes(file, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
            if (!a.isRegularFile()) {
                throw new ImageException(Reason.UnexpectedFile, file + " is not a regular file");
            }
            if (a.size() > max) {
                throw new ImageException(Reason.InvalidManifest, file + " has " + a.size() + " bytes, more than "
                        + max);
            }
            return Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            return null;
        } catch (IOException e) {
            throw new ImageException(Reason.MissingFile, file + " cannot be read: " + e.getMessage(), e);
        }
    }

    private static void checkFileSet(Path dir, ImageFiles files) throws ImageException {
        Set<String> wantedDirs = new HashSet<>(files.directories());
        Set<String> found = new TreeSet<>();
        List<String> unexpected = new ArrayList<>();
        try {
            Files.walkFileTree(dir, new SimpleFileVisitor<>() {
                @Override
                public FileVisitResult preVisitDirectory(Path d, BasicFileAttributes attrs) {
                    String rel = relative(dir, d);
                    if (!rel.isEmpty() && !wantedDirs.contains(rel)) {
                        unexpected.add(rel + "/ (a directory the manifest does not list)");
                        return FileVisitResult.SKIP_SUBTREE;
                    }
                    return FileVisitResult.CONTINUE;
                }

                @Override
                public FileVisitResult visitFile(Path f, BasicFileAttributes attrs) {
                    String rel = relative(dir, f);
                    if (attrs.isSymbolicLink()) {
                        unexpected.add(rel + " (a symbolic link)");
                    } else if (!attrs.isRegularFile()) {
                        unexpected.add(rel + " (not a regular file)");
                    } else if (rel.equals(ImageFiles.MANIFEST) || rel.equals(ImageFiles.SIGNATURE)) {
                        return FileVisitResult.CONTINUE;
                    } else if (files.get(rel) == null) {
                        unexpected.add(rel + " (not listed in the manifest)");
                    } else {
                        found.add(rel);
                    }
                    return FileVisitResult.CONTINUE;
                }
            });
        } catch (IOException e) {
            throw new ImageException(Reason.MissingFile, "image " + dir + " cannot be listed: " + e.getMessage(), e);
        }
        if (!unexpected.isEmpty()) {
            unexpected.sort(null);
            throw new ImageException(Reason.UnexpectedFile, "image " + dir + " holds " + unexpected.getFirst()
                    + (unexpected.size() > 1 ? " and " + (unexpected.size() - 1) + " more" : ""));
        }
        for (String p : new TreeSet<>(files.entries().keySet())) {
            if (!found.contains(p)) {
                throw new ImageException(Reason.MissingFile, "image " + dir + " lacks " + p
                        + ", which the manifest lists");
            }
        }
    }

    private static String relative(Path dir, Path p) {
        return dir.relativize(p).toString().replace(java.io.File.separatorChar, '/');
    }

    private static void checkSizes(Path dir, ImageFiles files) throws ImageException {
        for (ImageFiles.Entry e : sorted(files)) {
            long size;
            try {
                size = Files.size(dir.resolve(e.path()));
            } catch (IOException ex) {
                throw new ImageException(Reason.MissingFile, "image " + dir + ": " + e.path() + " cannot be read: "
                        + ex.getMessage(), ex);
            }
            if (size < e.size()) {
                throw new ImageException(Reason.Truncated, "image " + dir + ": " + e.path() + " has " + size
                        + " bytes, the manifest records " + e.size());
            }
            if (size > e.size()) {
                throw new ImageException(Reason.Tampered, "image " + dir + ": " + e.path() + " has " + size
                        + " bytes, more than the " + e.size() + " the manifest records");
            }
        }
    }

    private static List<ImageFiles.Entry> sorted(ImageFiles files) {
        List<ImageFiles.Entry> l = new ArrayList<>(files.entries().values());
        l.sort(Comparator.comparing(ImageFiles.Entry::path));
        return l;
    }

    /** Hashes every file, biggest first so the readers finish together; the first mismatch stops the others. */
    private long hashAll(Path dir, ImageFiles files) throws ImageException {
        List<ImageFiles.Entry> work = new ArrayList<>(files.entries().values());
        work.sort(Comparator.comparingLong(ImageFiles.Entry::size).reversed());
        AtomicBoolean stop = new AtomicBoolean();
        AtomicLong hashed = new AtomicLong();
        List<Future<ImageException>> results = new ArrayList<>();
        try (ExecutorService pool = Executors.newFixedThreadPool(Math.min(threads, Math.max(1, work.size())),
                Thread.ofPlatform().name("image-verify-", 0).daemon().factory())) {
            for (ImageFiles.Entry e : work) {
                results.add(pool.submit(() -> hashOne(dir, e, stop, hashed)));
            }
            List<ImageException> failures = new ArrayList<>();
            for (Future<ImageException> f : results) {
                ImageException problem = f.get();
                if (problem != null) {
                    failures.add(problem);
                }
            }
            if (!failures.isEmpty()) {
                failures.sort(Comparator.comparing(Throwable::getMessage));
                throw failures.getFirst();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new ImageException(Reason.StoreError, "verification of " + dir + " was interrupted", e);
        } catch (ExecutionException e) {
            throw new IllegalStateException(e.getCause());
        }
        return hashed.get();
    }

    private static ImageException hashOne(Path dir, ImageFiles.Entry e, AtomicBoolean stop, AtomicLong hashed) {
        if (stop.get()) {
            return null;
        }
        try {
            Digests.FileDigest d = Digests.sha256(dir.resolve(e.path()), e.size(), n -> {
                hashed.addAndGet(n);
                if (stop.get()) {
                    throw new Stopped();
                }
            });
            if (d.size() < e.size()) {
                stop.set(true);
                return new ImageException(Reason.Truncated, "image " + dir + ": " + e.path() + " ended after "
                        + d.size() + " bytes, the manifest records " + e.size());
            }
            if (d.size() > e.size() || !d.sha256().equals(e.sha256())) {
                stop.set(true);
                return new ImageException(Reason.Tampered, "image " + dir + ": " + e.path()
                        + " does not have the SHA-256 the signed manifest records");
            }
            return null;
        } catch (Stopped s) {
            return null;
        } catch (IOException ex) {
            stop.set(true);
            return new ImageException(Reason.MissingFile, "image " + dir + ": " + e.path() + " cannot be read: "
                    + ex.getMessage(), ex);
        }
    }

    /** Ends one reader early because another found a problem. */
    private static final class Stopped extends RuntimeException {
        Stopped() {
            super(null, null, false, false);
        }
    }

    private static java.util.Map<String, FileIdentity> identities(Path dir, ImageFiles files) throws ImageException {
        try {
            return VerificationStamp.identities(dir, files);
        } catch (IOException e) {
            throw new ImageException(Reason.MissingFile, "image " + dir + " changed while it was being verified: "
                    + e.getMessage(), e);
        }
    }

    private static void writeStamp(Path stampFile, Signed signed, java.util.Map<String, FileIdentity> ids)
            throws ImageException {
        try {
            new VerificationStamp(VerificationStamp.VERSION, signed.files().manifestSha256(), signed.keyId(), ids)
                    .write(stampFile);
        } catch (IOException e) {
            throw new ImageException(Reason.NoSpaceLeft, "cannot record the verification of the image in "
                    + stampFile + ": " + e.getMessage(), e);
        } catch (UncheckedIOException e) {
            throw new ImageException(Reason.NoSpaceLeft, "cannot record the verification stamp " + stampFile, e);
        }
    }
}
