package io.vllmsnap.image.oci;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.google.cloud.tools.jib.api.Credential;
import com.google.cloud.tools.jib.api.DescriptorDigest;
import com.google.cloud.tools.jib.blob.Blobs;
import com.google.cloud.tools.jib.event.EventHandlers;
import com.google.cloud.tools.jib.http.FailoverHttpClient;
import com.google.cloud.tools.jib.registry.RegistryClient;
import io.vllmsnap.image.Digests;
import io.vllmsnap.image.ImageException;
import io.vllmsnap.image.ImageException.Reason;
import io.vllmsnap.image.ImageFiles;
import io.vllmsnap.image.ImageRef;
import io.vllmsnap.image.TestImages;
import io.vllmsnap.image.cache.CachedImage;
import io.vllmsnap.image.cache.NodeImageCache;
import io.vllmsnap.image.store.ImageStoreBackend;
import io.vllmsnap.image.store.StoreContractTest;
import io.vllmsnap.image.store.TransferListener;
import io.vllmsnap.testing.LocalRegistry;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.net.URI;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The OCI store against a real registry (Debian's docker-registry on loopback) with htpasswd authentication. */
class OciStoreTest extends StoreContractTest {

    private static final String USER = "vllmsnap-agent";
    private static final String PASSWORD = "correct horse battery";
    private static final ObjectMapper JSON = new ObjectMapper();

    private LocalRegistry registry;

    @BeforeEach
    void startRegistry() throws Exception {
        registry = LocalRegistry.builder().auth(USER, PASSWORD).dir(tmp.resolve("registry")).start();
    }

    @AfterEach
    void stopRegistry() {
        registry.close();
    }

    private OciStoreConfig config() {
        return OciStoreConfig.of(registry.address(), "vllmsnap/snapshots").withInsecureLoopback()
                .withCredentials(USER, PASSWORD);
    }

    @Override
    protected ImageStoreBackend store() {
        return new OciStore(config());
    }

    @Override
    protected void damage(ImageRef ref, ImageFiles.Entry entry, Damage damage) throws Exception {
        Path blob = registry.blobData(entry.digest());
        assertThat(blob).exists();
        switch (damage) {
            case FLIP_BYTE -> TestImages.flipByte(blob, entry.size() / 2);
            case TRUNCATE -> {
                try (FileChannel ch = FileChannel.open(blob, StandardOpenOption.WRITE)) {
                    ch.truncate(entry.size() / 3);
                }
            }
            case DELETE -> Files.delete(blob); // a missing layer
        }
    }

    /** Pushes an artifact like the store's but without the signature layer, with jib-core directly. */
    @Override
    protected void storeUnsigned(ImageRef ref, Path imageDir) throws Exception {
        byte[] manifest = Files.readAllBytes(imageDir.resolve(ImageFiles.MANIFEST));
        ImageFiles files = ImageFiles.parse(manifest);
        FailoverHttpClient http = new FailoverHttpClient(true, true, e -> { });
        try {
            RegistryClient c = RegistryClient.factory(EventHandlers.NONE, registry.address(),
                    "vllmsnap/snapshots/" + ref.namespace(), http).setCredential(Credential.from(USER, PASSWORD))
                    .newRegistryClient();
            c.configureBasicAuth();
            String configDigest = "sha256:" + Digests.sha256Hex(manifest);
            c.pushBlob(DescriptorDigest.fromDigest(configDigest), Blobs.from(out -> out.write(manifest), true),
                    null, n -> { });
            SnapshotArtifact a = new SnapshotArtifact().config(configDigest, manifest.length);
            for (ImageFiles.Entry e : files.entries().values()) {
                c.pushBlob(DescriptorDigest.fromDigest(e.digest()), Blobs.from(imageDir.resolve(e.path())), null,
                        n -> { });
                a.layer(SnapshotArtifact.FILE_MEDIA_TYPE, e.digest(), e.size(), e.path());
            }
            c.pushManifest(a, ref.name());
        } finally {
            http.shutDown();
        }
    }

    @Override
    protected Map<String, String> storedBytes(ImageRef ref) throws Exception {
        return treeDigests(registry.storage());
    }

    private JsonNode registryManifest(ImageRef ref) throws Exception {
        HttpResponse<byte[]> r = registry.httpClient().send(HttpRequest.newBuilder(URI.create(registry.url()
                        + "/v2/vllmsnap/snapshots/" + ref.namespace() + "/manifests/" + ref.name()))
                .header("Authorization", registry.basicAuthorization().orElseThrow())
                .header("Accept", SnapshotArtifact.MANIFEST_MEDIA_TYPE).build(), HttpResponse.BodyHandlers.ofByteArray());
        assertThat(r.statusCode()).isEqualTo(200);
        return JSON.readTree(r.body());
    }

    @Test
    void imageIsAnOciArtifactOfOurOwnTypeWithOneLayerPerFile() throws Exception {
        Path src = source("img", 1 << 20);
        store().publish(ref, src, TransferListener.NONE);
        byte[] manifestBytes = Files.readAllBytes(src.resolve(ImageFiles.MANIFEST));
        ImageFiles files = ImageFiles.parse(manifestBytes);
        JsonNode m = registryManifest(ref);
        assertThat(m.path("schemaVersion").asInt()).isEqualTo(2);
        assertThat(m.path("mediaType").asText()).isEqualTo("application/vnd.oci.image.manifest.v1+json");
        assertThat(m.path("artifactType").asText()).isEqualTo("application/vnd.vllmsnap.snapshot.v1");
        assertThat(m.path("config").path("mediaType").asText())
                .isEqualTo("application/vnd.vllmsnap.snapshot.manifest.v1+json");
        assertThat(m.path("config").path("digest").asText()).isEqualTo("sha256:" + Digests.sha256Hex(manifestBytes));
        JsonNode layers = m.path("layers");
        assertThat(layers.get(0).path("mediaType").asText())
                .isEqualTo("application/vnd.vllmsnap.snapshot.signature.v1+json");
        assertThat(layers.get(0).path("annotations").path("org.opencontainers.image.title").asText())
                .isEqualTo(ImageFiles.SIGNATURE);
        Map<String, String> titleToDigest = new LinkedHashMap<>();
        for (int i = 1; i < layers.size(); i++) {
            assertThat(layers.get(i).path("mediaType").asText()).isEqualTo("application/vnd.vllmsnap.snapshot.file.v1");
            titleToDigest.put(layers.get(i).path("annotations").path("org.opencontainers.image.title").asText(),
                    layers.get(i).path("digest").asText());
        }
        Map<String, String> expected = new LinkedHashMap<>();
        files.entries().values().forEach(e -> expected.put(e.path(), e.digest()));
        assertThat(titleToDigest).containsExactlyEntriesOf(expected);
        assertThat(m.path("annotations").path("io.vllmsnap.namespace").asText()).isEqualTo("team-a");
        // the blob of a file is the file itself, uncompressed
        assertThat(Files.readAllBytes(registry.blobData(files.get("criu/pages-1.img").digest())))
                .isEqualTo(Files.readAllBytes(src.resolve("criu/pages-1.img")));
    }

    @Test
    void registryRefusesMissingAndWrongCredentials() throws Exception {
        Path src = source("img", 1 << 20);
        OciStore anonymous = new OciStore(OciStoreConfig.of(registry.address(), "vllmsnap/snapshots")
                .withInsecureLoopback());
        OciStore wrong = new OciStore(config().withCredentials(USER, "wrong password"));
        for (OciStore s : List.of(anonymous, wrong)) {
            assertThatThrownBy(() -> s.publish(ref, src, TransferListener.NONE))
                    .isInstanceOfSatisfying(ImageException.class,
                            e -> assertThat(e.reason()).as(e.getMessage()).isEqualTo(Reason.StoreUnauthorized));
        }
        store().publish(ref, src, TransferListener.NONE);
        for (OciStore s : List.of(anonymous, wrong)) {
            NodeImageCache cache = cache("unauthorized-" + (s == wrong), 1L << 30);
            assertThatThrownBy(() -> cache.acquire(ref, s, TransferListener.NONE))
                    .isInstanceOfSatisfying(ImageException.class, e -> {
                        assertThat(e.reason()).as(e.getMessage()).isEqualTo(Reason.StoreUnauthorized);
                        assertThat(e.getMessage()).doesNotContain("wrong password");
                    });
            assertNothingHalfWritten(cache);
        }
    }

    @Test
    void registryThatGoesAwayMidPullFailsCleanlyAndTheNextPullResumes() throws Exception {
        Path src = source("big", 64 << 20);
        Map<String, String> sourceBefore = treeDigests(src);
        store().publish(ref, src, TransferListener.NONE);
        NodeImageCache cache = cache("kill", 1L << 30);
        AtomicBoolean killed = new AtomicBoolean();
        TransferListener killMidway = (done, total) -> {
            if (done > (16 << 20) && done < total && killed.compareAndSet(false, true)) {
                registry.kill();
            }
        };
        assertThatThrownBy(() -> cache.acquire(ref, store(), killMidway))
                .isInstanceOfSatisfying(ImageException.class, e -> {
                    assertThat(e.reason()).as(e.getMessage()).isEqualTo(Reason.StoreUnavailable);
                    assertThat(e.getMessage()).contains("criu/pages-1.img");
                });
        assertThat(killed).isTrue();
        assertNothingHalfWritten(cache);
        assertThat(treeDigests(src)).isEqualTo(sourceBefore);
        // while the registry is down, a restore fails the same clear way
        assertThatThrownBy(() -> cache.acquire(ref, store(), TransferListener.NONE))
                .isInstanceOfSatisfying(ImageException.class,
                        e -> assertThat(e.reason()).isEqualTo(Reason.StoreUnavailable));

        registry.restart();
        try (CachedImage img = cache.acquire(ref, store(), TransferListener.NONE)) {
            long total = img.verified().files().totalBytes();
            // the small files completed before the kill are kept (hashed again), only the rest is fetched
            assertThat(img.pull().orElseThrow().resumedBytes()).isPositive();
            assertThat(img.pull().orElseThrow().fetchedBytes() + img.pull().orElseThrow().resumedBytes())
                    .isEqualTo(total);
            assertThat(treeDigests(img.dir())).isEqualTo(treeDigests(src));
        }
    }

    @Test
    void tlsRegistryIsReachedThroughTheConfiguredCaOnly() throws Exception {
        try (LocalRegistry tls = LocalRegistry.builder().tls().auth(USER, PASSWORD).dir(tmp.resolve("tls")).start()) {
            Path src = source("img", 1 << 20);
            OciStoreConfig base = OciStoreConfig.of(tls.address(), "vllmsnap/snapshots").withCredentials(USER,
                    PASSWORD);
            // without its CA the certificate is not trusted (and no plain-HTTP fallback is tried)
            assertThatThrownBy(() -> new OciStore(base).publish(ref, src, TransferListener.NONE))
                    .isInstanceOfSatisfying(ImageException.class,
                            e -> assertThat(e.reason()).as(e.getMessage()).isEqualTo(Reason.StoreUnavailable));
            OciStore store = new OciStore(base.withCaCertificates(Files.readAllBytes(tls.caCertificate().orElseThrow())));
            store.publish(ref, src, TransferListener.NONE);
            try (CachedImage img = cache("tls", 1L << 30).acquire(ref, store, TransferListener.NONE)) {
                assertThat(treeDigests(img.dir())).isEqualTo(treeDigests(src));
            }
        }
    }

    @Test
    void plainHttpIsRefusedUnlessAllowedAndThenOnlyForLoopback() throws Exception {
        Path src = source("img", 1 << 20);
        OciStore strict = new OciStore(OciStoreConfig.of(registry.address(), "vllmsnap/snapshots")
                .withCredentials(USER, PASSWORD));
        assertThatThrownBy(() -> strict.publish(ref, src, TransferListener.NONE))
                .isInstanceOfSatisfying(ImageException.class,
                        e -> assertThat(e.reason()).as(e.getMessage()).isEqualTo(Reason.StoreUnavailable));
        assertThatThrownBy(() -> OciStoreConfig.of("10.1.2.3:5000", "vllmsnap").withInsecureLoopback())
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("loopback");
        assertThatThrownBy(() -> OciStoreConfig.of("localhost.attacker.test:5000", "vllmsnap").withInsecureLoopback())
                .isInstanceOf(IllegalArgumentException.class);
        assertThat(OciStoreConfig.of("[::1]:5000", "v").withInsecureLoopback().insecureLoopback()).isTrue();
        assertThat(config().toString()).doesNotContain(PASSWORD);
    }

    @Test
    void deletionRemovesTheManifestFromTheRegistry() throws Exception {
        store().publish(ref, source("img", 1 << 20), TransferListener.NONE);
        registryManifest(ref);
        store().delete(ref);
        HttpResponse<Void> r = registry.httpClient().send(HttpRequest.newBuilder(URI.create(registry.url()
                        + "/v2/vllmsnap/snapshots/team-a/manifests/snap-1"))
                .header("Authorization", registry.basicAuthorization().orElseThrow())
                .header("Accept", SnapshotArtifact.MANIFEST_MEDIA_TYPE).build(), HttpResponse.BodyHandlers.discarding());
        assertThat(r.statusCode()).isEqualTo(404);
    }

    @Test
    void httpClientNeverLogsImageBytesOrCredentials() throws Exception {
        store(); // loads the store, which switches those loggers off
        // what Apache HttpClient itself asks before it copies every byte and header into the log
        assertThat(org.apache.commons.logging.LogFactory.getLog("org.apache.http.wire").isDebugEnabled()).isFalse();
        assertThat(org.apache.commons.logging.LogFactory.getLog("org.apache.http.headers").isDebugEnabled())
                .isFalse();
        java.util.logging.Logger.getLogger("").setLevel(java.util.logging.Level.ALL);
        try {
            assertThat(org.apache.commons.logging.LogFactory.getLog("org.apache.http.wire").isDebugEnabled())
                    .isFalse();
        } finally {
            java.util.logging.Logger.getLogger("").setLevel(java.util.logging.Level.INFO);
        }
    }

    @Test
    void registryThatIsDownIsStoreUnavailable() throws Exception {
        registry.kill();
        assertThatThrownBy(() -> store().exists(ref)).isInstanceOfSatisfying(ImageException.class,
                e -> assertThat(e.reason()).isEqualTo(Reason.StoreUnavailable));
    }
}
