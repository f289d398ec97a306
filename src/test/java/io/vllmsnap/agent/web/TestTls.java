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

    private static void openssl(String... args) throws IOException, InterruptedException {
        List<String> cmd = new java.util.ArrayList<>(List.of("openssl"));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).directory(DIR.toFile()).redirectErrorStream(true).start();
        if (!p.waitFor(60, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IOException("openssl timed out");
        }
        if (p.exitValue() != 0) {
            throw new IOException("openssl " + String.join(" ", args) + " failed: " + new String(p.getInputStream().readAllBytes()));
        }
    }
}
