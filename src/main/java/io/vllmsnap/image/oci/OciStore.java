package io.vllmsnap.image.oci;

import com.google.cloud.tools.jib.api.Credential;
import com.google.cloud.tools.jib.api.DescriptorDigest;
import com.google.cloud.tools.jib.registry.RegistryCredentialsNotSentException;
import com.google.cloud.tools.jib.api.RegistryException;
import com.google.cloud.tools.jib.api.RegistryUnauthorizedException;
import com.google.cloud.tools.jib.blob.Blob;
import com.google.cloud.tools.jib.blob.Blobs;
import com.google.cloud.tools.jib.event.EventHandlers;
import com.google.cloud.tools.jib.http.Authorization;
import com.google.cloud.tools.jib.http.FailoverHttpClient;
import com.google.cloud.tools.jib.http.Request;
import com.google.cloud.tools.jib.http.Response;
import com.google.cloud.tools.jib.http.ResponseException;
import com.google.cloud.tools.jib.image.json.BuildableManifestTemplate.ContentDescriptorTemplate;
import com.google.cloud.tools.jib.image.json.ManifestTemplate;
import com.google.cloud.tools.jib.image.json.OciManifestTemplate;
import com.google.cloud.tools.jib.registry.ManifestAndDigest;
import com.google.cloud.tools.jib.registry.RegistryClient;
import io.vllmsnap.image.Digests;
import io.vllmsnap.image.ImageException;
import io.vllmsnap.image.ImageException.Reason;
import io.vllmsnap.image.ImageFiles;
import io.vllmsnap.image.ImageRef;
import io.vllmsnap.image.store.ImageStoreBackend;
import io.vllmsnap.image.store.ProgressReporter;
import io.vllmsnap.image.store.RemoteImage;
import io.vllmsnap.image.store.TransferListener;

import java.io.ByteArrayOutputStream;
import java.io.FilterOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.DigestException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import javax.net.ssl.SSLException;

/**
 * The {@code oci} store: each image is an OCI artifact ({@link SnapshotArtifact}) in repository
 * {@code <prefix>/<namespace>}, tagged with the image's name, pushed and pulled with jib-core's
 * {@link RegistryClient} (token or basic authentication, TLS through the JDK's trust plus the configured CA).
 * Blobs the registry already holds are not pushed again, so images sharing files share blobs. Each operation uses
 * its own HTTP client and shuts it down after (jib's client keeps every connection it made until then).
 * Deleting removes the tag's manifest (the registry must allow deletes); blobs go with the registry's own garbage
 * collection.
 */
public final class OciStore implements ImageStoreBackend {

    public static final String KIND = "oci";
    private static final String USER_AGENT = "vllmsnap";

    /**
     * Apache HttpClient (under jib-core) logs every byte sent and received at debug level, and every header: that
     * would put snapshot memory (prompts, tokens, keys) and the registry's Authorization header into the log, and
     * it cuts transfers to a few MB/s. Those two loggers are switched off for good (strong references: the logging
     * system keeps loggers only weakly, and would forget the level).
     */
    private static final List<java.util.logging.Logger> SILENCED = java.util.stream.Stream.of(
            "org.apache.http.wire", "org.apache.http.headers").map(name -> {
                java.util.logging.Logger l = java.util.logging.Logger.getLogger(name);
                l.setLevel(java.util.logging.Level.OFF);
                return l;
            }).toList();

    private final OciStoreConfig config;

    public OciStore(OciStoreConfig config) {
        this.config = config;
        if (config.caCertificatesPem() != null) {
            RegistryTrust.trust(config.caCertificatesPem());
        }
    }

    @Override
    public String kind() {
        return KIND;
    }

    @Override
    public boolean shared() {
        return true;
    }

    public String repository(ImageRef ref) {
        return config.repositoryPrefix() + "/" + ref.namespace();
    }

    /** {@code registry/prefix/namespace:name}: how status and logs name the artifact. */
    public String reference(ImageRef ref) {
        return config.registry() + "/" + repository(ref) + ":" + ref.name();
    }

    private FailoverHttpClient newHttp() {
        // plain HTTP (and credentials over it) only for a loopback registry the configuration allows
        return new FailoverHttpClient(config.insecureLoopback(), config.insecureLoopback(), event -> { });
    }

    /**
     * Reaches {@code /v2/} once with the JDK's HTTP client (same trust), so a registry that is down or whose
     * certificate is not trusted fails at once and clearly: jib-core retries a failed request with back-off for
     * about a minute before it gives up.
     */
    private void probe(String what) throws ImageException {
        List<String> schemes = config.insecureLoopback() ? List.of("https", "http") : List.of("https");
        IOException last = null;
        for (String scheme : schemes) {
            try (java.net.http.HttpClient c = java.net.http.HttpClient.newBuilder()
                    .sslContext(javax.net.ssl.SSLContext.getDefault())
                    .connectTimeout(java.time.Duration.ofSeconds(5)).build()) {
                c.send(java.net.http.HttpRequest.newBuilder(URI.create(scheme + "://" + config.registry() + "/v2/"))
                        .timeout(java.time.Duration.ofSeconds(10)).GET().build(),
                        java.net.http.HttpResponse.BodyHandlers.discarding());
                return; // any HTTP answer: the registry is there, and over HTTPS its certificate is trusted
            } catch (SSLException e) {
                last = e;
                if (!config.insecureLoopback()) {
                    throw new ImageException(Reason.StoreUnavailable, what + ": TLS with " + config.registry()
                            + " failed (is its certificate signed by a trusted or the configured CA?): "
                            + e.getMessage(), e);
                }
            } catch (IOException e) {
                last = e;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new ImageException(Reason.StoreUnavailable, what + " was interrupted", e);
            } catch (java.security.NoSuchAlgorithmException e) {
                throw new IllegalStateException("the JDK has no default TLS context", e);
            }
        }
        throw new ImageException(Reason.StoreUnavailable, what + ": the registry " + config.registry()
                + " cannot be reached (" + last + ")", last);
    }

    private RegistryClient client(FailoverHttpClient http, ImageRef ref, boolean push) throws ImageException {
        Credential credential = config.username() == null ? null
                : Credential.from(config.username(), config.password());
        RegistryClient client = RegistryClient.factory(EventHandlers.NONE, config.registry(), repository(ref), http)
                .setCredential(credential).setUserAgent(USER_AGENT).newRegistryClient();
        try {
            boolean bearer = push ? client.doPushBearerAuth() : client.doPullBearerAuth();
            if (!bearer && credential != null) {
                client.configureBasicAuth();
            }
        } catch (IOException | RegistryException e) {
            throw failure("authenticating to " + config.registry() + " for " + reference(ref), e, Reason.StoreError);
        }
        return client;
    }

    @Override
    public void publish(ImageRef ref, Path imageDir, TransferListener listener) throws ImageException {
        byte[] manifest = readSmall(imageDir.resolve(ImageFiles.MANIFEST));
        if (manifest == null) {
            throw new ImageException(Reason.MissingFile, "image " + imageDir + " has no " + ImageFiles.MANIFEST);
        }
        byte[] signature = readSmall(imageDir.resolve(ImageFiles.SIGNATURE));
        if (signature == null) {
            throw new ImageException(Reason.Unsigned, "image " + imageDir + " has no " + ImageFiles.SIGNATURE
                    + ": only signed images are published");
        }
        ImageFiles files = ImageFiles.parse(manifest);
        checkLocalSizes(imageDir, files);
        String configDigest = "sha256:" + Digests.sha256Hex(manifest);
        String signatureDigest = "sha256:" + Digests.sha256Hex(signature);
        probe("publishing " + reference(ref));
        FailoverHttpClient http = newHttp();
        try {
            RegistryClient client = client(http, ref, true);
            Optional<ManifestAndDigest<ManifestTemplate>> existing = client.checkManifest(ref.name());
            if (existing.isPresent()) {
                if (configDigest.equals(configDigestOf(existing.get().getManifest()))) {
                    listener.progress(files.totalBytes(), files.totalBytes());
                    return;
                }
                throw new ImageException(Reason.ImageExists, "the registry already holds another image "
                        + reference(ref) + " (images are immutable: delete it first)");
            }
            Map<String, Blob> blobs = new LinkedHashMap<>();
            Map<String, Long> sizes = new LinkedHashMap<>();
            blobs.put(configDigest, bytesBlob(manifest));
            sizes.put(configDigest, (long) manifest.length);
            blobs.put(signatureDigest, bytesBlob(signature));
            sizes.put(signatureDigest, (long) signature.length);
            for (ImageFiles.Entry e : files.entries().values()) {
                blobs.putIfAbsent(e.digest(), Blobs.from(imageDir.resolve(e.path())));
                sizes.putIfAbsent(e.digest(), e.size());
            }
            pushBlobs(client, ref, blobs, sizes, listener);
            SnapshotArtifact artifact = new SnapshotArtifact()
                    .config(configDigest, manifest.length)
                    .layer(SnapshotArtifact.SIGNATURE_MEDIA_TYPE, signatureDigest, signature.length,
                            ImageFiles.SIGNATURE)
                    .annotation("org.opencontainers.image.created", Instant.now().toString())
                    .annotation("io.vllmsnap.namespace", ref.namespace())
                    .annotation("io.vllmsnap.image", ref.name());
            for (ImageFiles.Entry e : files.entries().values()) {
                artifact.layer(SnapshotArtifact.FILE_MEDIA_TYPE, e.digest(), e.size(), e.path());
            }
            client.pushManifest(artifact, ref.name());
        } catch (IOException | RegistryException e) {
            throw failure("publishing " + reference(ref), e, Reason.StoreError);
        } finally {
            shutDown(http);
        }
    }

    private static Blob bytesBlob(byte[] bytes) {
        return Blobs.from(out -> out.write(bytes), true);
    }

    private void pushBlobs(RegistryClient client, ImageRef ref, Map<String, Blob> blobs, Map<String, Long> sizes,
                           TransferListener listener) throws ImageException {
        ProgressReporter progress = new ProgressReporter(listener,
                sizes.values().stream().mapToLong(Long::longValue).sum(), 0);
        try (ExecutorService pool = Executors.newFixedThreadPool(Math.min(config.parallelism(), blobs.size()),
                Thread.ofPlatform().name("oci-push-", 0).daemon().factory())) {
            List<Future<Void>> results = new ArrayList<>();
            for (var b : blobs.entrySet()) {
                results.add(pool.submit(() -> {
                    DescriptorDigest digest = DescriptorDigest.fromDigest(b.getKey());
                    long size = sizes.get(b.getKey());
                    if (client.checkBlob(digest).isPresent()) {
                        progress.add(size);
                        return null;
                    }
                    long[] sent = {0};
                    try {
                        client.pushBlob(digest, b.getValue(), null, n -> {
                            sent[0] += n;
                            progress.add(n);
                        });
                    } catch (IOException | RegistryException e) {
                        progress.takeBack(sent[0]);
                        throw e;
                    }
                    return null;
                }));
            }
            for (Future<Void> f : results) {
                f.get();
            }
            progress.finish();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new ImageException(Reason.StoreUnavailable, "publishing " + reference(ref) + " was interrupted", e);
        } catch (ExecutionException e) {
            Throwable c = e.getCause();
            if (containsText(c, "DIGEST_INVALID") || containsText(c, "digest did not match")) {
                throw new ImageException(Reason.Tampered, "publishing " + reference(ref) + ": a local file does not "
                        + "have the digest its manifest records (the registry refused it)", c);
            }
            throw failure("publishing " + reference(ref), c, Reason.StoreError);
        }
    }

    private static void checkLocalSizes(Path dir, ImageFiles files) throws ImageException {
        for (ImageFiles.Entry e : files.entries().values()) {
            long size;
            try {
                size = Files.size(dir.resolve(e.path()));
            } catch (IOException ex) {
                throw new ImageException(Reason.MissingFile, "image " + dir + " lacks " + e.path());
            }
            if (size != e.size()) {
                throw new ImageException(size < e.size() ? Reason.Truncated : Reason.Tampered, "image " + dir + ": "
                        + e.path() + " has " + size + " bytes, the manifest records " + e.size() + "; not published");
            }
        }
    }

    @Override
    public RemoteImage open(ImageRef ref) throws ImageException {
        probe("pulling " + reference(ref));
        FailoverHttpClient http = newHttp();
        boolean opened = false;
        try {
            RegistryClient client = client(http, ref, false);
            OciManifestTemplate manifest;
            try {
                manifest = client.pullManifest(ref.name(), OciManifestTemplate.class).getManifest();
            } catch (ClassCastException notOci) {
                throw new ImageException(Reason.InvalidManifest, reference(ref) + " is not a vllmsnap snapshot "
                        + "artifact (not an OCI image manifest)");
            }
            ContentDescriptorTemplate configDescriptor = manifest.getContainerConfiguration();
            if (configDescriptor == null || configDescriptor.getDigest() == null
                    || configDescriptor.getSize() > ImageFiles.MAX_MANIFEST_BYTES) {
                throw new ImageException(Reason.InvalidManifest, reference(ref) + " is not a vllmsnap snapshot "
                        + "artifact (no usable config blob)");
            }
            byte[] manifestBytes = pullSmall(client, configDescriptor.getDigest(), configDescriptor.getSize());
            byte[] signature = null;
            for (ContentDescriptorTemplate layer : manifest.getLayers()) {
                Map<String, String> a = layer.getAnnotations();
                if (a != null && ImageFiles.SIGNATURE.equals(a.get(SnapshotArtifact.TITLE))
                        && layer.getDigest() != null && layer.getSize() <= (64 << 10)) {
                    signature = pullSmall(client, layer.getDigest(), layer.getSize());
                    break;
                }
            }
            RemoteImage remote = new OciRemoteImage(ref, http, client, manifestBytes, signature);
            opened = true;
            return remote;
        } catch (IOException | RegistryException e) {
            throw failure("pulling " + reference(ref), e, Reason.ImageNotFound);
        } finally {
            if (!opened) {
                shutDown(http);
            }
        }
    }

    private static byte[] pullSmall(RegistryClient client, DescriptorDigest digest, long size) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream((int) Math.max(0, Math.min(size, 1 << 20)));
        client.pullBlob(digest, s -> { }, n -> { }).writeTo(new Digests.CountingOutputStream(out, size, n -> { }));
        return out.toByteArray();
    }

    /** An opened artifact: blobs are fetched on request with the same client, which jib-core keeps thread-safe. */
    private final class OciRemoteImage implements RemoteImage {
        private final ImageRef ref;
        private final FailoverHttpClient http;
        private final RegistryClient client;
        private final byte[] manifest;
        private final byte[] signature;

        OciRemoteImage(ImageRef ref, FailoverHttpClient http, RegistryClient client, byte[] manifest,
                       byte[] signature) {
            this.ref = ref;
            this.http = http;
            this.client = client;
            this.manifest = manifest;
            this.signature = signature;
        }

        @Override
        public byte[] manifest() {
            return manifest.clone();
        }

        @Override
        public byte[] signature() {
            return signature == null ? null : signature.clone();
        }

        /** jib-core checks every blob against the requested digest as it streams; the digest is the signed one. */
        @Override
        public boolean verifiesDigests() {
            return true;
        }

        @Override
        public void fetch(ImageFiles.Entry entry, OutputStream out) throws ImageException, IOException {
            DescriptorDigest digest;
            try {
                digest = DescriptorDigest.fromHash(entry.sha256());
            } catch (DigestException e) {
                throw new ImageException(Reason.InvalidManifest, "bad digest for " + entry.path(), e);
            }
            Digests.CountingOutputStream counted = new Digests.CountingOutputStream(new KeepOpen(out),
                    Long.MAX_VALUE, n -> { });
            try {
                client.pullBlob(digest, s -> { }, n -> { }).writeTo(counted);
            } catch (IOException e) {
                Throwable ours = ownIoFailure(e);
                if (ours != null) {
                    throw (IOException) ours; // the puller's own refusal (too long, cancelled): it knows the reason
                }
                if (hasCause(e, "UnexpectedBlobDigestException")) {
                    throw new ImageException(counted.count() < entry.size() ? Reason.Truncated : Reason.Tampered,
                            "image " + ref + " in " + config.registry() + ": the blob of " + entry.path() + " ("
                                    + entry.digest() + ") does not have its signed digest (" + counted.count()
                                    + " of " + entry.size() + " bytes received)", e);
                }
                throw failure("pulling " + entry.path() + " (" + entry.digest() + ") of " + reference(ref), e,
                        Reason.MissingFile);
            }
        }

        @Override
        public void close() {
            shutDown(http);
        }
    }

    @Override
    public boolean exists(ImageRef ref) throws ImageException {
        probe("looking up " + reference(ref));
        FailoverHttpClient http = newHttp();
        try {
            return client(http, ref, false).checkManifest(ref.name()).isPresent();
        } catch (IOException | RegistryException e) {
            throw failure("looking up " + reference(ref), e, Reason.StoreError);
        } finally {
            shutDown(http);
        }
    }

    @Override
    public void delete(ImageRef ref) throws ImageException {
        probe("deleting " + reference(ref));
        FailoverHttpClient http = newHttp();
        try {
            Optional<ManifestAndDigest<ManifestTemplate>> m = client(http, ref, true).checkManifest(ref.name());
            if (m.isEmpty()) {
                return;
            }
            // jib-core has no delete: the distribution API's DELETE of the manifest by digest, through its client
            Request request = Request.builder()
                    .setAuthorization(config.username() == null ? null
                            : Authorization.fromBasicCredentials(config.username(), config.password()))
                    .setAccept(List.of(SnapshotArtifact.MANIFEST_MEDIA_TYPE))
                    .setUserAgent(USER_AGENT)
                    .build();
            var url = URI.create("https://" + config.registry() + "/v2/" + repository(ref) + "/manifests/"
                    + m.get().getDigest()).toURL();
            try (Response ignored = http.call("DELETE", url, request)) {
                // 202 Accepted
            } catch (ResponseException e) {
                if (e.getStatusCode() == 404) {
                    return;
                }
                if (e.getStatusCode() == 405) {
                    throw new ImageException(Reason.StoreError, "the registry " + config.registry() + " does not "
                            + "allow deleting " + reference(ref) + " (deletion disabled)", e);
                }
                throw e;
            }
        } catch (IOException | RegistryException e) {
            throw failure("deleting " + reference(ref), e, Reason.StoreError);
        } finally {
            shutDown(http);
        }
    }

    private static String configDigestOf(ManifestTemplate m) {
        if (m instanceof OciManifestTemplate oci && oci.getContainerConfiguration() != null
                && oci.getContainerConfiguration().getDigest() != null) {
            return oci.getContainerConfiguration().getDigest().toString();
        }
        return null;
    }

    /** Sorts a registry client's exception into a reason; {@code notFound} is what a 404 means here. */
    private ImageException failure(String what, Throwable e, Reason notFound) {
        for (Throwable c = e; c != null; c = c.getCause()) {
            if (c instanceof RegistryUnauthorizedException || c instanceof RegistryCredentialsNotSentException) {
                return new ImageException(Reason.StoreUnauthorized, what + ": the registry " + config.registry()
                        + " refused " + (config.username() == null ? "anonymous access" : "the credentials of user "
                        + config.username()), e);
            }
            if (c instanceof ResponseException r) {
                if (r.getStatusCode() == 401 || r.getStatusCode() == 403) {
                    return new ImageException(Reason.StoreUnauthorized, what + ": the registry "
                            + config.registry() + " answered " + r.getStatusCode(), e);
                }
                if (r.getStatusCode() == 404) {
                    return new ImageException(notFound, what + ": the registry " + config.registry()
                            + " has no such " + (notFound == Reason.MissingFile ? "blob" : "image"), e);
                }
                if (r.getStatusCode() >= 500) {
                    return new ImageException(Reason.StoreUnavailable, what + ": the registry answered "
                            + r.getStatusCode(), e);
                }
            }
            if (c instanceof SSLException) {
                return new ImageException(Reason.StoreUnavailable, what + ": TLS with " + config.registry()
                        + " failed (is its certificate signed by the configured CA?): " + c.getMessage(), e);
            }
        }
        if (e instanceof RegistryException) {
            String m = String.valueOf(e.getMessage());
            if (m.contains("MANIFEST_UNKNOWN") || m.contains("manifest unknown") || m.contains("BLOB_UNKNOWN")
                    || m.contains("blob unknown")) {
                return new ImageException(notFound, what + ": " + m, e);
            }
            if (hasCause(e, "InsecureRegistryException")) {
                return new ImageException(Reason.StoreUnavailable, what + ": " + m, e);
            }
            return new ImageException(Reason.StoreError, what + ": " + m, e);
        }
        return new ImageException(Reason.StoreUnavailable, what + ": the registry " + config.registry()
                + " could not be reached or broke off (" + e + ")", e);
    }

    private static boolean hasCause(Throwable e, String simpleName) {
        for (Throwable c = e; c != null; c = c.getCause()) {
            if (c.getClass().getSimpleName().equals(simpleName)) {
                return true;
            }
        }
        return false;
    }

    private static boolean containsText(Throwable e, String text) {
        for (Throwable c = e; c != null; c = c.getCause()) {
            if (String.valueOf(c.getMessage()).contains(text)) {
                return true;
            }
        }
        return false;
    }

    /** The first I/O failure raised by the puller's own streams (size limit, cancellation), if any. */
    private static Throwable ownIoFailure(Throwable e) {
        for (Throwable c = e; c != null; c = c.getCause()) {
            if (c instanceof Digests.TooLongException || c.getClass().getSimpleName().equals("Cancelled")) {
                return c;
            }
        }
        return null;
    }

    private static byte[] readSmall(Path file) throws ImageException {
        try {
            if (Files.size(file) > ImageFiles.MAX_MANIFEST_BYTES || !Files.isRegularFile(file,
                    LinkOption.NOFOLLOW_LINKS)) {
                throw new ImageException(Reason.UnexpectedFile, file + " is not a regular file of a sane size");
            }
            return Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            return null;
        } catch (IOException e) {
            throw new ImageException(Reason.MissingFile, "cannot read " + file + ": " + e.getMessage(), e);
        }
    }

    private static void shutDown(FailoverHttpClient http) {
        try {
            http.shutDown();
        } catch (IOException ignored) {
            // connections of a finished operation
        }
    }

    /** jib-core closes the stream it writes a blob to; the puller still has to sync and close the file itself. */
    private static final class KeepOpen extends FilterOutputStream {
        KeepOpen(OutputStream out) {
            super(out);
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
            out.write(b, off, len);
        }

        @Override
        public void close() throws IOException {
            out.flush();
        }
    }
}
