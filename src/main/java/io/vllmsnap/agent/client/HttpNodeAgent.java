package io.vllmsnap.agent.client;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.vllmsnap.agent.api.AgentRejectedException;
import io.vllmsnap.agent.api.AgentUnavailableException;
import io.vllmsnap.agent.api.ImageInfo;
import io.vllmsnap.agent.api.JobStatus;
import io.vllmsnap.agent.api.NodeAgent;
import io.vllmsnap.agent.api.NodeCapabilities;
import io.vllmsnap.agent.api.RestoreJobRequest;
import io.vllmsnap.agent.api.SnapshotJobRequest;

import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.function.Supplier;

/**
 * The operator's HTTPS client of one node's agent. Errors are sorted for the caller: the agent refused (4xx except
 * 404 on a job lookup) → {@link AgentRejectedException} with the agent's reason; cannot connect, timeout or 5xx →
 * {@link AgentUnavailableException}, worth retrying.
 */
public class HttpNodeAgent implements NodeAgent {

    private final HttpClient http;
    private final URI base;
    private final Supplier<String> token;
    private final ObjectMapper json;
    private final Duration requestTimeout;

    public HttpNodeAgent(HttpClient http, URI base, Supplier<String> token, ObjectMapper json, Duration requestTimeout) {
        this.http = http;
        this.base = base;
        this.token = token;
        this.json = json;
        this.requestTimeout = requestTimeout;
    }

    @Override
    public NodeCapabilities capabilities() {
        return read(send(get("/api/v1/capabilities")), new TypeReference<>() { });
    }

    @Override
    public JobStatus startSnapshot(SnapshotJobRequest request) {
        return read(send(post("/api/v1/jobs/snapshot", request)), new TypeReference<>() { });
    }

    @Override
    public JobStatus startRestore(RestoreJobRequest request) {
        return read(send(post("/api/v1/jobs/restore", request)), new TypeReference<>() { });
    }

    @Override
    public JobStatus job(String jobId) {
        HttpResponse<String> response = exchange(get("/api/v1/jobs/" + encode(jobId)));
        if (response.statusCode() == 404 && "JobNotFound".equals(reasonOf(response))) {
            return null;
        }
        return read(check(response), new TypeReference<>() { });
    }

    @Override
    public List<ImageInfo> images(String namespace) {
        return read(send(get("/api/v1/images?namespace=" + encode(namespace))), new TypeReference<>() { });
    }

    @Override
    public void deleteImage(String namespace, String imageId) {
        send(request("/api/v1/images/" + encode(namespace) + "/" + encode(imageId)).DELETE().build());
    }

    private HttpRequest get(String path) {
        return request(path).GET().build();
    }

    private HttpRequest post(String path, Object body) {
        try {
            return request(path).header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofByteArray(json.writeValueAsBytes(body))).build();
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot encode request", e);
        }
    }

    private HttpRequest.Builder request(String path) {
        return HttpRequest.newBuilder(base.resolve(path)).timeout(requestTimeout)
                .header("Accept", "application/json")
                .header("Authorization", "Bearer " + token.get());
    }

    private HttpResponse<String> send(HttpRequest request) {
        return check(exchange(request));
    }

    private HttpResponse<String> exchange(HttpRequest request) {
        try {
            return http.send(request, HttpResponse.BodyHandlers.ofString());
        } catch (IOException e) {
            throw new AgentUnavailableException("cannot reach agent at " + base + ": " + e, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AgentUnavailableException("interrupted while calling agent at " + base, e);
        }
    }

    private HttpResponse<String> check(HttpResponse<String> response) {
        int status = response.statusCode();
        if (status >= 200 && status < 300) {
            return response;
        }
        String reason = reasonOf(response);
        String message = messageOf(response);
        if (status >= 400 && status < 500) {
            throw new AgentRejectedException(reason != null ? reason : "Http" + status,
                    "agent at " + base + " refused " + response.request().method() + " " + response.request().uri().getPath()
                            + " (" + status + "): " + message);
        }
        throw new AgentUnavailableException("agent at " + base + " answered " + status + ": " + message);
    }

    private String reasonOf(HttpResponse<String> response) {
        JsonNode body = errorBody(response);
        return body != null && body.hasNonNull("reason") ? body.get("reason").asText() : null;
    }

    private String messageOf(HttpResponse<String> response) {
        JsonNode body = errorBody(response);
        if (body != null && body.hasNonNull("message")) {
            return body.get("message").asText();
        }
        String raw = response.body() == null ? "" : response.body();
        return raw.length() > 300 ? raw.substring(0, 300) + "..." : raw;
    }

    private JsonNode errorBody(HttpResponse<String> response) {
        try {
            return response.body() == null || response.body().isBlank() ? null : json.readTree(response.body());
        } catch (IOException e) {
            return null;
        }
    }

    private <T> T read(HttpResponse<String> response, TypeReference<T> type) {
        try {
            return json.readValue(response.body(), type);
        } catch (IOException e) {
            throw new AgentUnavailableException("agent at " + base + " sent an answer that cannot be read: " + e.getMessage(), e);
        }
    }

    private static String encode(String value) {
        return URLEncoder.encode(value, StandardCharsets.UTF_8).replace("+", "%20");
    }
}
