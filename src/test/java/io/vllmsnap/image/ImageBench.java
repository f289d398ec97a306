package io.vllmsnap.image;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.vllmsnap.image.cache.CacheMetrics;
import io.vllmsnap.image.cache.CachedImage;
import io.vllmsnap.image.cache.NodeImageCache;
import io.vllmsnap.image.oci.OciStore;
import io.vllmsnap.image.oci.OciStoreConfig;
import io.vllmsnap.image.store.ImagePuller;
import io.vllmsnap.image.store.ImageStoreBackend;
import io.vllmsnap.image.store.TransferListener;
import io.vllmsnap.image.store.VolumeStore;
import io.vllmsnap.testing.LocalRegistry;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Benchmark behind bench/cpu/image-verify.sh: SHA-256 throughput of one file, full verification of a snapshot-shaped
 * image with 1 and 2 readers, the stamped verification a restore pays on a node that verified its copy before, and
 * pulls into an empty node cache from a shared directory and from a real registry on loopback. Every file is
 * freshly written, so in the page cache (as after a prestage): the numbers are CPU and copy costs, not disk reads.
 * Usage: ImageBench OUT.json WORKDIR [IMAGE_MIB]
 */
public final class ImageBench {

    public static void main(String[] args) throws Exception {
        Path out = Path.of(args[0]);
        Path work = Path.of(args[1]);
        long mib = args.length > 2 ? Long.parseLong(args[2]) : 2048;
        Map<String, Object> doc = new LinkedHashMap<>();
        doc.put("benchmark", "image verification and pull throughput (files in the page cache)");
        doc.put("cpuModel", Files.readAllLines(Path.of("/proc/cpuinfo")).stream()
                .filter(l -> l.startsWith("model name")).findFirst().map(l -> l.split(":", 2)[1].strip())
                .orElse("unknown"));
        doc.put("cores", Runtime.getRuntime().availableProcessors());
        doc.put("java", Runtime.version().toString());
        doc.put("imageMiB", mib);

        TestImages.Keys keys = TestImages.Keys.generate();
        // shaped like a multi-process dump: one big pages file, eight smaller ones, and CRIU's small files
        Map<String, Long> files = new LinkedHashMap<>();
        long big = mib / 2 << 20;
        files.put("criu/pages-1.img", big);
        for (int i = 2; i <= 9; i++) {
            files.put("criu/pages-" + i + ".img", (mib << 20) / 2 / 8);
        }
        for (int i = 1; i <= 40; i++) {
            files.put("criu/core-" + i + ".img", 2048L + i);
            files.put("criu/mm-" + i + ".img", 4096L + i);
        }
        Path image = work.resolve("image");
        long t0 = System.nanoTime();
        TestImages.create(image, files, keys.signer(), 42);
        doc.put("createSeconds", (System.nanoTime() - t0) / 1e9);
        long total = files.values().stream().mapToLong(Long::longValue).sum();
        doc.put("imageBytes", total);
        doc.put("imageFiles", files.size());

        // 1. one file, one reader
        List<Double> single = new ArrayList<>();
        for (int r = 0; r < 3; r++) {
            long s = System.nanoTime();
            Digests.sha256(image.resolve("criu/pages-1.img"), big, n -> { });
            single.add(big / ((System.nanoTime() - s) / 1e9) / 1e9);
        }
        doc.put("sha256OneFileGBps", single);

        // 2. full verification, 1 and 2 readers
        for (int threads : new int[] {1, 2}) {
            ImageVerifier v = new ImageVerifier(keys.trusted(), threads);
            List<Double> seconds = new ArrayList<>();
            for (int r = 0; r < 3; r++) {
                seconds.add(v.verify(image).nanos() / 1e9);
            }
            doc.put("fullVerify" + threads + "ThreadSeconds", seconds);
            doc.put("fullVerify" + threads + "ThreadGBps", seconds.stream().map(s -> total / s / 1e9).toList());
        }

        // 3. what a restore pays on a node that verified its copy before
        ImageVerifier verifier = new ImageVerifier(keys.trusted(), 2);
        Path stamp = work.resolve("stamp.json");
        verifier.verify(image, stamp);
        double[] stamped = new double[50];
        for (int r = 0; r < stamped.length; r++) {
            VerifiedImage v = verifier.verify(image, stamp);
            if (!v.fromStamp()) {
                throw new IllegalStateException("stamp not used");
            }
            stamped[r] = v.nanos() / 1e6;
        }
        Arrays.sort(stamped);
        doc.put("stampedVerifyMillis", Map.of("median", stamped[stamped.length / 2], "p90",
                stamped[stamped.length * 9 / 10], "max", stamped[stamped.length - 1]));

        // 4. pulls into an empty cache
        ImageRef ref = new ImageRef("bench", "snap");
        Map<String, Object> pulls = new LinkedHashMap<>();
        VolumeStore volume = new VolumeStore(work.resolve("volume"));
        pulls.put("volume", publishAndPull(volume, ref, image, verifier, work.resolve("cache-volume"), total));
        try (LocalRegistry registry = LocalRegistry.builder().dir(work.resolve("registry")).start()) {
            OciStore oci = new OciStore(OciStoreConfig.of(registry.address(), "bench").withInsecureLoopback());
            pulls.put("ociLoopbackHttp", publishAndPull(oci, ref, image, verifier, work.resolve("cache-oci"), total));
        }
        doc.put("pullIntoEmptyCache", pulls);
        doc.put("loadAverageAtEnd", Files.readString(Path.of("/proc/loadavg")).split(" ", 4));
        new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(out.toFile(), doc);
        System.out.println(new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValueAsString(doc));
    }

    private static Map<String, Object> publishAndPull(ImageStoreBackend store, ImageRef ref, Path image,
                                                      ImageVerifier verifier, Path cacheDir, long total)
            throws Exception {
        Map<String, Object> r = new LinkedHashMap<>();
        long s = System.nanoTime();
        store.publish(ref, image, TransferListener.NONE);
        double publish = (System.nanoTime() - s) / 1e9;
        r.put("publishSeconds", publish);
        r.put("publishGBps", total / publish / 1e9);
        List<Double> seconds = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            NodeImageCache cache = new NodeImageCache(cacheDir.resolve("run-" + i), Long.MAX_VALUE, verifier,
                    new ImagePuller(verifier, 4), Path.of("/proc"), new CacheMetrics());
            s = System.nanoTime();
            try (CachedImage img = cache.acquire(ref, store, TransferListener.NONE)) {
                seconds.add((System.nanoTime() - s) / 1e9);
                if (img.hit()) {
                    throw new IllegalStateException("expected a pull");
                }
            }
            // the restore right after: a hit, verified by its stamp
            s = System.nanoTime();
            try (CachedImage img = cache.acquire(ref, store, TransferListener.NONE)) {
                r.put("hitAfterPullMillis", (System.nanoTime() - s) / 1e6);
            }
            PrivateFiles.deleteTree(cacheDir.resolve("run-" + i));
        }
        r.put("pullSeconds", seconds);
        r.put("pullGBps", seconds.stream().map(x -> total / x / 1e9).toList());
        return r;
    }
}
