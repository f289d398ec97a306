package io.vllmsnap.agent.web;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpMethod;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import io.vllmsnap.agent.AgentConfig;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;

import java.util.Set;

/**
 * Bodies on the agent's API port must declare their length and be small: a request with a body but no
 * Content-Length (chunked) is answered 411, one longer than {@code vllmsnap.agent.max-body-bytes} 413, both in the
 * API's JSON error shape and before anything reads the body or checks the token. Runs on the HTTP router ahead of
 * Quarkus' own body limit (order -2), which stays as a backstop; the agent speaks HTTP/1.1 only, where a request
 * without either header has no body.
 */
@ApplicationScoped
public class RequestSizeLimit {

    /** Just ahead of Quarkus' upload limit (RouteConstants.ROUTE_ORDER_UPLOAD_LIMIT = -2). */
    static final int ORDER = -3;
    private static final Set<HttpMethod> WITH_BODY = Set.of(HttpMethod.POST, HttpMethod.PUT, HttpMethod.PATCH);
    private static final ObjectMapper JSON = new ObjectMapper();

    void install(@Observes Router router, AgentConfig config) {
        if (config.enabled()) {
            int max = config.maxBodyBytes();
            router.route().order(ORDER).handler(ctx -> check(ctx, max));
        }
    }

    private static void check(RoutingContext ctx, int max) {
        var request = ctx.request();
        String encoding = request.getHeader(HttpHeaders.TRANSFER_ENCODING);
        String length = request.getHeader(HttpHeaders.CONTENT_LENGTH);
        if (encoding != null && !encoding.isBlank() && !encoding.equalsIgnoreCase("identity")) {
            refuse(ctx, 411, "LengthRequired", "request bodies must be sent with a Content-Length");
            return;
        }
        if (length == null) {
            if (WITH_BODY.contains(request.method())) {
                refuse(ctx, 411, "LengthRequired", "a " + request.method() + " request must carry a Content-Length");
                return;
            }
            ctx.next();
            return;
        }
        long bytes;
        try {
            bytes = Long.parseLong(length.trim());
        } catch (NumberFormatException e) {
            refuse(ctx, 400, "BadContentLength", "Content-Length is not a number");
            return;
        }
        if (bytes > max) {
            refuse(ctx, 413, "PayloadTooLarge", "request bodies may have at most " + max + " bytes, this one has " + bytes);
            return;
        }
        ctx.next();
    }

    private static void refuse(RoutingContext ctx, int status, String reason, String message) {
        String body;
        try {
            body = JSON.writeValueAsString(new ApiError(reason, message));
        } catch (JsonProcessingException e) {
            body = "{\"reason\":\"" + reason + "\"}";
        }
        // The unread body is not wanted: close the connection rather than read it to reuse the connection.
        ctx.response().setStatusCode(status).putHeader(HttpHeaders.CONTENT_TYPE, "application/json")
                .putHeader(HttpHeaders.CONNECTION, "close").end(body);
    }
}
