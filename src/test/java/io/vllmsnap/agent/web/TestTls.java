package io.vllmsnap.agent.web;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** A throw-away CA and an agent certificate for {@code vllmsnap-agent}, made with openssl once per test JVM. */
public final class TestTls {

    public static final String SERVER_NAME = "vllmsnap-agent";
    public static final Path DIR = Path.of("target/agent-tls").toAbsolutePath();

    private TestTls() {
    }

    public static synchronized Path dir() {
        if (Files.isRegularFile(DIR.resolve("tls.crt"))) {
            return DIR;
        }
        try {
            Files.createDirectories(DIR);
            Files.writeString(DIR.resolve("ext.cnf"), "subjectAltName=DNS:" + SERVER_NAME + "\n");
            openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
                    "-subj", "/CN=vllmsnap-test-ca");
            openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "tls.key", "-out", "tls.csr", "-subj", "/CN=" + SERVER_NAME);
            openssl("x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                    "-out", "tls.crt", "-days", "2", "-extfile", "ext.cnf");
            return DIR;
        } catch (IOException | InterruptedException e) {
            throw new IllegalStateException("cannot make test certificates with openssl", e);
        }
    }

    /** A fresh CA (ca.crt, ca.key) in {@code dir}. */
    public static Path newCa(Path dir, String name) {
        try {
            Files.createDirectories(dir);
            opensslIn(dir, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key",
                    "-out", "ca.crt", "-days", "2", "-subj", "/CN=" + name);
            return dir;
        } catch (IOException | InterruptedException e) {
            throw new IllegalStateException("cannot make a CA with openssl", e);
        }
    }

    /**
     * A directory laid out as kubelet lays out a Secret volume ({@code tls.crt -> ..data/tls.crt}, {@code ..data ->}
     * a timestamped directory), holding a new key and a certificate for {@code dnsName} signed by the CA in
     * {@code caDir}. Called again on the same directory it renews: the new files appear at once, by one rename of
     * {@code ..data}, as when kubelet updates a Secret.
     */
    public static Path secretVolume(Path volume, Path caDir, String dnsName) {
        volume = volume.toAbsolutePath();
        caDir = caDir.toAbsolutePath();
        try {
            Files.createDirectories(volume);
            Path version = Files.createTempDirectory(volume, "..v");
            Files.writeString(version.resolve("ext.cnf"), "subjectAltName=DNS:" + dnsName + "\n");
            opensslIn(version, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "tls.key",
                    "-out", "tls.csr", "-subj", "/CN=" + dnsName);
            opensslIn(version, "x509", "-req", "-in", "tls.csr", "-CA", caDir.resolve("ca.crt").toString(), "-CAkey",
                    caDir.resolve("ca.key").toString(), "-CAcreateserial", "-CAserial", version.resolve("ca.srl").toString(),
                    "-out", "tls.crt", "-days", "2", "-extfile", "ext.cnf");
            Files.copy(caDir.resolve("ca.crt"), version.resolve("ca.crt"));
            Path link = volume.resolve("..data_tmp");
            Files.deleteIfExists(link);
            Files.createSymbolicLink(link, version.getFileName());
            Files.move(link, volume.resolve("..data"), java.nio.file.StandardCopyOption.ATOMIC_MOVE,
                    java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            for (String file : List.of("tls.crt", "tls.key", "ca.crt")) {
                Path entry = volume.resolve(file);
                if (!Files.isSymbolicLink(entry)) {
                    Files.createSymbolicLink(entry, Path.of("..data", file));
                }
            }
            return volume;
        } catch (IOException | InterruptedException e) {
            throw new IllegalStateException("cannot make a certificate with openssl", e);
        }
    }

    private static void openssl(String... args) throws IOException, InterruptedException {
        opensslIn(DIR, args);
    }

    private static void opensslIn(Path dir, String... args) throws IOException, InterruptedException {
        List<String> cmd = new java.util.ArrayList<>(List.of("openssl"));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true).start();
        if (!p.waitFor(60, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IOException("openssl timed out");
        }
        if (p.exitValue() != 0) {
            throw new IOException("openssl " + String.join(" ", args) + " failed: " + new String(p.getInputStream().readAllBytes()));
        }
    }
}
