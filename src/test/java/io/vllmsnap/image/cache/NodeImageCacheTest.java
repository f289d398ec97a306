package io.vllmsnap.image.cache;

import io.vllmsnap.image.ImageException;
import io.vllmsnap.image.ImageException.Reason;
import io.vllmsnap.image.ImageRef;
import io.vllmsnap.image.ImageVerifier;
import io.vllmsnap.image.TestImages;
import io.vllmsnap.image.store.ImagePuller;
import io.vllmsnap.image.store.NodeStore;
import io.vllmsnap.image.store.TransferListener;
import io.vllmsnap.image.store.VolumeStore;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The node cache with real files, a real shared directory as the store and real processes mapping images. */
class NodeImageCacheTest {

    private static final long PAGES = 1 << 20;

    @TempDir
    Path tmp;

    private final TestImages.Keys keys = TestImages.Keys.generate();
    private VolumeStore volume;
    private NodeImageCache cache;
    private final List<Process> processes = new ArrayList<>();

    @BeforeEach
    void setUp() throws Exception {
        volume = new VolumeStore(tmp.resolve("volume"));
        // room for three images of about 1 MiB each, not four
        cache = newCache(3 * PAGES + PAGES / 2);
    }

    private NodeImageCache newCache(long maxBytes) throws Exception {
        ImageVerifier verifier = new ImageVerifier(keys.trusted(), 2);
        return new NodeImageCache(tmp.resolve("node"), maxBytes, verifier, new ImagePuller(verifier, 4),
                Path.of("/proc"), new CacheMetrics());
    }

    @AfterEach
    void stopProcesses() throws Exception {
        for (Process p : processes) {
            p.destroyForcibly();
            p.waitFor(10, TimeUnit.SECONDS);
        }
    }

    private ImageRef publish(String name) throws Exception {
        ImageRef ref = new ImageRef("ns", name);
        volume.publish(ref, TestImages.typical(tmp.resolve("src").resolve(name), keys.signer(), PAGES),
                TransferListener.NONE);
        return ref;
    }

    /** A restore that finished: pulled or found, then released. */
    private void use(ImageRef ref) throws Exception {
        cache.acquire(ref, volume, TransferListener.NONE).close();
        Thread.sleep(5); // distinct last-use times
    }

    private List<String> cached() {
        return cache.list().stream().map(e -> e.ref().name()).sorted().toList();
    }

    /** A real process that maps the image's pages file privately, as a process restored with map fill does. */
    private Process mapPages(ImageRef ref) throws Exception {
        Path pages = cache.imageDir(ref).resolve("criu/pages-1.img");
        Process p = new ProcessBuilder("python3", "-c", """
                import mmap, sys, time
                f = open(sys.argv[1], 'rb')
                m = mmap.mmap(f.fileno(), 0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ)
                f.close()  # only the mapping holds the file now
                print('mapped', flush=True)
                time.sleep(600)
                """, pages.toString()).redirectErrorStream(true).start();
        processes.add(p);
        String line = new BufferedReader(new InputStreamReader(p.getInputStream())).readLine();
        assertThat(line).isEqualTo("mapped");
        assertThat(Files.readString(Path.of("/proc/" + p.pid() + "/maps"))).contains(pages.toString());
        return p;
    }

    @Test
    void leastRecentlyUsedImageIsEvictedFirst() throws Exception {
        ImageRef a = publish("a");
        ImageRef b = publish("b");
        ImageRef c = publish("c");
        ImageRef d = publish("d");
        use(a);
        use(b);
        use(c);
        use(a); // a is now the most recent; b the least
        use(d);
        assertThat(cached()).containsExactly("a", "c", "d");
        assertThat(cache.metrics().evictions()).isEqualTo(1);
        assertThat(cache.sizeBytes()).isLessThanOrEqualTo(cache.maxBytes());
        assertThat(cache.list().getLast().ref()).isEqualTo(d);
        // the evicted image comes back from the store when asked for again
        use(b);
        assertThat(cached()).containsExactly("a", "b", "d");
    }

    @Test
    void imageMappedByARunningProcessIsNeverEvicted() throws Exception {
        ImageRef a = publish("a");
        ImageRef b = publish("b");
        ImageRef c = publish("c");
        ImageRef d = publish("d");
        ImageRef e = publish("e");
        use(b);
        use(a);
        use(c);
        Process restored = mapPages(b); // b is the least recently used, but a process maps it
        // found by device and inode alone, as from another mount namespace where the path differs
        Path pages = cache.imageDir(b).resolve("criu/pages-1.img");
        var id = Files.readAttributes(pages, "unix:dev,ino");
        assertThat(MappedFiles.scan(Path.of("/proc")).isMapped((Long) id.get("dev"), (Long) id.get("ino"),
                Path.of("/elsewhere/pages-1.img"))).isTrue();
        use(d);
        assertThat(cached()).containsExactly("b", "c", "d");
        // the process is gone: b may go now
        restored.destroyForcibly();
        restored.waitFor(10, TimeUnit.SECONDS);
        use(e);
        assertThat(cached()).containsExactly("c", "d", "e");
    }

    @Test
    void imageHeldByAJobIsNeverEvictedAndAFullCacheSaysWhy() throws Exception {
        ImageRef a = publish("a");
        ImageRef b = publish("b");
        ImageRef c = publish("c");
        ImageRef d = publish("d");
        try (CachedImage held = cache.acquire(a, volume, TransferListener.NONE)) {
            use(b);
            use(c);
            use(d);
            assertThat(cached()).containsExactly("a", "c", "d");
            try (CachedImage hc = cache.acquire(c, volume, TransferListener.NONE);
                 CachedImage hd = cache.acquire(d, volume, TransferListener.NONE)) {
                assertThatThrownBy(() -> cache.acquire(b, volume, TransferListener.NONE))
                        .isInstanceOfSatisfying(ImageException.class, ex -> {
                            assertThat(ex.reason()).isEqualTo(Reason.CacheFull);
                            assertThat(ex.getMessage()).contains("3 in use by jobs");
                        });
                assertThat(cached()).containsExactly("a", "c", "d");
                assertThat(cache.root().resolve(".pulling/ns/b")).doesNotExist();
            }
        }
    }

    @Test
    void imageBiggerThanTheWholeCacheIsRefused() throws Exception {
        ImageRef big = new ImageRef("ns", "big");
        volume.publish(big, TestImages.typical(tmp.resolve("src/big"), keys.signer(), 4 * PAGES),
                TransferListener.NONE);
        assertThatThrownBy(() -> cache.acquire(big, volume, TransferListener.NONE))
                .isInstanceOfSatisfying(ImageException.class, ex -> {
                    assertThat(ex.reason()).isEqualTo(Reason.CacheFull);
                    assertThat(ex.getMessage()).contains("more than the cache's limit");
                });
    }

    @Test
    void snapshotWrittenOnTheNodeIsTheOnlyCopyUntilPublished() throws Exception {
        ImageRef local = new ImageRef("ns", "local");
        Path writing = cache.startLocal(local);
        TestImages.typical(writing, keys.signer(), PAGES);
        cache.commitLocal(local);
        assertThat(cache.contains(local)).isTrue();
        assertThat(writing).doesNotExist();
        NodeStore node = new NodeStore();
        try (CachedImage img = cache.acquire(local, node, TransferListener.NONE)) {
            assertThat(img.hit()).isTrue();
            assertThat(img.verified().fromStamp()).isTrue(); // its writer hashed it: not read again
        }
        Thread.sleep(5);
        // local is the least recently used, but stored nowhere else: never evicted
        for (String n : List.of("a", "b", "c")) {
            use(publish(n));
        }
        assertThat(cached()).contains("local").hasSize(3);
        cache.published(local, volume);
        volume.publish(local, cache.imageDir(local), TransferListener.NONE);
        use(publish("d"));
        assertThat(cached()).doesNotContain("local");
        // and it comes back from the store
        use(local);
        assertThat(cached()).contains("local");
    }

    @Test
    void damagedCopyIsPulledAgainWhenTheStoreHasItAndRefusedWhenItIsTheOnlyOne() throws Exception {
        ImageRef a = publish("a");
        use(a);
        TestImages.flipByte(cache.imageDir(a).resolve("criu/pages-1.img"), 99);
        try (CachedImage again = cache.acquire(a, volume, TransferListener.NONE)) {
            assertThat(again.hit()).isFalse();
            assertThat(again.pull()).isPresent();
        }
        ImageRef local = new ImageRef("ns", "local");
        TestImages.typical(cache.startLocal(local), keys.signer(), PAGES);
        cache.commitLocal(local);
        TestImages.flipByte(cache.imageDir(local).resolve("criu/pages-1.img"), 99);
        assertThatThrownBy(() -> cache.acquire(local, new NodeStore(), TransferListener.NONE))
                .isInstanceOfSatisfying(ImageException.class, ex -> assertThat(ex.reason()).isEqualTo(Reason.Tampered));
        assertThat(cache.contains(local)).isTrue(); // refused, never destroyed: it is the snapshot
        assertThat(cache.isPinned(local)).isFalse();
    }

    @Test
    void concurrentRestoresOfOneImagePullItOnce() throws Exception {
        ImageRef a = publish("a");
        List<Callable<Boolean>> restores = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            restores.add(() -> {
                try (CachedImage img = cache.acquire(a, volume, TransferListener.NONE)) {
                    return img.hit();
                }
            });
        }
        List<Boolean> hits = new ArrayList<>();
        try (ExecutorService pool = Executors.newFixedThreadPool(4)) {
            for (Future<Boolean> f : pool.invokeAll(restores)) {
                hits.add(f.get());
            }
        }
        assertThat(hits).containsOnlyOnce(false);
        assertThat(cache.metrics().pulls()).isEqualTo(1);
        assertThat(cache.metrics().hits()).isEqualTo(3);
    }

    @Test
    void restartRemovesUnfinishedSnapshotsAndHalfWrittenFilesOnly() throws Exception {
        ImageRef a = publish("a");
        use(a);
        Path writing = cache.startLocal(new ImageRef("ns", "crashed"));
        Files.write(writing.resolve("pages-1.img"), new byte[100]);
        Path pulling = cache.root().resolve(".pulling/ns/half");
        Files.createDirectories(pulling.resolve("criu"));
        Files.write(pulling.resolve("criu/pages-1.img.part"), new byte[100]);
        Files.write(pulling.resolve("criu/core-1.img"), new byte[10]);
        cache.recover();
        assertThat(writing).doesNotExist();
        assertThat(pulling.resolve("criu/pages-1.img.part")).doesNotExist();
        assertThat(pulling.resolve("criu/core-1.img")).exists(); // complete: kept to resume
        assertThat(cached()).containsExactly("a");
    }

    @Test
    void mapsLinesAreReadWithDeviceInodeAndPath() {
        MappedFiles.Mapping m = MappedFiles.parse(
                "7f0e4c000000-7f0e4c100000 r--p 00000000 fd:01 1234567   /var/lib/vllmsnap/images/ns/a/criu/pages-1.img (deleted)");
        assertThat(m).isEqualTo(new MappedFiles.Mapping(0xfd, 1, 1234567, "/var/lib/vllmsnap/images/ns/a/criu/pages-1.img"));
        assertThat(MappedFiles.parse("7ffd5a1f2000-7ffd5a213000 rw-p 00000000 00:00 0                          [stack]"))
                .isNull();
    }
}
