package io.vllmsnap.testing;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.SecureRandom;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;

/**
 * A real OCI registry for tests: Debian's {@code docker-registry} (CNCF distribution 2.8), started on loopback on a
 * free port with its own storage directory and configuration, optionally with htpasswd (bcrypt) authentication and
 * TLS from a test CA made with openssl, and stopped (also when a test fails: use try-with-resources).
 * <pre>
 * try (LocalRegistry r = LocalRegistry.builder().auth("user", "secret").tls().start()) {
 *     r.address();  // "127.0.0.1:PORT", for image references; r.caCertificate() for the client's trust
 * }
 * </pre>
 * Deleting manifests is enabled (the OCI store's delete needs it). When {@code docker-registry} is not installed,
 * {@code hack/install-registry.sh} is run first (root; idempotent); a test never skips for want of it.
 */
public final class LocalRegistry implements AutoCloseable {

    private static final Duration START_TIMEOUT = Duration.ofSeconds(30);
    private static final Duration COMMAND_TIMEOUT = Duration.ofSeconds(120);

    private final Path dir;
    private final Path storage;
    private final Path config;
    private final String username;
    private final String password;
    private final Path caCertificate;
    private final boolean ownsDir;
    private int port;
    private Process process;
    /** Stops the registry when the JVM exits without {@link #close} (a test run interrupted): no orphan server. */
    private final Thread stopAtExit = new Thread(this::stop, "local-registry-stop");

    private LocalRegistry(Builder b, Path dir) throws IOException {
        this.dir = dir;
        this.ownsDir = b.dir == null;
        this.storage = b.storage != null ? b.storage : dir.resolve("storage");
        this.username = b.username;
        this.password = b.password;
        Files.createDirectories(storage);
        Path htpasswd = null;
        if (username != null) {
            htpasswd = dir.resolve("htpasswd");
            String line = run(List.of("htpasswd", "-nbB", username, password)).strip();
            Files.writeString(htpasswd, line + "\n");
        }
        Path cert = null;
        Path key = null;
        if (b.tls) {
            makeTestCa(dir);
            cert = dir.resolve("server.crt");
            key = dir.resolve("server.key");
            this.caCertificate = dir.resolve("ca.crt");
        } else {
            this.caCertificate = null;
        }
        this.config = dir.resolve("config.yml");
        this.configTemplate = configYaml(htpasswd, cert, key);
    }

    private final String configTemplate;

    public static Builder builder() {
        return new Builder();
    }

    /** Plain HTTP, no authentication. */
    public static LocalRegistry start() throws IOException {
        return builder().start();
    }

    public static final class Builder {
        private String username;
        private String password;
        private boolean tls;
        private Path dir;
        private Path storage;

        /** htpasswd authentication with one user (bcrypt, as the registry requires). */
        public Builder auth(String username, String password) {
            this.username = username;
            this.password = password;
            return this;
        }

        /** HTTPS with a certificate for 127.0.0.1 and localhost from a test CA ({@link #caCertificate()}). */
        public Builder tls() {
            this.tls = true;
            return this;
        }

        /** Where to keep configuration, logs and (unless {@link #storage}) the blobs; default a new temp dir. */
        public Builder dir(Path dir) {
            this.dir = dir;
            return this;
        }

        /** Registry storage of its own (e.g. to start a second registry on the same blobs). */
        public Builder storage(Path storage) {
            this.storage = storage;
            return this;
        }

        public LocalRegistry start() throws IOException {
            ensureInstalled();
            Path d = dir != null ? dir : Files.createTempDirectory("vllmsnap-registry-");
            LocalRegistry r = new LocalRegistry(this, d);
            Runtime.getRuntime().addShutdownHook(r.stopAtExit);
            try {
                r.launch(0);
            } catch (IOException | RuntimeException e) {
                r.close();
                throw e;
            }
            return r;
        }
    }

    /** {@code 127.0.0.1:PORT}: the registry part of an image reference. */
    public String address() {
        return "127.0.0.1:" + port;
    }

    public int port() {
        return port;
    }

    /** {@code http://127.0.0.1:PORT} or {@code https://...}. */
    public String url() {
        return (caCertificate != null ? "https://" : "http://") + address();
    }

    public boolean tls() {
        return caCertificate != null;
    }

    /** PEM of the test CA that signed the server certificate (TLS only). */
    public Optional<Path> caCertificate() {
        return Optional.ofNullable(caCertificate);
    }

    public Optional<String> username() {
        return Optional.ofNullable(username);
    }

    public Optional<String> password() {
        return Optional.ofNullable(password);
    }

    public Path storage() {
        return storage;
    }

    /** Where the registry keeps a blob's bytes ({@code sha256:<hex>}), to damage or delete it in a test. */
    public Path blobData(String digest) {
        String hex = digest.substring(digest.indexOf(':') + 1);
        return storage.resolve("docker/registry/v2/blobs/sha256").resolve(hex.substring(0, 2)).resolve(hex)
                .resolve("data");
    }

    /** The registry's log so far (for failure messages). */
    public String log() {
        try {
            return Files.readString(dir.resolve("registry.log"));
        } catch (IOException e) {
            return "";
        }
    }

    public boolean isRunning() {
        return process != null && process.isAlive();
    }

    /** SIGKILL: the registry goes away at once, mid-transfer if one is running. */
    public void kill() {
        if (process != null) {
            process.destroyForcibly();
            try {
                process.waitFor(10, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    /** Starts the registry again on the same port, storage and settings (after {@link #kill} or {@link #stop}). */
    public void restart() throws IOException {
        stop();
        launch(port);
    }

    /** SIGTERM, then SIGKILL after 10 s. */
    public void stop() {
        if (process == null) {
            return;
        }
        process.destroy();
        try {
            if (!process.waitFor(10, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                process.waitFor(10, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            process.destroyForcibly();
        }
        process = null;
    }

    @Override
    public void close() {
        stop();
        try {
            Runtime.getRuntime().removeShutdownHook(stopAtExit);
        } catch (IllegalStateException exiting) {
            // the JVM is already shutting down and runs the hook itself
        }
        if (ownsDir) {
            deleteQuietly(dir);
        }
    }

    /** An HTTP client that trusts the test CA (or plain HTTP), for checks against the registry's API. */
    public HttpClient httpClient() {
        HttpClient.Builder b = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5));
        if (caCertificate != null) {
            b.sslContext(sslContextTrustingCa(caCertificate));
        }
        return b.build();
    }

    /** An {@code Authorization} header value for the configured user (basic). */
    public Optional<String> basicAuthorization() {
        return username().map(u -> "Basic " + Base64.getEncoder().encodeToString((u + ":" + password)
                .getBytes(StandardCharsets.UTF_8)));
    }

    private void launch(int wantedPort) throws IOException {
        IOException last = null;
        for (int attempt = 0; attempt < 5; attempt++) {
            int p = wantedPort != 0 ? wantedPort : freePort();
            Files.writeString(config, configTemplate.replace("@PORT@", Integer.toString(p)));
            ProcessBuilder pb = new ProcessBuilder("docker-registry", "serve", config.toString())
                    .redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.appendTo(dir.resolve("registry.log").toFile()));
            process = pb.start();
            port = p;
            try {
                waitReady();
                return;
            } catch (IOException e) {
                last = e;
                kill();
                process = null;
                if (wantedPort != 0 && attempt >= 2) {
                    break; // a fixed port that stays busy: say so
                }
            }
        }
        throw new IOException("docker-registry did not start: " + last.getMessage() + "\n" + tail(log()), last);
    }

    private void waitReady() throws IOException {
        HttpClient client = httpClient();
        long deadline = System.nanoTime() + START_TIMEOUT.toNanos();
        while (System.nanoTime() < deadline) {
            if (!process.isAlive()) {
                throw new IOException("it exited with " + process.exitValue());
            }
            try {
                HttpResponse<Void> r = client.send(HttpRequest.newBuilder(URI.create(url() + "/v2/"))
                        .timeout(Duration.ofSeconds(2)).GET().build(), HttpResponse.BodyHandlers.discarding());
                if (r.statusCode() == 200 || r.statusCode() == 401) {
                    return;
                }
            } catch (IOException e) {
                // not listening yet
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException("interrupted", e);
            }
            try {
                Thread.sleep(50);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException("interrupted", e);
            }
        }
        throw new IOException("it did not answer /v2/ within " + START_TIMEOUT.toSeconds() + " s");
    }

    private String configYaml(Path htpasswd, Path cert, Path key) {
        StringBuilder y = new StringBuilder();
        y.append("version: 0.1\n");
        y.append("log:\n  level: info\n  accesslog:\n    disabled: true\n");
        y.append("storage:\n  filesystem:\n    rootdirectory: ").append(storage.toAbsolutePath()).append('\n');
        y.append("  delete:\n    enabled: true\n");
        y.append("  maintenance:\n    uploadpurging:\n      enabled: false\n");
        y.append("http:\n  addr: 127.0.0.1:@PORT@\n");
        y.append("  secret: ").append(HexFormat.of().formatHex(randomBytes(16))).append('\n');
        if (cert != null) {
            y.append("  tls:\n    certificate: ").append(cert.toAbsolutePath()).append("\n    key: ")
                    .append(key.toAbsolutePath()).append('\n');
        }
        y.append("health:\n  storagedriver:\n    enabled: false\n");
        if (htpasswd != null) {
            y.append("auth:\n  htpasswd:\n    realm: vllmsnap-test\n    path: ").append(htpasswd.toAbsolutePath())
                    .append('\n');
        }
        return y.toString();
    }

    private static void makeTestCa(Path dir) throws IOException {
        String ca = dir.resolve("ca").toString();
        String server = dir.resolve("server").toString();
        Path ext = dir.resolve("server.ext");
        Files.writeString(ext, "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                + "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n");
        run(List.of("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-keyout", ca + ".key", "-out", ca + ".crt", "-days", "2", "-subj",
                "/CN=vllmsnap test registry CA", "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign"));
        run(List.of("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", server + ".key", "-out", server + ".csr", "-subj", "/CN=localhost"));
        run(List.of("openssl", "x509", "-req", "-in", server + ".csr", "-CA", ca + ".crt", "-CAkey", ca + ".key",
                "-CAcreateserial", "-out", server + ".crt", "-days", "2", "-extfile", ext.toString()));
    }

    /** An SSL context trusting only the given CA certificate(s) (PEM). */
    public static SSLContext sslContextTrustingCa(Path caPem) {
        try {
            KeyStore ks = KeyStore.getInstance(KeyStore.getDefaultType());
            ks.load(null, null);
            int i = 0;
            try (var in = Files.newInputStream(caPem)) {
                for (var c : CertificateFactory.getInstance("X.509").generateCertificates(in)) {
                    ks.setCertificateEntry("ca-" + i++, (X509Certificate) c);
                }
            }
            TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
            tmf.init(ks);
            SSLContext ctx = SSLContext.getInstance("TLS");
            ctx.init(null, tmf.getTrustManagers(), null);
            return ctx;
        } catch (Exception e) {
            throw new IllegalStateException("cannot build an SSL context from " + caPem, e);
        }
    }

    private static void ensureInstalled() throws IOException {
        if (onPath("docker-registry") && onPath("htpasswd") && onPath("openssl")) {
            return;
        }
        Path script = Path.of("hack/install-registry.sh").toAbsolutePath();
        if (!Files.isExecutable(script)) {
            throw new IOException("docker-registry is not installed and " + script + " is not there to install it");
        }
        run(List.of(script.toString()), Duration.ofMinutes(15));
    }

    private static boolean onPath(String command) {
        for (String d : System.getenv().getOrDefault("PATH", "/usr/bin:/bin").split(":")) {
            if (Files.isExecutable(Path.of(d, command))) {
                return true;
            }
        }
        return false;
    }

    private static String run(List<String> command) throws IOException {
        return run(command, COMMAND_TIMEOUT);
    }

    private static String run(List<String> command, Duration timeout) throws IOException {
        // output goes to a file, not a pipe: a command that hangs cannot block the timeout
        Path out = Files.createTempFile("vllmsnap-registry-cmd-", ".out");
        Process p = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(out.toFile()).start();
        try {
            if (!p.waitFor(timeout.toSeconds(), TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new IOException(command.getFirst() + " did not finish within " + timeout);
            }
            String text = Files.readString(out);
            if (p.exitValue() != 0) {
                throw new IOException(command + " exited with " + p.exitValue() + ": " + tail(text));
            }
            return text;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            p.destroyForcibly();
            throw new IOException("interrupted", e);
        } finally {
            Files.deleteIfExists(out);
        }
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    private static byte[] randomBytes(int n) {
        byte[] b = new byte[n];
        new SecureRandom().nextBytes(b);
        return b;
    }

    private static String tail(String s) {
        List<String> lines = new ArrayList<>(s.lines().toList());
        return String.join("\n", lines.subList(Math.max(0, lines.size() - 20), lines.size()));
    }

    private static void deleteQuietly(Path dir) {
        try (var walk = Files.walk(dir)) {
            walk.sorted(java.util.Comparator.reverseOrder()).forEach(p -> {
                try {
                    Files.deleteIfExists(p);
                } catch (IOException ignored) {
                    // best effort for a temp dir
                }
            });
        } catch (IOException ignored) {
            // already gone
        }
    }
}
