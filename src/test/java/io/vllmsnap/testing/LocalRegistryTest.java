package io.vllmsnap.testing;

import org.junit.jupiter.api.Test;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The registry fixture itself: it serves the distribution API on loopback, enforces auth and TLS, and stops. */
class LocalRegistryTest {

    @Test
    void plainRegistryAnswersAndStops() throws Exception {
        LocalRegistry r = LocalRegistry.start();
        try (r) {
            assertThat(r.url()).startsWith("http://127.0.0.1:");
            assertThat(status(r.httpClient(), r.url() + "/v2/", null)).isEqualTo(200);
            assertThat(status(r.httpClient(), r.url() + "/v2/_catalog", null)).isEqualTo(200);
        }
        assertThat(r.isRunning()).isFalse();
        assertThatThrownBy(() -> status(HttpClient.newHttpClient(), r.url() + "/v2/", null))
                .isInstanceOf(java.io.IOException.class);
    }

    @Test
    void authRegistryRefusesMissingAndWrongCredentials() throws Exception {
        try (LocalRegistry r = LocalRegistry.builder().auth("puller", "s3cret-pw").start()) {
            assertThat(status(r.httpClient(), r.url() + "/v2/", null)).isEqualTo(401);
            assertThat(status(r.httpClient(), r.url() + "/v2/", "Basic " + java.util.Base64.getEncoder()
                    .encodeToString("puller:wrong".getBytes()))).isEqualTo(401);
            assertThat(status(r.httpClient(), r.url() + "/v2/", r.basicAuthorization().orElseThrow()))
                    .isEqualTo(200);
        }
    }

    @Test
    void tlsRegistryIsTrustedThroughItsTestCaOnly() throws Exception {
        try (LocalRegistry r = LocalRegistry.builder().tls().auth("u", "p").start()) {
            assertThat(r.url()).startsWith("https://127.0.0.1:");
            assertThat(Files.readString(r.caCertificate().orElseThrow())).contains("BEGIN CERTIFICATE");
            assertThat(status(r.httpClient(), r.url() + "/v2/", r.basicAuthorization().orElseThrow()))
                    .isEqualTo(200);
            // the JDK's default trust does not know the test CA
            assertThatThrownBy(() -> status(HttpClient.newHttpClient(), r.url() + "/v2/", null))
                    .isInstanceOf(javax.net.ssl.SSLHandshakeException.class);
        }
    }

    @Test
    void killedRegistryCanBeRestartedOnItsPortWithItsBlobs() throws Exception {
        try (LocalRegistry r = LocalRegistry.start()) {
            int port = r.port();
            r.kill();
            assertThat(r.isRunning()).isFalse();
            r.restart();
            assertThat(r.port()).isEqualTo(port);
            assertThat(status(r.httpClient(), r.url() + "/v2/", null)).isEqualTo(200);
        }
    }

    private static int status(HttpClient c, String url, String authorization) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(url)).GET();
        if (authorization != null) {
            b.header("Authorization", authorization);
        }
        return c.send(b.build(), HttpResponse.BodyHandlers.discarding()).statusCode();
    }
}
