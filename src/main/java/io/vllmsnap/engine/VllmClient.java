package io.vllmsnap.engine;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.HttpURLConnection;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.time.Duration;

/**
 * The vLLM endpoints the engine drives. Every request closes its connection: an idle keep-alive connection
 * would be an established TCP socket in the server at dump time, which CRIU refuses without
 * {@code --tcp-established}.
 */
public final class VllmClient {
    /**
     * The prompt of the one-token completion that ends a restore ("request accepted → first token"). One constant
     * for every restore path, so that a test can send the same probe to a source and compare states.
     */
    public static final String FIRST_TOKEN_PROMPT = "vllmsnap first token";

    private static final ObjectMapper JSON = new ObjectMapper();
    private final String base;
    private final Duration requestTimeout;

    public VllmClient(String host, int port, Duration requestTimeout) {
        this.base = "http://" + host + ":" + port;
        this.requestTimeout = requestTimeout;
    }

    public VllmClient(int port) {
        this("127.0.0.1", port, Duration.ofSeconds(60));
    }

    public boolean healthy() {
        try {
            return call("GET", "/health", null).status == 200;
        } catch (IOException e) {
            return false;
        }
    }

    /** Polls {@code /health} until it answers 200. */
    public void awaitHealthy(Duration timeout) throws EngineException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!healthy()) {
            if (System.nanoTime() > deadline) {
                throw new EngineException("server at " + base + " not healthy within " + timeout.toSeconds() + " s");
            }
            try {
                Thread.sleep(20);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new EngineException("interrupted waiting for " + base);
            }
        }
    }

    /**
     * Loads what the first request needs (HTTP and JSON classes) without touching the network: a cold JVM pays for
     * that once, and a restore lets it happen while CRIU works rather than on the first request it times.
     */
    public void warmUp() {
        try {
            HttpURLConnection c = (HttpURLConnection) URI.create(base + "/health").toURL().openConnection();
            c.setRequestMethod("POST");
            c.setRequestProperty("Connection", "close");
            JSON.readTree(JSON.createObjectNode().put("prompt", FIRST_TOKEN_PROMPT).put("max_tokens", 1).toString())
                    .path("choices").path(0).path("text").asText();
        } catch (IOException e) {
            // only a warm-up: the real request reports its own errors
        }
    }

    public void sleep(int level) throws EngineException {
        expectOk(post("/sleep?level=" + level, null), "sleep level " + level);
    }

    public void wakeUp() throws EngineException {
        expectOk(post("/wake_up", null), "wake_up");
    }

    public boolean isSleeping() throws EngineException {
        Response r = get("/is_sleeping");
        expectOk(r, "is_sleeping");
        return r.json().path("is_sleeping").asBoolean();
    }

    /** Asks for a completion; returns the parsed response. */
    public JsonNode complete(String prompt, int maxTokens) throws EngineException {
        String body = JSON.createObjectNode().put("prompt", prompt).put("max_tokens", maxTokens).toString();
        Response r = post("/v1/completions", body);
        expectOk(r, "completion");
        return r.json();
    }

    public JsonNode getJson(String path) throws EngineException {
        Response r = get(path);
        expectOk(r, path);
        return r.json();
    }

    private Response get(String path) throws EngineException {
        try {
            return call("GET", path, null);
        } catch (IOException e) {
            throw new EngineException("GET " + base + path + ": " + e.getMessage(), e);
        }
    }

    private Response post(String path, String body) throws EngineException {
        try {
            return call("POST", path, body);
        } catch (IOException e) {
            throw new EngineException("POST " + base + path + ": " + e.getMessage(), e);
        }
    }

    private static void expectOk(Response r, String what) throws EngineException {
        if (r.status / 100 != 2) {
            throw new EngineException(what + " answered HTTP " + r.status + ": " + r.body);
        }
    }

    private Response call(String method, String path, String body) throws IOException {
        HttpURLConnection c = (HttpURLConnection) URI.create(base + path).toURL().openConnection();
        try {
            c.setRequestMethod(method);
            c.setConnectTimeout((int) Math.min(requestTimeout.toMillis(), 5000));
            c.setReadTimeout((int) requestTimeout.toMillis());
            c.setRequestProperty("Connection", "close");
            if (body != null) {
                c.setDoOutput(true);
                c.setRequestProperty("Content-Type", "application/json");
                try (OutputStream o = c.getOutputStream()) {
                    o.write(body.getBytes(StandardCharsets.UTF_8));
                }
            }
            int status = c.getResponseCode();
            try (InputStream in = status >= 400 ? c.getErrorStream() : c.getInputStream()) {
                return new Response(status, in == null ? "" : new String(in.readAllBytes(), StandardCharsets.UTF_8));
            }
        } finally {
            c.disconnect();
        }
    }

    private record Response(int status, String body) {
        JsonNode json() throws EngineException {
            try {
                return JSON.readTree(body);
            } catch (IOException e) {
                throw new EngineException("not JSON: " + body);
            }
        }
    }
}
