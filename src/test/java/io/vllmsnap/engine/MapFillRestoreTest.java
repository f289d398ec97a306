package io.vllmsnap.engine;

import com.fasterxml.jackson.databind.JsonNode;
import io.vllmsnap.criu.Criu;
import org.junit.jupiter.api.Test;

import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Our CRIU patch hack/criu-patches/0003-restore-map-fill.patch on a real process, and what the engine guards. */
class MapFillRestoreTest {
    private static final Pattern MAPPING = Pattern.compile("^([0-9a-f]+)-([0-9a-f]+) .*/pages-\\d+\\.img");

    @Test
    void restoredMemoryIsMappedFromTheImageCopyOnWriteAndTheImageNeverChanges() throws Exception {
        int port = 18139;
        try (EngineFixture f = new EngineFixture()) {
            SourceLauncher.Source src = f.start(port, 128 * EngineFixture.MIB, 32 * EngineFixture.MIB);
            new VllmClient(port).complete("mapped", 3);
            JsonNode before = EngineFixture.state(port);
            Path image = f.newImagePath("map");
            f.checkpointer.snapshot(SnapshotRequest.of(src.pid(), image, port, 0, false), Progress.NONE);
            Path pages = pagesFile(image);
            String imageHash = sha256(pages);

            Restorer mapping = new Restorer(Criu.fromEnvironment().withMapFill(true).withHugePageFill(false),
                    new NoGpuCheckpointer(), f.limiter);
            RestoreRequest req = new RestoreRequest(image, RestoreRequest.DEFAULT_ROOTFS, 0, false, false,
                    Timeouts.defaults(), null, "127.0.0.1");
            RestoreResult r = mapping.restore(req, Progress.NONE);
            try {
                assertThat(mappedBytes(r.pid())).as("weights and KV pool are mappings of the pages file")
                        .isGreaterThanOrEqualTo(128 * EngineFixture.MIB);
                assertThat(EngineFixture.state(port)).as("every byte reads back as the source had it").isEqualTo(before);
                new VllmClient(port).complete("writes a trace into the KV pool", 3);
                JsonNode written = EngineFixture.state(port);
                assertThat(written.get("kv_sha256")).isNotEqualTo(before.get("kv_sha256"));
                assertThat(sha256(pages)).as("the process's writes stay in its own copies").isEqualTo(imageHash);

                Path again = f.newImagePath("map-of-map");
                assertThatThrownBy(() -> f.checkpointer.snapshot(SnapshotRequest.of(r.pid(), again, port, 0, false),
                        Progress.NONE))
                        .isInstanceOf(EngineException.class)
                        .hasMessageContaining("maps snapshot image file " + pages.toAbsolutePath())
                        .hasMessageContaining("VLLMSNAP_MAP_FILL=off");
                assertThat(again).doesNotExist();

                Checkpointer.deleteTree(image);
                assertThat(EngineFixture.state(port)).as("deleting the image leaves the running replica whole")
                        .isEqualTo(written);
            } finally {
                EngineFixture.stopRestored(r.pid());
            }
        }
    }

    private static Path pagesFile(Path image) throws Exception {
        try (var s = Files.list(image.resolve(Manifest.CRIU_DIR))) {
            return s.filter(p -> p.getFileName().toString().matches("pages-\\d+\\.img"))
                    .max((a, b) -> Long.compare(a.toFile().length(), b.toFile().length())).orElseThrow();
        }
    }

    private static long mappedBytes(long pid) throws Exception {
        long total = 0;
        for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/maps"))) {
            Matcher m = MAPPING.matcher(line);
            if (m.find()) {
                total += Long.parseLong(m.group(2), 16) - Long.parseLong(m.group(1), 16);
            }
        }
        return total;
    }

    private static String sha256(Path file) throws Exception {
        MessageDigest md = MessageDigest.getInstance("SHA-256");
        try (InputStream in = Files.newInputStream(file)) {
            in.transferTo(new java.security.DigestOutputStream(java.io.OutputStream.nullOutputStream(), md));
        }
        return HexFormat.of().formatHex(md.digest());
    }
}
