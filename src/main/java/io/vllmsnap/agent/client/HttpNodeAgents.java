package io.vllmsnap.agent.client;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.vllmsnap.agent.api.AgentUnavailableException;
import io.vllmsnap.agent.api.NodeAgent;
import io.vllmsnap.agent.api.NodeAgents;

import javax.net.ssl.SSLContext;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.http.HttpClient;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;
import java.util.function.Supplier;

/**
 * The production {@link NodeAgents}: finds the node's agent through {@link AgentAddresses} and talks HTTPS to it with
 * a projected token of the operator's service account made for the agents' audience (never the operator's own API
 * token, which would hand every node a credential for the API server). The token file is read again on each call
 * because kubelet rotates it.
 */
public class HttpNodeAgents implements NodeAgents {

    private final AgentAddresses addresses;
    private final HttpClient http;
    private final Supplier<String> token;
    private final ObjectMapper json;
    private final Duration requestTimeout;

    public HttpNodeAgents(AgentAddresses addresses, SSLContext tls, Path tokenFile, ObjectMapper json,
            Duration connectTimeout, Duration requestTimeout) {
        this.addresses = addresses;
        this.http = HttpClient.newBuilder().sslContext(tls).connectTimeout(connectTimeout)
                .version(HttpClient.Version.HTTP_1_1).build();
        this.token = () -> readToken(tokenFile);
        this.json = json;
        this.requestTimeout = requestTimeout;
    }

    @Override
    public Optional<NodeAgent> forNode(String nodeName) {
        return addresses.forNode(nodeName).map(uri -> new HttpNodeAgent(http, uri, token, json, requestTimeout));
    }

    private static String readToken(Path tokenFile) {
        try {
            return Files.readString(tokenFile).trim();
        } catch (IOException e) {
            throw new AgentUnavailableException("cannot read the service-account token " + tokenFile,
                    new UncheckedIOException(e));
        }
    }
}
