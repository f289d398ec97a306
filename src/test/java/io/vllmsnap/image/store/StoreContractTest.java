package io.vllmsnap.image.store;

import io.vllmsnap.image.Digests;
import io.vllmsnap.image.ImageException;
import io.vllmsnap.image.ImageException.Reason;
import io.vllmsnap.image.ImageFiles;
import io.vllmsnap.image.ImageRef;
import io.vllmsnap.image.ImageVerifier;
import io.vllmsnap.image.PrivateFiles;
import io.vllmsnap.image.TestImages;
import io.vllmsnap.image.cache.CacheMetrics;
import io.vllmsnap.image.cache.CachedImage;
import io.vllmsnap.image.cache.NodeImageCache;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * What every shared store must do, run against real storage (a directory, a real registry): publish, pull into an
 * empty node cache, refuse damaged or badly signed images with their reason and leave nothing half-written, never
 * touch the source, and delete.
 */
public abstract class StoreContractTest {

    @TempDir
    protected Path tmp;

    protected final TestImages.Keys keys = TestImages.Keys.generate();
    protected final ImageRef ref = new ImageRef("team-a", "snap-1");

    /** The store under test, fresh for each test. */
    protected abstract ImageStoreBackend store() throws Exception;

    /** What a test does to the store's copy of one file. */
    protected enum Damage { FLIP_BYTE, TRUNCATE, DELETE }

    /** Damages the stored bytes of {@code path} of {@code ref} (the source image is left alone). */
    protected abstract void damage(ImageRef ref, ImageFiles.Entry entry, Damage damage) throws Exception;

    /** Stores an image of {@code ref} that has no signature at all (a store's publish refuses to make one). */
    protected abstract void storeUnsigned(ImageRef ref, Path imageDir) throws Exception;

    /** A digest of every stored byte of the image, to show a failed pull changed nothing in the store. */
    protected abstract Map<String, String> storedBytes(ImageRef ref) throws Exception;

    protected Path source(String name, long pagesBytes) throws IOException {
        return TestImages.typical(tmp.resolve("source").resolve(name), keys.signer(), pagesBytes);
    }

    protected NodeImageCache cache(String name, long maxBytes) throws IOException {
        ImageVerifier verifier = new ImageVerifier(keys.trusted(), 2);
        return new NodeImageCache(tmp.resolve("node-" + name), maxBytes, verifier, new ImagePuller(verifier, 4),
                Path.of("/proc"), new CacheMetrics());
    }

    protected static Map<String, String> treeDigests(Path dir) throws IOException {
        Map<String, String> out = new TreeMap<>();
        try (Stream<Path> walk = Files.walk(dir)) {
            for (Path p : walk.filter(Files::isRegularFile).toList()) {
                out.put(dir.relativize(p).toString(), Digests.sha256(p, Long.MAX_VALUE - 1, n -> { }).sha256());
            }
        }
        return out;
    }

    /** Records progress calls, to check they rise to the total. */
    protected static final class Progress implements TransferListener {
        final List<long[]> calls = Collections.synchronizedList(new ArrayList<>());

        @Override
        public void progress(long doneBytes, long totalBytes) {
            calls.add(new long[] {doneBytes, totalBytes});
        }

        long lastDone() {
            return calls.getLast()[0];
        }

        long total() {
            return calls.getLast()[1];
        }
    }

    protected void assertNothingHalfWritten(NodeImageCache cache) throws IOException {
        assertThat(cache.contains(ref)).isFalse();
        assertThat(cache.list()).isEmpty();
        try (Stream<Path> walk = Files.walk(cache.root())) {
            List<String> names = walk.map(p -> cache.root().relativize(p).toString()).toList();
            assertThat(names).noneMatch(n -> n.endsWith(".part"));
            assertThat(names).noneMatch(n -> n.startsWith("team-a/"));
        }
    }

    protected ImageException pullFails(NodeImageCache cache, Reason reason) {
        var thrown = org.assertj.core.api.Assertions.catchThrowableOfType(ImageException.class,
                () -> cache.acquire(ref, store(), TransferListener.NONE));
        assertThat(thrown).as("pull should fail").isNotNull();
        assertThat(thrown.reason()).as(thrown.getMessage()).isEqualTo(reason);
        return thrown;
    }

    @Test
    void publishedImagePullsIntoAnEmptyCacheVerifiedPrivateAndIdentical() throws Exception {
        Path src = source("img", 5 << 20);
        ImageStoreBackend store = store();
        Progress published = new Progress();
        store.publish(ref, src, published);
        assertThat(store.exists(ref)).isTrue();
        assertThat(published.lastDone()).isEqualTo(published.total()).isGreaterThanOrEqualTo(5 << 20);

        NodeImageCache cache = cache("b", 1L << 30);
        Progress pulled = new Progress();
        long total;
        try (CachedImage img = cache.acquire(ref, store, pulled)) {
            assertThat(img.hit()).isFalse();
            total = img.verified().files().totalBytes();
            assertThat(img.pull().orElseThrow().fetchedBytes()).isEqualTo(total);
            assertThat(pulled.lastDone()).isEqualTo(total);
            assertThat(pulled.total()).isEqualTo(total);
            assertThat(pulled.calls).extracting(c -> c[0]).isSorted();
            assertThat(treeDigests(img.dir())).isEqualTo(treeDigests(src));
            assertThat(img.dir()).isEqualTo(cache.root().resolve("team-a/snap-1"));
            try (Stream<Path> walk = Files.walk(img.dir())) {
                for (Path p : walk.toList()) {
                    assertThat(Files.getPosixFilePermissions(p)).as(p.toString())
                            .isEqualTo(Files.isDirectory(p) ? PrivateFiles.DIR_MODE : PrivateFiles.FILE_MODE);
                }
            }
        }
        // the copy is kept: the next restore is a hit that reads no byte of it (the stamp vouches for it)
        try (CachedImage again = cache.acquire(ref, store, TransferListener.NONE)) {
            assertThat(again.hit()).isTrue();
            assertThat(again.verified().fromStamp()).isTrue();
            assertThat(again.verified().hashedBytes()).isZero();
        }
        assertThat(cache.metrics().misses()).isEqualTo(1);
        assertThat(cache.metrics().hits()).isEqualTo(1);
        assertThat(cache.metrics().pullBytes()).isEqualTo(total);
        assertThat(cache.metrics().pullSeconds()).isPositive();
        assertThat(cache.sizeBytes()).isGreaterThanOrEqualTo(total);
        // another namespace never sees it
        assertThatThrownBy(() -> cache.acquire(new ImageRef("team-b", "snap-1"), store, TransferListener.NONE))
                .isInstanceOfSatisfying(ImageException.class,
                        e -> assertThat(e.reason()).isEqualTo(Reason.ImageNotFound));
    }

    @Test
    void publishingIsIdempotentAndAnotherImageOfTheSameNameIsRefused() throws Exception {
        ImageStoreBackend store = store();
        Path src = source("img", 1 << 20);
        store.publish(ref, src, TransferListener.NONE);
        store.publish(ref, src, TransferListener.NONE);
        Path other = source("other", 2 << 20);
        assertThatThrownBy(() -> store.publish(ref, other, TransferListener.NONE))
                .isInstanceOfSatisfying(ImageException.class,
                        e -> assertThat(e.reason()).isEqualTo(Reason.ImageExists));
        // and the stored image is still the first one
        try (CachedImage img = cache("c", 1L << 30).acquire(ref, store, TransferListener.NONE)) {
            assertThat(treeDigests(img.dir())).isEqualTo(treeDigests(src));
        }
    }

    @Test
    void unsignedLocalImageIsNotPublished() throws Exception {
        Path src = source("img", 1 << 20);
        Files.delete(src.resolve(ImageFiles.SIGNATURE));
        ImageStoreBackend store = store();
        assertThatThrownBy(() -> store.publish(ref, src, TransferListener.NONE))
                .isInstanceOfSatisfying(ImageException.class, e -> assertThat(e.reason()).isEqualTo(Reason.Unsigned));
        assertThat(store.exists(ref)).isFalse();
    }

    private void failedPullTouchesNothing(Damage damage, Reason reason) throws Exception {
        Path src = source("img", 4 << 20);
        Map<String, String> sourceBefore = treeDigests(src);
        ImageStoreBackend store = store();
        store.publish(ref, src, TransferListener.NONE);
        ImageFiles files = ImageFiles.parse(Files.readAllBytes(src.resolve(ImageFiles.MANIFEST)));
        damage(ref, files.get("criu/pages-1.img"), damage);
        Map<String, String> storedBefore = storedBytes(ref);
        NodeImageCache cache = cache("d", 1L << 30);
        ImageException e = pullFails(cache, reason);
        assertThat(e.getMessage()).contains("criu/pages-1.img");
        assertNothingHalfWritten(cache);
        assertThat(cache.root().resolve(".pulling/team-a/snap-1")).doesNotExist();
        assertThat(treeDigests(src)).isEqualTo(sourceBefore);
        assertThat(storedBytes(ref)).isEqualTo(storedBefore);
        assertThat(cache.metrics().pullFailures()).isEqualTo(1);
    }

    @Test
    void tamperedFileIsRefusedAndLeavesNothing() throws Exception {
        failedPullTouchesNothing(Damage.FLIP_BYTE, Reason.Tampered);
    }

    @Test
    void truncatedFileIsRefusedAndLeavesNothing() throws Exception {
        failedPullTouchesNothing(Damage.TRUNCATE, Reason.Truncated);
    }

    @Test
    void missingFileIsRefusedAndLeavesNothing() throws Exception {
        failedPullTouchesNothing(Damage.DELETE, Reason.MissingFile);
    }

    @Test
    void imageSignedByAnUntrustedKeyIsRefusedBeforeAnyFileIsFetched() throws Exception {
        Path src = source("img", 2 << 20);
        TestImages.Keys.generate().signer().signImage(src); // a valid signature, by a key the nodes do not trust
        ImageStoreBackend store = store();
        store.publish(ref, src, TransferListener.NONE);
        NodeImageCache cache = cache("e", 1L << 30);
        ImageException e = pullFails(cache, Reason.BadSignature);
        assertThat(e.getMessage()).contains("does not trust");
        assertNothingHalfWritten(cache);
        assertThat(cache.metrics().pullBytes()).isZero();
    }

    @Test
    void unsignedStoredImageIsRefused() throws Exception {
        Path src = source("img", 1 << 20);
        storeUnsigned(ref, src);
        NodeImageCache cache = cache("f", 1L << 30);
        pullFails(cache, Reason.Unsigned);
        assertNothingHalfWritten(cache);
    }

    @Test
    void deletionRemovesTheImageFromStoreAndCache() throws Exception {
        ImageStoreBackend store = store();
        store.publish(ref, source("img", 1 << 20), TransferListener.NONE);
        NodeImageCache cache = cache("g", 1L << 30);
        CachedImage held = cache.acquire(ref, store, TransferListener.NONE);
        // a job holds it: the node refuses to delete it now
        assertThatThrownBy(() -> cache.delete(ref)).isInstanceOfSatisfying(ImageException.class,
                e -> assertThat(e.reason()).isEqualTo(Reason.ImageInUse));
        held.close();
        store.delete(ref);
        cache.delete(ref);
        assertThat(store.exists(ref)).isFalse();
        assertThat(cache.contains(ref)).isFalse();
        assertThat(cache.list()).isEmpty();
        assertThat(cache.root().resolve(".meta/team-a/snap-1.verified")).doesNotExist();
        assertThatThrownBy(() -> cache.acquire(ref, store, TransferListener.NONE))
                .isInstanceOfSatisfying(ImageException.class,
                        e -> assertThat(e.reason()).isEqualTo(Reason.ImageNotFound));
        // deleting what is gone is fine
        store.delete(ref);
        cache.delete(ref);
    }
}
