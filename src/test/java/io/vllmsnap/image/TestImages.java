package io.vllmsnap.image;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Makes real image directories for tests: files of random bytes, a {@code manifest.json} in the agreed shape (with
 * some of the engine's other fields, which the image package ignores) and its signature.
 */
public final class TestImages {

    private static final ObjectMapper JSON = new ObjectMapper();

    private TestImages() {
    }

    /** Writes {@code files} (path → size) of random bytes under {@code dir}, then manifest and signature. */
    public static Path create(Path dir, Map<String, Long> files, ManifestSigner signer, long seed) throws IOException {
        Files.createDirectories(dir);
        SplittableRandom random = new SplittableRandom(seed);
        for (var f : files.entrySet()) {
            Path p = dir.resolve(f.getKey());
            Files.createDirectories(p.getParent());
            writeRandom(p, f.getValue(), random);
        }
        writeManifest(dir, files.keySet());
        if (signer != null) {
            signer.signImage(dir);
        }
        return dir;
    }

    /** A small image like a CRIU dump: a pages file, a pagemap, a few small files and the container's JSON. */
    public static Path typical(Path dir, ManifestSigner signer, long pagesBytes) throws IOException {
        Map<String, Long> files = new LinkedHashMap<>();
        files.put("criu/pages-1.img", pagesBytes);
        files.put("criu/pagemap-1.img", 4096L);
        files.put("criu/core-1.img", 1234L);
        files.put("criu/mm-1.img", 777L);
        files.put("criu/inventory.img", 42L);
        files.put("container.json", 300L);
        return create(dir, files, signer, pagesBytes);
    }

    /** (Re)writes manifest.json listing these files with their current size and SHA-256. */
    public static void writeManifest(Path dir, Iterable<String> paths) throws IOException {
        ObjectNode m = JSON.createObjectNode();
        m.put("formatVersion", 2);
        m.put("createdAt", "2026-12-01T00:00:00Z");
        ObjectNode files = m.putObject("files");
        for (String path : paths) {
            Path p = dir.resolve(path);
            ObjectNode e = files.putObject(path);
            e.put("size", Files.size(p));
            e.put("sha256", Digests.sha256(p, Long.MAX_VALUE - 1, n -> { }).sha256());
        }
        m.putObject("source").put("pid", 1234);
        Files.write(dir.resolve(ImageFiles.MANIFEST), JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(m));
    }

    /** Writes a manifest with exactly this JSON for {@code files} (to make malformed or hostile manifests). */
    public static void writeRawFiles(Path dir, String filesJson) throws IOException {
        Files.writeString(dir.resolve(ImageFiles.MANIFEST), "{\"formatVersion\": 2, \"files\": " + filesJson + "}");
    }

    public static void writeRandom(Path p, long size, SplittableRandom random) throws IOException {
        byte[] buf = new byte[1 << 20];
        try (OutputStream out = Files.newOutputStream(p)) {
            long left = size;
            while (left > 0) {
                random.nextBytes(buf);
                int n = (int) Math.min(buf.length, left);
                out.write(buf, 0, n);
                left -= n;
            }
        }
    }

    /** A fresh signer with its own key pair, and the keys that trust it. */
    public record Keys(ManifestSigner signer, TrustedKeys trusted, String privatePem, String publicPem) {
        public static Keys generate() {
            var pem = SigningKeys.generatePem();
            return new Keys(ManifestSigner.fromPem(pem.get(0).getBytes()), TrustedKeys.fromPem(pem.get(1).getBytes()),
                    pem.get(0), pem.get(1));
        }
    }

    /** Flips one byte of a file in place (same size, other content). */
    public static void flipByte(Path file, long offset) throws IOException {
        try (var ch = java.nio.channels.FileChannel.open(file, java.nio.file.StandardOpenOption.READ,
                java.nio.file.StandardOpenOption.WRITE)) {
            var b = java.nio.ByteBuffer.allocate(1);
            ch.read(b, offset);
            b.flip();
            byte v = b.get();
            ch.write(java.nio.ByteBuffer.wrap(new byte[] {(byte) (v ^ 0x5a)}), offset);
        }
    }
}
